"""Small builders shared by the onboarding tests and the route walk."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def png(width: int = 40, height: int = 20, colour: str = "navy", kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, kind)
    return out.getvalue()


def give_logo(tenant: Any) -> None:
    """A stored logo for ``tenant``, through the same services as the details page."""
    from tenants.onboarding import services

    data = png()
    key = services.store_logo(tenant, data, "png")
    services.save_details(
        tenant=tenant, name=tenant.name, values={}, logo=(key, "image/png"), actor=None
    )
