"""Clients for the onboarding tests: the platform's staff, and the people of tests/conftest.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(people: Any) -> Any:
    from tenants.models import User

    return User.objects.create_superuser("root", password=people.password)


@pytest.fixture
def staff(root: Any) -> Client:
    return login(root)


def token_from(mail: Any) -> str:
    """The token of the accept link in an invitation mail."""
    match = re.search(r"/invite/([A-Za-z0-9_-]+)/", mail.body)
    assert match, mail.body
    return match[1]
