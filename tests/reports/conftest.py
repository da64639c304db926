"""Fixtures of the reading set-up (tests/worklists/conftest.py): the ``reading`` personas.

On SQLite (the embedded mode) Django's test flush empties tables with ``DELETE FROM``, which the
immutability guard refuses for signed versions (PostgreSQL flushes with ``TRUNCATE``, which row
triggers do not see). So around each database test the guard against deletes is put back before
the test and lifted only for the flush after it; the guard against updates always stays.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.worklists.conftest import reading  # noqa: F401


def guard() -> ModuleType:
    """The migration that creates the immutability guard, with its SQL per engine."""
    return importlib.import_module("reports.migrations.0002_signed_versions_immutable")


@pytest.fixture(autouse=True)
def _sqlite_flush_may_empty_signed_versions(request: pytest.FixtureRequest) -> Iterator[None]:
    if "transactional_db" not in request.fixturenames:
        yield
        return
    from django.db import connection

    immutability = guard()

    request.getfixturevalue("transactional_db")
    if connection.vendor != "sqlite":
        yield
        return
    delete_guard = next(sql for sql in immutability.SQLITE_CREATE if "BEFORE DELETE" in sql)
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS reports_version_immutable_delete")
        cursor.execute(delete_guard)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS reports_version_immutable_delete")
