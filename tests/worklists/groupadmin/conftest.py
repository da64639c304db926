"""Helpers of the group-administration tests (the ``reading`` world: tests/worklists/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def login() -> Callable[[Any], Client]:
    """A test client signed in as the given user (MFA is off in tests)."""

    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
