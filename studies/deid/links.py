"""A de-identified share link's recipe, its UID map in both directions, and the burned-in check
of its instances.

The map is not stored: a mapped UID is recomputed from the source UID (HMAC with the server's
secret, scoped to the tenant and the link's own random key), and a mapped UID in a request is
resolved by mapping the link's own study, series and instance UIDs, one level at a time, so a
frame request hashes one series' worth of UIDs, not the whole share. Only the tenant (which has
the index and the key) can go back from a mapped UID to the patient.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.utils.crypto import salted_hmac
from pydicom.dataset import Dataset

from ..models import Instance, Series, Study
from ..sharing.models import ShareLink
from .models import DeidInstance
from .profile import DATES_SHIFT, Options, Recipe, burned_in_reason

log = logging.getLogger(__name__)

# A shifted share moves every date by the same number of days, between one and three years back.
SHIFT_DAYS = range(-3 * 365, -365)


def new_key() -> str:
    return secrets.token_hex(16)


def new_offset(options: Options) -> int:
    if options.dates != DATES_SHIFT:
        return 0
    return SHIFT_DAYS.start + secrets.randbelow(len(SHIFT_DAYS))


def recipe(link: ShareLink) -> Recipe:
    # The secret is derived from SECRET_KEY: a database copy alone cannot rebuild the map.
    secret = salted_hmac("skylight.deid.uid-map", "v1", algorithm="sha256").digest()
    return Recipe(
        options=Options.from_dict(link.deid_options or {}),
        secret=secret,
        scope=f"{link.tenant_id}|{link.deid_key}",
        date_offset_days=link.deid_date_offset_days,
    )


class UidMap:
    """Source to mapped UIDs of one link, and mapped back to the link's own rows."""

    def __init__(self, link: ShareLink) -> None:
        self.link = link
        self.recipe = recipe(link)
        self._studies: dict[str, Study] | None = None

    def uid(self, original: str) -> str:
        return self.recipe.uid(original)

    def studies(self) -> dict[str, Study]:
        """The link's studies by mapped Study Instance UID."""
        if self._studies is None:
            rows = Study.objects.filter(
                tenant_id=self.link.tenant_id, id__in=self.link.shared.values("study_id")
            ).order_by("study_date", "id")
            self._studies = {self.uid(s.study_instance_uid): s for s in rows}
        return self._studies

    def study(self, mapped: str) -> Study | None:
        return self.studies().get(mapped)

    def series(self, study: Study, mapped: str) -> Series | None:
        rows = Series.objects.filter(tenant_id=self.link.tenant_id, study=study).only(
            "id", "series_instance_uid", "study_id", "tenant_id"
        )
        for row in rows:
            if self.uid(row.series_instance_uid) == mapped:
                return row
        return None

    def instance(self, series: Series, mapped: str) -> Instance | None:
        rows = Instance.objects.filter(tenant_id=self.link.tenant_id, series=series).only(
            "id", "sop_instance_uid"
        )
        for row in rows:
            if self.uid(row.sop_instance_uid) == mapped:
                return row
        return None


# ---------------------------------------------------------------------------------------------
# Burned-in annotation: checked once per instance and link, from the series' metadata documents
# ---------------------------------------------------------------------------------------------


def documents_of(series: Series) -> list[dict[str, Any]]:
    """The DICOM JSON of every instance of the series (the derived document when current, else
    read from the stored headers), as WADO-RS metadata sends it."""
    from ..dicomweb.wado import _series_documents  # the same source as the metadata route

    chunks = list(_series_documents(series.tenant, series))
    documents: list[dict[str, Any]] = json.loads(b"[" + b",".join(chunks) + b"]")
    return documents


def sop_uid_of(document: dict[str, Any]) -> str:
    values = document.get("00080018", {}).get("Value") or [""]
    return str(values[0])


def header_of(document: dict[str, Any]) -> Dataset:
    """The few attributes the burned-in check reads, from a metadata document."""
    ds = Dataset()
    for keyword, tag in (
        ("SOPClassUID", "00080016"),
        ("Modality", "00080060"),
        ("BurnedInAnnotation", "00280301"),
    ):
        if tag in document:
            values = document[tag].get("Value") or [""]
            setattr(ds, keyword, str(values[0]))
    return ds


def flags(link: ShareLink, studies: Iterable[Study]) -> dict[int, str]:
    """Instance id to the reason it is flagged ("" when it is not), for every instance of these
    studies; instances not yet checked for this link are checked now and recorded (once: a
    unique constraint makes a concurrent check harmless)."""
    study_ids = [s.pk for s in studies]
    known = dict(
        DeidInstance.objects.filter(
            tenant_id=link.tenant_id, link=link, instance__study_id__in=study_ids
        ).values_list("instance_id", "reason")
    )
    missing_series = set(
        Instance.objects.filter(tenant_id=link.tenant_id, study_id__in=study_ids)
        .exclude(id__in=list(known))
        .values_list("series_id", flat=True)
    )
    if not missing_series:
        return known
    rows: list[DeidInstance] = []
    for series in Series.objects.filter(
        tenant_id=link.tenant_id, id__in=missing_series
    ).select_related("study", "tenant"):
        by_uid = {
            i.sop_instance_uid: i.pk
            for i in Instance.objects.filter(tenant_id=link.tenant_id, series=series).only(
                "id", "sop_instance_uid"
            )
        }
        for document in documents_of(series):
            instance_id = by_uid.pop(sop_uid_of(document), None)
            if instance_id is None or instance_id in known:
                continue
            reason = burned_in_reason(header_of(document))
            known[instance_id] = reason
            rows.append(
                DeidInstance(
                    tenant_id=link.tenant_id, link=link, instance_id=instance_id, reason=reason
                )
            )
        for instance_id in by_uid.values():  # no document: nothing to judge it by, so flagged
            if instance_id not in known:
                known[instance_id] = "its header could not be read"
                rows.append(
                    DeidInstance(
                        tenant_id=link.tenant_id,
                        link=link,
                        instance_id=instance_id,
                        reason=known[instance_id],
                    )
                )
    DeidInstance.objects.bulk_create(rows, ignore_conflicts=True)
    return known


def excluded(link: ShareLink, studies: Iterable[Study]) -> set[int]:
    """The instances this link does not serve: flagged ones, unless the policy includes them."""
    from .models import BurnedIn

    if link.deid_burned_in == BurnedIn.WARN:
        return set()
    return {i for i, reason in flags(link, studies).items() if reason}
