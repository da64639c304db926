"""Reads of the worklist, shared by the REST API and the pages.

``worklist(user, filters)`` is the one query behind every list: the user's coverage (a handful of
queries, whatever the number of items) becomes a WHERE clause, then filters and order apply.
Items held by someone else under a live lease are not on the list: they come back when the lease
ends (at once, before the housekeeping tidies the row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from studies.dicom.attributes import search_form
from tenants import tokens
from tenants.models import Membership, ReadingGroup, Role, User
from tenants.queries import readable_tenants

from . import eligibility
from .models import OPEN_STATES, ItemState, PriorityClass, SavedView, WorkItem

SORTS = {
    "priority": ("priority_rank", "sla_due_at", "id"),
    "sla": ("sla_due_at", "priority_rank", "id"),
    "arrived": ("arrived_at", "id"),
    "-arrived": ("-arrived_at", "-id"),
}
DEFAULT_SORT = "priority"
# Within this much of its deadline an item shows amber; past it, red.
WARNING_WINDOW = timedelta(minutes=30)
FILTER_KEYS = (
    "tenant",
    "priority",
    "modality",
    "subspecialty",
    "state",
    "q",
    "overdue",
    "due_within",
    "sort",
)


class FilterError(ValueError):
    """A filter value that cannot be used; the message is safe to show."""


@dataclass(frozen=True)
class Filters:
    tenant: str = ""  # slug
    priority: str = ""  # code
    modality: str = ""
    subspecialty: str = ""
    state: str = ""  # "", "scheduled", "in_progress", "mine", "completed", "canceled"
    q: str = ""  # patient name, patient ID or accession number
    overdue: bool = False
    due_within: int | None = None  # minutes
    sort: str = DEFAULT_SORT

    @classmethod
    def parse(cls, data: Any) -> Filters:
        """From query parameters or a saved view's JSON. Raises FilterError."""

        def text(name: str, limit: int = 64) -> str:
            value = str(data.get(name, "") or "").strip()
            if len(value) > limit:
                raise FilterError(f"The {name} filter is longer than {limit} characters.")
            return value

        due_within = text("due_within", 8)
        if due_within and not due_within.isdigit():
            raise FilterError("due_within is a number of minutes, e.g. due_within=60.")
        sort = text("sort", 16) or DEFAULT_SORT
        if sort not in SORTS:
            raise FilterError(f"sort is one of {', '.join(SORTS)}.")
        state = text("state", 16)
        if state and state not in {"scheduled", "in_progress", "mine", "completed", "canceled"}:
            raise FilterError("state is one of scheduled, in_progress, mine, completed, canceled.")
        overdue = text("overdue", 5).lower() in {"1", "true", "yes", "on"}
        return cls(
            tenant=text("tenant"),
            priority=text("priority").lower(),
            modality=text("modality", 16).upper(),
            subspecialty=text("subspecialty", 32).lower(),
            state=state,
            q=text("q"),
            overdue=overdue,
            due_within=int(due_within) if due_within else None,
            sort=sort,
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, False)}


def worklist(
    user: User,
    filters: Filters | None = None,
    *,
    now: datetime | None = None,
    clauses: list[eligibility.Clause] | None = None,
) -> QuerySet[WorkItem]:
    """The items ``user`` may read, filtered and ordered. Open items by default."""
    filters = filters or Filters()
    now = now or timezone.now()
    clauses = eligibility.coverage(user, now.date()) if clauses is None else clauses
    # A token kept to one hospital (tenants.tokens) lists that hospital's items only.
    qs = tokens.within_scope(user, WorkItem.objects.filter(eligibility.visible_q(clauses)))
    if filters.state == "mine":
        qs = qs.filter(holder=user, lease_expires_at__gt=now, state__in=OPEN_STATES)
    elif filters.state in ("completed", "canceled"):
        qs = qs.filter(state=filters.state)
    else:
        qs = qs.filter(state__in=OPEN_STATES)
        # Held by someone else under a live lease: off the list until the lease ends.
        qs = qs.exclude(Q(lease_expires_at__gt=now) & ~Q(holder=user))
        if filters.state == "scheduled":
            qs = qs.exclude(holder=user, lease_expires_at__gt=now)
        elif filters.state == "in_progress":
            qs = qs.filter(holder=user, lease_expires_at__gt=now)
    if filters.tenant:
        qs = qs.filter(tenant__slug=filters.tenant)
    if filters.priority:
        qs = qs.filter(priority__code=filters.priority)
    if filters.modality:
        qs = qs.filter(modality=filters.modality)
    if filters.subspecialty:
        qs = qs.filter(subspecialty=filters.subspecialty)
    if filters.overdue:
        qs = qs.filter(sla_due_at__lt=now, sla_paused_at__isnull=True)
    if filters.due_within is not None:
        qs = qs.filter(sla_due_at__lt=now + timedelta(minutes=filters.due_within))
    if filters.q:
        term = filters.q
        qs = qs.filter(
            Q(patient_name_search__contains=search_form(term))
            | Q(patient_identifier=term)
            | Q(accession_number=term)
        )
    return qs.select_related("tenant", "priority", "holder", "assigned_to").order_by(
        *SORTS[filters.sort]
    )


