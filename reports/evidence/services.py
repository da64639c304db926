"""Measurements and key images: what the report cites from its study.

A key image is kept on the report version as ``{"series": uid, "instance": uid, "frame": n,
"caption": text}``; ``clean_key_images`` checks what a browser sends before it is saved.
"""

from __future__ import annotations

from typing import Any

from studies.models import Instance
from worklists.models import WorkItem

MAX_KEY_IMAGES = 24
MAX_CAPTION = 200


class KeyImageError(ValueError):
    """A key image the report cannot keep; the message names no patient data."""


def _uid(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise KeyImageError(f"A key image needs its {what} UID.")
    if any(part == "" or not part.isdigit() for part in value.split(".")):
        raise KeyImageError(f"The {what} UID of a key image is not a DICOM UID.")
    return value


def clean_key_images(item: WorkItem, key_images: Any) -> list[dict[str, Any]]:
    """The key images as they will be signed: each an instance of the item's study, in the order
    given, without repeats. One query, however many images."""
    if not isinstance(key_images, list):
        raise KeyImageError("Key images are a list.")
    if len(key_images) > MAX_KEY_IMAGES:
        raise KeyImageError(f"A report keeps at most {MAX_KEY_IMAGES} key images.")
    cleaned: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for entry in key_images:
        if not isinstance(entry, dict):
            raise KeyImageError("Each key image is an object with series, instance and frame.")
        series = _uid(entry.get("series"), "series")
        instance = _uid(entry.get("instance"), "instance")
        frame = entry.get("frame", 1)
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 1:
            raise KeyImageError("The frame of a key image is a number from 1.")
        caption = entry.get("caption", "")
        if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
            raise KeyImageError(f"A key image caption is text of at most {MAX_CAPTION} characters.")
        if (instance, frame) in seen:
            continue
        seen.add((instance, frame))
        cleaned.append({"series": series, "instance": instance, "frame": frame, "caption": caption})
    if cleaned:
        found = set(
            Instance.objects.filter(
                tenant_id=item.tenant_id,
                study_id=item.study_id,
                sop_instance_uid__in={e["instance"] for e in cleaned},
            ).values_list("sop_instance_uid", "series__series_instance_uid")
        )
        for entry in cleaned:
            if (entry["instance"], entry["series"]) not in found:
                raise KeyImageError("A key image is not an image of this study.")
    return cleaned
