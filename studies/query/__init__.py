"""The query engine shared by QIDO-RS and C-FIND: a C-FIND-style identifier in, data sets out.

``find_matches(tenant, level, identifier)`` reads the identifier as C-FIND does: every element
present is a return key, and a non-empty one is also a matching key (``matching.py``). Answers
come from the index alone, one SQL query whatever the number of results, always filtered by the
tenant first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model, Q, QuerySet
from pydicom.dataset import Dataset

from tenants.models import Tenant

from ..models import Instance, Patient, Series, Study
from .keys import (
    CONSTANT,
    DEPTH,
    IMAGE,
    KEYS,
    LEVELS,
    NOT_MATCHED,
    PATHS,
    PATIENT,
    REQUIRED,
    SERIES,
    STUDY,
    UNIQUE,
    Key,
    add_element,
    audit_keys,
    dicom_value,
    visible_at,
)
from .matching import QueryError, match, study_date_time

__all__ = [
    "IMAGE",
    "PATIENT",
    "SERIES",
    "STUDY",
    "QueryError",
    "QueryResult",
    "audit_keys",
    "find_matches",
]

MODELS: dict[str, type[Model]] = {
    PATIENT: Patient,
    STUDY: Study,
    SERIES: Series,
    IMAGE: Instance,
}
RELATED = {
    PATIENT: (),
    STUDY: ("patient",),
    SERIES: ("study", "study__patient"),
    IMAGE: ("series", "study", "study__patient"),
}
ORDER = {
    PATIENT: ("patient_id", "id"),
    STUDY: ("-study_date", "-study_time", "-id"),
    SERIES: ("study_id", "series_number", "id"),
    IMAGE: ("series_id", "instance_number", "id"),
}


@dataclass
class QueryResult:
    datasets: list[Dataset]
    # More matches exist beyond ``limit``.
    truncated: bool = False
    # Keys given a value that the index cannot match on; they were not used to filter.
    ignored: list[str] = field(default_factory=list)

    @property
    def study_uids(self) -> list[str]:
        """The Study Instance UIDs of the results, once each, in result order (for retrieve)."""
        return list(
            dict.fromkeys(
                str(ds.StudyInstanceUID) for ds in self.datasets if "StudyInstanceUID" in ds
            )
        )


def _owner_value(row: Any, level: str, key: Key) -> Any:
    target: Any = row
    for step in PATHS[level][key.owner].split("__"):
        if step:
            target = getattr(target, step)
    return getattr(target, key.column)


def find_matches(
    tenant: Tenant,
    level: str,
    identifier: Dataset,
    *,
    fuzzy: bool = False,
    limit: int | None = None,
    offset: int = 0,
    root: str = "study",
    include_required: bool = False,
) -> QueryResult:
    """Match ``identifier`` at ``level`` ("PATIENT", "STUDY", "SERIES" or "IMAGE").

    Each result holds the keys the identifier asked for (empty when the index does not know
    them), the unique keys down to the level, and with ``include_required`` every attribute
    PS3.18 requires a QIDO-RS answer to carry. ``root`` is the information model ("patient" or
    "study"); only the patient root has a PATIENT level.
    """
    if level not in LEVELS or (level == PATIENT and root != "patient"):
        raise QueryError(f"The query level {level!r} is not one this model offers.")
    asked: list[str] = []
    filters = Q()
    ignored: list[str] = []
    values: dict[str, str] = {}
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in NOT_MATCHED or element.tag.group == 0x0002:
            continue
        asked.append(keyword)
        if element.VR == "SQ":
            if element.value:
                ignored.append(keyword)
            continue
        value = _text_of(element.value)
        if value:
            values[keyword] = value

    prefix = PATHS[level]
    combined = (
        "-" in values.get("StudyDate", "")
        and "-" in values.get("StudyTime", "")
        and DEPTH[STUDY] <= DEPTH[level]
    )
    if combined:
        filters &= study_date_time(
            prefix[STUDY], values.pop("StudyDate"), values.pop("StudyTime"), KEYS
        )
    for keyword, value in values.items():
        key = KEYS.get(keyword)
        if key is None or not key.match or not visible_at(key, level):
            ignored.append(keyword)
            continue
        filters &= match(key, prefix[key.owner], value, fuzzy=fuzzy)

    queryset: QuerySet[Any] = (
        MODELS[level]
        .objects.filter(tenant=tenant)  # type: ignore[attr-defined]
        .filter(filters)
        .select_related(*RELATED[level])
        .order_by(*ORDER[level])
    )
    if limit is not None:
        rows = list(queryset[offset : offset + limit + 1])
        truncated = len(rows) > limit
        rows = rows[:limit]
    else:
        rows = list(queryset[offset:] if offset else queryset)
        truncated = False

    wanted = _return_keys(level, asked, include_required)
    return QueryResult(
        datasets=[_dataset(row, level, wanted) for row in rows],
        truncated=truncated,
        ignored=sorted(set(ignored)),
    )


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _return_keys(level: str, asked: list[str], include_required: bool) -> list[str]:
    wanted: list[str] = []
    chain = [lvl for lvl in (STUDY, SERIES, IMAGE) if DEPTH[lvl] <= DEPTH[level]]
    if level == PATIENT:
        chain = [PATIENT]
    for keyword in (
        *(UNIQUE[lvl] for lvl in chain),
        *(REQUIRED[level] if include_required else ()),
        *asked,
    ):
        if keyword not in wanted:
            wanted.append(keyword)
    return wanted


def _dataset(row: Any, level: str, wanted: list[str]) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in wanted:
        key = KEYS.get(keyword)
        if keyword in CONSTANT:
            value: Any = CONSTANT[keyword]
        elif key is not None and visible_at(key, level):
            value = dicom_value(key, _owner_value(row, level, key))
        else:
            value = None
        add_element(ds, keyword, value)
    return ds
