"""Configuration: the embedded default needs nothing; a bad value stops the start, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(env_changes: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_"))
    }
    env["SKYLIGHT_DATA_DIR"] = str(tmp_path)
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.smoke
def test_no_environment_runs_the_embedded_default(tmp_path):
    result = _start({}, tmp_path)
    assert result.returncode == 0, result.stderr
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup();"
        "from django.conf import settings as s; from studies.storage import object_store;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, type(object_store()).__name__)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_"))
    }
    env["SKYLIGHT_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "DurableFileSystemStorage",
    ], out.stderr


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/skylight"),
        ("DATABASE_URL", "postgres://:notaport/x"),
        ("CELERY_BROKER_URL", "kafka://localhost:9092"),
        ("SKYLIGHT_SCP_PORT", "eleven"),
        ("SKYLIGHT_SCP_PORT", "70000"),
        ("SKYLIGHT_S3_ENDPOINT_URL", "ftp://storage"),
        ("SKYLIGHT_DEBUG", "maybe"),
        ("SKYLIGHT_STOW_MAX_BODY_BYTES", "-5"),
        ("SKYLIGHT_DEMO_CALLER_NETWORKS", "not-a-network"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(tmp_path, variable, value):
    result = _start({variable: value}, tmp_path)
    assert result.returncode != 0
    assert f"Environment variable {variable}" in result.stderr


def test_s3_keys_must_come_in_pairs(tmp_path):
    result = _start(
        {"SKYLIGHT_S3_BUCKET": "b", "SKYLIGHT_S3_ACCESS_KEY_ID": "only-the-id"}, tmp_path
    )
    assert result.returncode != 0 and "SKYLIGHT_S3_SECRET_ACCESS_KEY" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("from-a-file-0123456789\n")
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup();"
        "from django.conf import settings as s; print(s.SECRET_KEY)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_"))
    }
    env.update({"SKYLIGHT_DATA_DIR": str(tmp_path), "SKYLIGHT_SECRET_KEY_FILE": str(secret)})
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "from-a-file-0123456789"
    env["SKYLIGHT_SECRET_KEY_FILE"] = str(tmp_path / "missing")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "SKYLIGHT_SECRET_KEY_FILE" in out.stderr
