"""Reading measurements and key images out of the structured reports stored in a study.

The viewer saves measurements as a DICOM SR Measurement Report (TID 1500): measurement groups
(CONTAINER "Measurement Group", 125007) holding a tracking identifier, numeric measurements (NUM)
and, under them or beside them, the graphic (SCOORD) and the image it was drawn on (IMAGE, with
its Referenced SOP Sequence). OHIF writes the IMAGE under the SCOORD under the NUM; highdicom
writes the region beside the NUM. Both are read here by walking the content tree: a measurement's
image is the first one found under the NUM, else the first one in its group.

Key Object Selection documents (KOS) name key images directly: every IMAGE item in them.

Only what the report needs is kept: names, values, units, the tracking label and the image.
Nothing is logged; a document that cannot be read is skipped (and counted).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

# SR storage SOP classes whose content may hold measurements (PS3.4 B.5).
SR_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
        "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
        "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
        "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
        "1.2.840.10008.5.1.4.1.1.88.35",  # Extensible SR
    }
)
KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document
MEASUREMENT_GROUP = "125007"
TRACKING_IDENTIFIER = "112039"


@dataclass(frozen=True)
class ImageRef:
    instance: str
    frame: int = 1


@dataclass
class Measurement:
    name: str
    value: Decimal
    unit: str
    label: str = ""
    image: ImageRef | None = None
    # The SR it came from, for the list's order and the audit.
    source: str = ""

    def value_text(self) -> str:
        """The value as the report prints it: no trailing zeros beyond one decimal."""
        value = self.value.normalize()
        text = f"{value:f}"
        if "." not in text:
            text += ".0"
        return text


@dataclass
class Evidence:
    measurements: list[Measurement] = field(default_factory=list)
    key_images: list[ImageRef] = field(default_factory=list)
    unreadable: int = 0


def _code(item: Dataset, attribute: str = "ConceptNameCodeSequence") -> tuple[str, str]:
    sequence = getattr(item, attribute, None)
    if not sequence:
        return "", ""
    code = sequence[0]
    return str(getattr(code, "CodeValue", "") or ""), str(getattr(code, "CodeMeaning", "") or "")


def _unit(measured: Dataset) -> str:
    """UCUM units print as their code ("mm", "mm2", "[hnsf'U]" as "HU"); others by meaning."""
    units = getattr(measured, "MeasurementUnitsCodeSequence", None)
    if not units:
        return ""
    code = units[0]
    value = str(getattr(code, "CodeValue", "") or "")
    if getattr(code, "CodingSchemeDesignator", "") == "UCUM" and value:
        return {"[hnsf'U]": "HU", "1": "", "deg": "°"}.get(value, value)
    return str(getattr(code, "CodeMeaning", "") or value)


def _children(item: Dataset) -> list[Dataset]:
    return list(getattr(item, "ContentSequence", None) or [])


def _walk(item: Dataset) -> Iterator[Dataset]:
    for child in _children(item):
        yield child
        yield from _walk(child)


def _image_of(item: Dataset) -> ImageRef | None:
    if getattr(item, "ValueType", "") != "IMAGE":
        return None
    references = getattr(item, "ReferencedSOPSequence", None)
    if not references:
        return None
    reference = references[0]
    uid = str(getattr(reference, "ReferencedSOPInstanceUID", "") or "")
    if not uid:
        return None
    # Referenced Frame Number is IS, maybe multi-valued: the first frame is the one shown.
    frames = getattr(reference, "ReferencedFrameNumber", None)
    if isinstance(frames, MultiValue):
        frames = frames[0] if frames else None
    try:
        frame = max(1, int(frames)) if frames is not None else 1
    except (TypeError, ValueError):
        frame = 1
    return ImageRef(uid, frame)


def _first_image(item: Dataset) -> ImageRef | None:
    for child in _walk(item):
        image = _image_of(child)
        if image is not None:
            return image
    return None


def _measurement(
    item: Dataset, group: Dataset | None, label: str, source: str
) -> Measurement | None:
    values = getattr(item, "MeasuredValueSequence", None)
    if not values:
        return None  # a NUM without a value ("not measured")
    measured = values[0]
    try:
        value = Decimal(str(measured.NumericValue))
    except (AttributeError, InvalidOperation, ValueError):
        return None
    unit = _unit(measured)
    _, name = _code(item)
    image = _first_image(item) or (_first_image(group) if group is not None else None)
    return Measurement(
        name=name or "Measurement",
        value=value,
        unit=unit,
        label=label,
        image=image,
        source=source,
    )


def _group_label(group: Dataset) -> str:
    for child in _children(group):
        if getattr(child, "ValueType", "") == "TEXT" and _code(child)[0] == TRACKING_IDENTIFIER:
            return str(getattr(child, "TextValue", "") or "")[:64]
    return ""


def measurements_of(dataset: Dataset) -> list[Measurement]:
    """Every measurement of one SR document, in document order."""
    source = str(getattr(dataset, "SOPInstanceUID", "") or "")
    found: list[Measurement] = []
    seen: set[int] = set()

    def visit(item: Dataset, group: Dataset | None, label: str) -> None:
        for child in _children(item):
            value_type = getattr(child, "ValueType", "")
            if value_type == "CONTAINER" and _code(child)[0] == MEASUREMENT_GROUP:
                visit(child, child, _group_label(child))
            elif value_type == "NUM":
                if id(child) not in seen:
                    seen.add(id(child))
                    measurement = _measurement(child, group, label, source)
                    if measurement is not None:
                        found.append(measurement)
            else:
                visit(child, group, label)

    visit(dataset, None, "")
    return found


def key_images_of(dataset: Dataset) -> list[ImageRef]:
    """The images a Key Object Selection document names."""
    images = []
    for item in _walk(dataset):
        image = _image_of(item)
        if image is not None and image not in images:
            images.append(image)
    return images


def read(datasets: list[Any]) -> Evidence:
    """The evidence of a study's SR and KOS documents (pydicom datasets, or None for one that
    could not be read)."""
    evidence = Evidence()
    for dataset in datasets:
        if dataset is None:
            evidence.unreadable += 1
            continue
        sop_class = str(getattr(dataset, "SOPClassUID", "") or "")
        try:
            if sop_class == KOS_CLASS:
                for image in key_images_of(dataset):
                    if image not in evidence.key_images:
                        evidence.key_images.append(image)
            elif sop_class in SR_CLASSES:
                evidence.measurements.extend(measurements_of(dataset))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            evidence.unreadable += 1
    return evidence
