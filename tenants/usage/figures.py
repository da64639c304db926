"""The dashboards' figures, each one grouped SQL query over the tenants asked for.

Every function takes tenant ids and a period and answers per tenant, so the platform page costs
the same queries as one hospital's. Percentiles are PostgreSQL's ``percentile_cont`` (the
database sorts, Python receives two numbers per group); SQLite has no such aggregate, so in the
embedded mode the durations come back as rows and the same interpolation is done in Python.
Nothing here returns patient data: counts, bytes, durations, AE titles and addresses of callers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    F,
    FloatField,
    Func,
    Max,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from studies.dimse.scp import (
    REASON_CALLED_AE_NOT_RECOGNIZED,
    REASON_CALLING_AE_NOT_RECOGNIZED,
    REASON_NO_REASON,
)
from studies.models import Receipt, Series, Study
from tenants.models import AuditAction, AuditEvent
from worklists.models import WorkItem

# The A-ASSOCIATE-RJ reasons the SCP records (studies/dimse/scp.py), in words.
REJECTION_REASONS: dict[str, str] = {
    str(REASON_CALLED_AE_NOT_RECOGNIZED): "Called AE title not recognised (no such hospital)",
    str(REASON_CALLING_AE_NOT_RECOGNIZED): "Calling AE title not allowed by the hospital",
    # The SCP answers "no reason" on purpose when a known title calls from a network the
    # hospital did not allow (scp._decide), so a scanner of the network learns nothing.
    str(REASON_NO_REASON): "Calling address not in the hospital's allowed networks",
    "local-limit-exceeded": "Too many associations open at once",
}


def reason_in_words(reason: Any) -> str:
    return REJECTION_REASONS.get(str(reason), f"Other ({reason})")


@dataclass(frozen=True)
class Period:
    """Whole days, ``start`` to ``end`` inclusive, in the site's time zone."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int, *, today: date) -> Period:
        return cls(start=today - timedelta(days=days - 1), end=today)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """Exclusive."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def window(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.since, f"{field_name}__lt": self.until})


# ---------------------------------------------------------------------------------------------
# Percentiles
# ---------------------------------------------------------------------------------------------


class _Seconds(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


class _PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """``percentile_cont``'s linear interpolation, for SQLite (values sorted)."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


@dataclass
class Durations:
    count: int = 0
    p50: float | None = None  # seconds
    p95: float | None = None
    met: int = 0  # how many met the deadline, where one applies

    @property
    def met_percent(self) -> float | None:
        return round(100 * self.met / self.count, 1) if self.count else None

    @property
    def p50_text(self) -> str:
        return human_seconds(self.p50)

    @property
    def p95_text(self) -> str:
        return human_seconds(self.p95)


def durations(
    items: QuerySet[Any],
    keys: tuple[str, ...],
    *,
    start: str,
    end: str,
    deadline: str = "",
) -> dict[tuple[Any, ...], Durations]:
    """Per ``keys`` group: count, p50 and p95 of ``end - start`` in seconds, and how many ended
    by ``deadline``. One query on either database."""
    items = items.filter(**{f"{end}__isnull": False}).order_by()
    if connection.vendor == "postgresql":
        seconds = _Seconds(F(end) - F(start))
        aggregates: dict[str, Any] = {
            "n": Count("pk"),
            "p50": _PercentileCont(seconds, 0.5),
            "p95": _PercentileCont(seconds, 0.95),
        }
        if deadline:
            aggregates["met"] = Count("pk", filter=Q(**{f"{end}__lte": F(deadline)}))
        return {
            tuple(row[k] for k in keys): Durations(
                count=row["n"], p50=row["p50"], p95=row["p95"], met=row.get("met", 0)
            )
            for row in items.values(*keys).annotate(**aggregates)
        }
    columns = (*keys, start, end, *((deadline,) if deadline else ()))
    grouped: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    met: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in items.values_list(*columns):
        key = tuple(row[: len(keys)])
        began, ended = row[len(keys)], row[len(keys) + 1]
        grouped[key].append((ended - began).total_seconds())
        if deadline and ended <= row[len(keys) + 2]:
            met[key] += 1
    result = {}
    for key, values in grouped.items():
        values.sort()
        result[key] = Durations(
            count=len(values),
            p50=percentile(values, 0.5),
            p95=percentile(values, 0.95),
            met=met[key],
        )
    return result


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


@dataclass
class Day:
    day: date
    studies: int = 0
    instances: int = 0


