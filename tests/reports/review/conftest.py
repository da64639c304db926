"""Co-sign fixtures: the reading personas, and hugo, demo-hospital's own radiologist (an
attending, who validates; not credentialed to read from the worklist)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reports.conftest import *  # noqa: F403


def make_attending(people: Any, name: str = "hugo", tenant: Any = None) -> Any:
    from tenants import services
    from tenants.models import Role, User

    user = User.objects.create_user(name, password=people.password, display_name=name.title())
    services.add_membership(user=user, tenant=tenant or people.demo, role=Role.RADIOLOGIST)
    return user


@pytest.fixture
def attending(reading: Any) -> Any:
    return make_attending(reading.people)
