"""The hospital's logo and footer from its details step appear on its report PDFs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.conftest import wait_for
from tests.reports.conftest import (  # noqa: F401 - fixtures
    _sqlite_flush_may_empty_signed_versions,
    reading,
)
from tests.reports.delivery.helpers import real_item, sign_final, status_of
from tests.tenants.onboarding.conftest import login
from tests.tenants.onboarding.helpers import png


def red_pixels(pdf: bytes, tmp_path: Path) -> int:
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(tmp_path / "report.pdf"),
         str(tmp_path / "page")],
        check=True,
    )  # fmt: skip
    page = Image.open(next(tmp_path.glob("page*.png"))).convert("RGB")
    top = page.crop((0, 0, page.width, page.height // 5))
    return sum(1 for r, g, b in top.get_flattened_data() if r > 200 and g < 60 and b < 60)


def test_the_logo_is_at_the_top_of_the_report_pdf(
    reading: Any,  # noqa: F811 - the fixture imported above
    web: Any,
    tmp_path: Path,
) -> None:
    alice = reading.people.alice
    response = login(alice).post(
        "/t/demo-hospital/setup/details/",
        {
            "name": "Demo Hospital",
            "report_footer": "Demo radiology, +1 555 0100",
            "logo": SimpleUploadedFile("logo.png", png(200, 100, "red"), "image/png"),
        },
    )
    assert response.status_code == 302
    item, _ = real_item(reading)
    version = sign_final(reading, item)
    wait_for(lambda: status_of(version, "pdf") == "sent", timeout=120, what="the PDF")
    pdf = login(alice).get(f"/reports/delivery/versions/{version.pk}/report.pdf").content
    assert pdf.startswith(b"%PDF")
    assert red_pixels(pdf, tmp_path) > 200
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"], check=True, capture_output=True
    ).stdout.decode()
    assert "Demo radiology, +1 555 0100" in text