def rows(ids: list[int]) -> list[WorkItem]:
    """The items with these ids, in this order, with what a list shows of them.

    Lists take their page in two steps: the ids of the page from the filtered, ordered query
    (an index scan that stops at the page), then this one join for those few rows. Joining first
    made PostgreSQL join every visible item before sorting (bench/worklist.py: 116 ms at 28k)."""
    found = WorkItem.objects.filter(pk__in=ids).select_related(
        "tenant", "priority", "holder", "assigned_to", "study"
    )
    by_id = {item.pk: item for item in found}
    return [by_id[i] for i in ids if i in by_id]


def page_ids(items: QuerySet[WorkItem], offset: int, limit: int) -> list[int]:
    return list(items.values_list("id", flat=True)[offset : offset + limit])


def sla_status(item: WorkItem, now: datetime | None = None) -> str:
    """ok, warning (within 30 minutes), overdue, paused, or done."""
    if item.state not in OPEN_STATES:
        return "done"
    if item.sla_paused_at is not None:
        return "paused"
    remaining = item.sla_remaining(now)
    if remaining.total_seconds() < 0:
        return "overdue"
    return "warning" if remaining < WARNING_WINDOW else "ok"


def saved_views(user: User) -> QuerySet[SavedView]:
    """The user's own views and those shared with their reading groups."""
    groups = Membership.objects.filter(user=user, group__isnull=False).values("group_id")
    return SavedView.objects.filter(Q(owner=user) | Q(group_id__in=groups)).select_related("group")


def view_counts(
    user: User, views: list[SavedView], *, now: datetime | None = None
) -> dict[int, int]:
    """How many items each saved view holds, in one query."""
    now = now or timezone.now()
    clauses = eligibility.coverage(user, now.date())
    aggregates = {}
    # The rows counted over: open items, and completed or canceled ones when a view asks for them
    # (a view of completed items counted over open items only would always show 0).
    states = set(OPEN_STATES)
    for view in views:
        try:
            filters = Filters.parse(view.filters)
        except FilterError:
            continue
        if filters.state in ("completed", "canceled"):
            states.add(ItemState(filters.state))
        ids = worklist(user, filters, now=now, clauses=clauses).order_by().values("id")
        aggregates[f"v{view.pk}"] = Count("id", filter=Q(id__in=ids))
    if not aggregates:
        return {}
    base = tokens.within_scope(
        user, WorkItem.objects.filter(eligibility.visible_q(clauses), state__in=sorted(states))
    )
    row = base.aggregate(**aggregates) if aggregates else {}
    return {int(k[1:]): v for k, v in row.items()}


def groups_of(user: User) -> QuerySet[ReadingGroup]:
    return ReadingGroup.objects.filter(memberships__user=user).distinct()


def is_group_admin(user: User, group: ReadingGroup) -> bool:
    return Membership.objects.filter(user=user, group=group, role=Role.GROUP_ADMIN).exists()


def priority_choices(user: User) -> QuerySet[PriorityClass]:
    """The built-in classes and those of the hospitals the user reads for (never another
    hospital's own classes; a scoped token's hospital only)."""
    return PriorityClass.objects.filter(
        Q(tenant__isnull=True) | Q(tenant_id__in=readable_tenants(user).values("id"))
    ).order_by("rank", "code")


__all__ = [
    "FILTER_KEYS",
    "Filters",
    "FilterError",
    "ItemState",
    "sla_status",
    "saved_views",
    "view_counts",
    "worklist",
]
