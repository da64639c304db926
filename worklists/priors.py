"""Relevant prior studies of a work item's patient, and warming what the viewer reads of them.

Priors come from the same tenant only: the same Patient row, which is the tenant's Patient ID
with its issuer. Relevance: a prior sharing the item's reading modality or body part comes
first, then the rest; newest first within each; at most ``PRIORS_COUNT`` and none older than
``PRIORS_MAX_AGE_DAYS`` (settings).

Warming builds each prior series' derived metadata document and thumbnail now (the ``derive``
work done on the ``prefetch`` queue), so opening the priors beside the current study costs one
object read per series. Frames need no warming: they are ranged reads of the stored objects.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from studies import derive
from studies.models import Series, SeriesDerived, Study, StudyState

from .models import Prior, WorkItem


def find(item: WorkItem) -> list[Study]:
    """The item's relevant priors, most relevant first (one query)."""
    count = settings.SKYLIGHT["PRIORS_COUNT"]
    oldest = timezone.now() - timedelta(days=settings.SKYLIGHT["PRIORS_MAX_AGE_DAYS"])
    own = item.study_links.values("study_id")
    candidates = list(
        Study.objects.filter(tenant_id=item.tenant_id, patient_id=item.patient_id)
        .filter(state=StudyState.READY)
        .exclude(id__in=own)
        .filter(Q(study_date__isnull=True) | Q(study_date__gte=oldest.date()))
        .filter(first_received_at__lte=item.arrived_at + timedelta(days=1))
        .order_by("-study_date", "-study_time", "-id")[: count * 5]
    )

    def relevant(study: Study) -> bool:
        modalities = {m.upper() for m in study.modalities}
        parts = {p.upper() for p in study.body_parts_examined.split("\\") if p}
        return item.modality in modalities or (bool(item.body_part) and item.body_part in parts)

    ranked = [s for s in candidates if relevant(s)] + [s for s in candidates if not relevant(s)]
    return ranked[:count]


def prefetch(item_id: int) -> int:
    """Record the item's priors and warm their derived data. Idempotent; returns how many
    series were built now."""
    item = WorkItem.objects.filter(pk=item_id).first()
    if item is None:
        return 0
    studies = find(item)
    for rank, study in enumerate(studies, start=1):
        try:
            Prior.objects.update_or_create(item=item, study=study, defaults={"rank": rank})
        except IntegrityError:
            pass  # recorded by a concurrent run
    built = 0
    series = Series.objects.filter(tenant_id=item.tenant_id, study__in=studies)
    stale = SeriesDerived.objects.filter(tenant_id=item.tenant_id, series__in=series)
    for row in stale.select_related("series"):
        if row.is_current(row.series.number_of_series_related_instances):
            continue
        # Built now rather than after the derive queue's quiet period: these series are complete.
        outcome = derive.build_series(
            tenant_id=item.tenant_id,
            series_id=row.series_id,
            now=row.changed_at + timedelta(seconds=settings.SKYLIGHT["DERIVE_QUIET_SECONDS"]),
        )
        built += outcome in ("built", "changed")
    Prior.objects.filter(item=item, study__in=studies).update(warmed_at=timezone.now())
    return built
