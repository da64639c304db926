"""The code stays clean: ruff (lint and format) and mypy with django-stubs, as `make lint` runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing_to_fix():
    lint = _run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_finds_no_type_errors():
    result = _run(
        str(BIN / "mypy"), "config", "tenants", "studies", "worklists", "reports", "viewer"
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_no_migration_is_missing():
    result = _run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:]
