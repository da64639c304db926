from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(autouse=True, scope="session")
def _ohif_installed() -> None:
    assert (Path(settings.OHIF_DIST) / "index.html").is_file(), (
        "OHIF is not installed: run infra/install-ohif.sh (make test does)"
    )
