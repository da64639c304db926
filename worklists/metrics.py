"""Turnaround of read items: arrival to preliminary and to final, per tenant, priority or reader.

Shared by the REST API (``/api/worklist/metrics/``) and the dashboard page. Means and medians are
computed here, not in SQL: a median is not portable SQL (``percentile_cont`` is PostgreSQL's), and
the embedded mode runs on SQLite. One query whatever the grouping; rows are three timestamps.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from statistics import mean, median
from typing import Any

from django.db.models import Q, QuerySet

from tenants.models import Membership, ReadingAgreement, Role, User

from . import eligibility
from .models import WorkItem

GROUPINGS = {
    "tenant": "tenant__slug",
    "priority": "priority__code",
    # The radiologist who held the item when it was read (final keeps the holder).
    "radiologist": "holder__username",
}
UNKNOWN = "-"


def _stats(minutes: list[float]) -> dict[str, Any]:
    if not minutes:
        return {"count": 0, "mean_minutes": None, "median_minutes": None}
    return {
        "count": len(minutes),
        "mean_minutes": round(mean(minutes), 1),
        "median_minutes": round(median(minutes), 1),
    }


def _minutes(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds() / 60


def turnaround(items: QuerySet[WorkItem], by: str) -> list[dict[str, Any]]:
    """[{key, preliminary: {count, mean_minutes, median_minutes}, final: {...}}], by key."""
    field = GROUPINGS[by]
    rows = (
        items.filter(Q(preliminary_at__isnull=False) | Q(final_at__isnull=False))
        .order_by()
        .values_list(field, "arrived_at", "preliminary_at", "final_at")
    )
    preliminary: dict[str, list[float]] = defaultdict(list)
    final: dict[str, list[float]] = defaultdict(list)
    for key, arrived, prelim_at, final_at in rows:
        key = key or UNKNOWN
        if (m := _minutes(arrived, prelim_at)) is not None:
            preliminary[key].append(m)
        if (m := _minutes(arrived, final_at)) is not None:
            final[key].append(m)
    return [
        {"key": key, "preliminary": _stats(preliminary[key]), "final": _stats(final[key])}
        for key in sorted(set(preliminary) | set(final))
    ]


def measurable_items(user: User) -> QuerySet[WorkItem]:
    """Items the user may read today, and all items of tenants they manage."""
    readable = eligibility.visible_q(eligibility.coverage(user))
    if not user.is_active:
        return WorkItem.objects.none()
    admin_of = Membership.objects.filter(
        user=user, tenant__isnull=False, role=Role.TENANT_ADMIN
    ).values("tenant_id")
    lead_of = ReadingAgreement.objects.filter(
        is_active=True,
        group__memberships__user=user,
        group__memberships__role=Role.GROUP_ADMIN,
    ).values("tenant_id")
    return WorkItem.objects.filter(readable | Q(tenant_id__in=admin_of) | Q(tenant_id__in=lead_of))