def _per_day(rows: QuerySet[Any], moment: str, period: Period) -> Iterable[tuple[int, date, int]]:
    """(tenant id, day, count) of the rows whose ``moment`` falls in the period."""
    grouped = (
        rows.filter(period.window(moment))
        .annotate(day=TruncDate(moment))
        .values_list("tenant_id", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return ((tenant_id, day, n) for tenant_id, day, n in grouped)


def daily(tenant_ids: Collection[int], period: Period) -> dict[int, list[Day]]:
    """Studies first received and instances received, per tenant and day (two queries)."""
    days = {t: {d: Day(d) for d in period.days()} for t in tenant_ids}
    studies = Study.objects.filter(tenant_id__in=tenant_ids)
    for tenant_id, day, n in _per_day(studies, "first_received_at", period):
        if day in days[tenant_id]:
            days[tenant_id][day].studies = n
    receipts = Receipt.objects.filter(tenant_id__in=tenant_ids)
    for tenant_id, day, n in _per_day(receipts, "received_at", period):
        if day in days[tenant_id]:
            days[tenant_id][day].instances = n
    return {t: list(by_day.values()) for t, by_day in days.items()}


@dataclass
class Stored:
    total: int = 0
    by_modality: list[tuple[str, str, int]] = field(default_factory=list)  # modality, size, n

    @property
    def total_text(self) -> str:
        return human_bytes(self.total)


def stored_bytes(tenant_ids: Collection[int]) -> dict[int, Stored]:
    """Bytes held now (the index's instances), per tenant and modality (one query)."""
    result = {t: Stored() for t in tenant_ids}
    rows = (
        Series.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id", "modality")
        .annotate(size=Sum("total_size"), n=Sum("number_of_series_related_instances"))
        .order_by("tenant_id", "modality")
    )
    for row in rows:
        stored = result[row["tenant_id"]]
        stored.total += row["size"] or 0
        stored.by_modality.append(
            (row["modality"] or "?", human_bytes(row["size"] or 0), row["n"] or 0)
        )
    return result


def ingest_lag(tenant_ids: Collection[int], period: Period) -> dict[int, Durations]:
    """Received → indexed (processed), p50 and p95, for what was received in the period."""
    receipts = Receipt.objects.filter(period.window("received_at"), tenant_id__in=tenant_ids)
    by_key = durations(receipts, ("tenant_id",), start="received_at", end="processed_at")
    return {t: by_key.get((t,), Durations()) for t in tenant_ids}


@dataclass
class Rejection:
    tenant_id: int | None
    reason: str
    calling_ae_title: str
    called_ae_title: str
    address: str
    count: int
    last: datetime


def rejections(
    tenant_ids: Collection[int], period: Period, *, unknown_called_ae: bool = False
) -> list[Rejection]:
    """Refused associations by tenant, reason, caller and address (one query).
    ``unknown_called_ae`` adds those whose called AE title named no tenant (recorded without
    one)."""
    where = Q(tenant_id__in=tenant_ids)
    if unknown_called_ae:
        where |= Q(tenant__isnull=True)
    rows = (
        AuditEvent.objects.filter(
            where, period.window("occurred_at"), action=AuditAction.ASSOCIATION_REJECTED
        )
        .values(
            "tenant_id", "detail__reason", "detail__called_ae", "actor_ae_title", "source_address"
        )
        .annotate(n=Count("id"), last=Max("occurred_at"))
        .order_by("-n")
    )
    return [
        Rejection(
            tenant_id=row["tenant_id"],
            reason=reason_in_words(row["detail__reason"]),
            calling_ae_title=row["actor_ae_title"],
            called_ae_title=str(row["detail__called_ae"] or ""),
            address=str(row["source_address"] or ""),
            count=row["n"],
            last=row["last"],
        )
        for row in rows
    ]


@dataclass
class Turnaround:
    tenant_id: int
    priority: str
    rank: int
    sla_minutes: int
    times: Durations


def turnaround(
    tenant_ids: Collection[int], period: Period, *, read_by: QuerySet[Any] | None = None
) -> list[Turnaround]:
    """Arrived → final of items made final in the period, per tenant and priority class, with
    the share that met the SLA (one query). ``read_by``: only items these users (ids) read."""
    items = WorkItem.objects.filter(period.window("final_at"), tenant_id__in=tenant_ids)
    if read_by is not None:
        items = items.filter(holder_id__in=read_by)
    keys = ("tenant_id", "priority__name", "priority__rank", "priority__sla_minutes")
    by_key = durations(items, keys, start="arrived_at", end="final_at", deadline="sla_due_at")
    rows = [
        Turnaround(tenant_id=k[0], priority=k[1], rank=k[2], sla_minutes=k[3], times=d)
        for k, d in by_key.items()
    ]
    return sorted(rows, key=lambda r: (r.tenant_id, r.rank, r.priority))


# ---------------------------------------------------------------------------------------------
# Presentation helpers (plain values for the templates)
# ---------------------------------------------------------------------------------------------


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Bar:
    x: int
    y: int
    height: int
    label: str


def bars(values: Iterable[tuple[str, int]], *, height: int = 40, width: int = 8) -> list[Bar]:
    """An inline SVG bar chart's rectangles, scaled to the largest value."""
    pairs = list(values)
    top = max((v for _, v in pairs), default=0) or 1
    result = []
    for n, (label, value) in enumerate(pairs):
        h = round(height * value / top)
        result.append(Bar(x=n * (width + 2), y=height - h, height=h, label=f"{label}: {value}"))
    return result
