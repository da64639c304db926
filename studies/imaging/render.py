"""Frames rendered as JPEG or PNG for WADO-RS ``/rendered`` and ``/thumbnail`` (PS3.18 8.3.5)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from PIL import Image

from .decode import decoded_frames, first_number, locate
from .limits import check_decoded_size

THUMBNAIL_SIZE = (128, 128)
MAX_VIEWPORT = 4096


@dataclass
class RenderOptions:
    viewport: tuple[int, int] | None = None
    window: tuple[float, float] | None = None
    quality: int = 90

    @classmethod
    def from_query(cls, query: Mapping[str, Any], *, thumbnail: bool) -> RenderOptions:
        """Parse ``viewport``, ``window`` and ``quality``; ValueError names the bad parameter."""
        options = cls(viewport=THUMBNAIL_SIZE if thumbnail else None)
        try:
            if query.get("viewport"):
                vw, vh = (int(v) for v in str(query["viewport"]).split(",")[:2])
                if not (0 < vw <= MAX_VIEWPORT and 0 < vh <= MAX_VIEWPORT):
                    raise ValueError
                options.viewport = (vw, vh)
        except ValueError:
            raise ValueError(f"viewport is vw,vh in pixels (1-{MAX_VIEWPORT}).") from None
        try:
            if query.get("window"):
                parts = str(query["window"]).split(",")
                centre, width = float(parts[0]), float(parts[1])
                if len(parts) > 2 and parts[2].strip().lower() not in ("", "linear"):
                    raise ValueError
                if not width > 0:
                    raise ValueError
                options.window = (centre, width)
        except (ValueError, IndexError):
            raise ValueError("window is center,width[,linear] with a positive width.") from None
        try:
            if query.get("quality"):
                options.quality = int(query["quality"])
                if not 1 <= options.quality <= 100:
                    raise ValueError
        except ValueError:
            raise ValueError("quality is a whole number from 1 to 100.") from None
        return options

    @property
    def is_default_thumbnail(self) -> bool:
        return self.viewport == THUMBNAIL_SIZE and self.window is None and self.quality == 90


def render(fp: IO[bytes], frame: int, options: RenderOptions, media_type: str) -> bytes:
    """Frame ``frame`` (1-based) of a stored object as image/jpeg or image/png: rescaled,
    windowed (linear), MONOCHROME1 inverted, colour as RGB, fitted to the viewport with its
    aspect kept. Raises FrameOutOfRange and CannotDecode."""
    where = locate(fp)
    where.check([frame])
    check_decoded_size(fp, where.dataset, str(where.syntax), where.offset)
    ds = where.dataset
    [pixels] = decoded_frames(
        fp, [frame], ds if where.offset < 0 else None, syntax=str(where.syntax)
    )
    if pixels.ndim == 3:
        # pydicom gives colour as RGB; scale deeper samples to 8 bits.
        top = float(2 ** int(ds.get("BitsStored", 8) or 8) - 1)
        rgb = pixels if pixels.dtype == np.uint8 else np.clip(pixels / top * 255, 0, 255)
        image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), "RGB")
    else:
        values = pixels.astype(np.float64)
        slope = first_number(ds.get("RescaleSlope"))
        intercept = first_number(ds.get("RescaleIntercept"))
        values = values * (slope if slope is not None else 1.0) + (intercept or 0.0)
        if options.window:
            centre, width = options.window
        else:
            c, w = first_number(ds.get("WindowCenter")), first_number(ds.get("WindowWidth"))
            if c is None or w is None or w <= 0:
                low, high = float(values.min()), float(values.max())
                c, w = (low + high) / 2, max(high - low, 1.0)
            centre, width = c, w
        scaled = np.clip((values - (centre - width / 2)) / width * 255.0, 0, 255)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            scaled = 255 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if options.viewport:
        vw, vh = options.viewport
        ratio = min(vw / image.width, vh / image.height)
        size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if media_type == "image/png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()
