"""Measurements and key images: what the report cites from its study.

A key image is kept on the report version as ``{"series": uid, "instance": uid, "frame": n,
"caption": text}``; ``clean_key_images`` checks what a browser sends before it is saved.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from studies.models import Instance
from studies.storage import object_store
from worklists.models import WorkItem

from . import sr

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


# ---------------------------------------------------------------------------------------------
# What the study's structured reports hold, for the report editor
# ---------------------------------------------------------------------------------------------

# A study's SR and KOS documents read at most: more is not a report's evidence but a problem.
MAX_DOCUMENTS = 50


@dataclass
class Image:
    """An image of the study, as the editor shows it and the report cites it."""

    series: str
    instance: str
    frame: int
    series_number: int | None
    instance_number: int | None
    modality: str
    thumbnail: str

    def where(self) -> str:
        """ "series 3, image 150" — how a radiologist names an image in a report."""
        parts = []
        if self.series_number is not None:
            parts.append(f"series {self.series_number}")
        if self.instance_number is not None:
            parts.append(f"image {self.instance_number}")
        if self.frame > 1:
            parts.append(f"frame {self.frame}")
        return ", ".join(parts)

    def as_key_image(self) -> dict[str, Any]:
        return {"series": self.series, "instance": self.instance, "frame": self.frame}


@dataclass
class Cited:
    name: str
    value: str
    unit: str
    label: str
    image: Image | None

    def text(self) -> str:
        """The sentence inserted into the findings: "Lesion 1: Length 97.0 mm (series 3,
        image 150)"."""
        quantity = f"{self.name} {self.value}{' ' + self.unit if self.unit else ''}"
        where = f" ({self.image.where()})" if self.image and self.image.where() else ""
        return f"{self.label + ': ' if self.label else ''}{quantity}{where}"


@dataclass
class StudyEvidence:
    measurements: list[Cited] = field(default_factory=list)
    candidates: list[Image] = field(default_factory=list)
    unreadable: int = 0


def _read_dataset(instance: Instance) -> Dataset | None:
    try:
        with object_store().open(instance.storage_key, "rb") as f:
            return dcmread(f, force=False)
    except (OSError, InvalidDicomError, ValueError, EOFError):
        return None


def study_evidence(item: WorkItem) -> StudyEvidence:
    """The measurements and candidate key images of the item's study: every SR's measurements,
    and the images they were drawn on or a Key Object Selection names. Three queries and one
    read per document."""
    documents = list(
        Instance.objects.filter(
            tenant_id=item.tenant_id,
            study_id=item.study_id,
            sop_class_uid__in=sr.SR_CLASSES | {sr.KOS_CLASS},
        )
        .order_by("series__series_number", "instance_number", "pk")
        .only("storage_key", "sop_class_uid")[:MAX_DOCUMENTS]
    )
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="evidence") as pool:
        found = sr.read(list(pool.map(_read_dataset, documents)))
    wanted = {m.image.instance for m in found.measurements if m.image} | {
        k.instance for k in found.key_images
    }
    rows = {
        row.sop_instance_uid: row
        for row in Instance.objects.filter(
            tenant_id=item.tenant_id, study_id=item.study_id, sop_instance_uid__in=wanted
        ).select_related("series")
    }
    slug = item.tenant.slug
    study_uid = item.study.study_instance_uid

    def image(ref: sr.ImageRef | None) -> Image | None:
        row = rows.get(ref.instance) if ref else None
        if ref is None or row is None:
            return None  # an image of another study, or not (yet) stored: not citable
        return Image(
            series=row.series.series_instance_uid,
            instance=row.sop_instance_uid,
            frame=ref.frame,
            series_number=row.series.series_number,
            instance_number=row.instance_number,
            modality=row.series.modality,
            thumbnail=reverse(
                "dicomweb-frames-thumbnail",
                kwargs={
                    "tenant_slug": slug,
                    "study_uid": study_uid,
                    "series_uid": row.series.series_instance_uid,
                    "instance_uid": row.sop_instance_uid,
                    "frames": str(ref.frame),
                },
            ),
        )

    result = StudyEvidence(unreadable=found.unreadable)
    seen: set[tuple[str, int]] = set()
    for measurement in found.measurements:
        cited = Cited(
            name=measurement.name,
            value=measurement.value_text(),
            unit=measurement.unit,
            label=measurement.label,
            image=image(measurement.image),
        )
        result.measurements.append(cited)
    for candidate in [image(k) for k in found.key_images] + [m.image for m in result.measurements]:
        if candidate is not None and (candidate.instance, candidate.frame) not in seen:
            seen.add((candidate.instance, candidate.frame))
            result.candidates.append(candidate)
    return result
