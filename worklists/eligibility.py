"""Who may see and claim which work items: agreement ∩ privilege ∩ licence, on a given day.

A radiologist reads an item of tenant T when all three hold:

1. **Agreement.** One of their reading groups (role radiologist, group active) has an active
   agreement with T that covers the item's modality, subspecialty and priority class (an empty
   list in the agreement covers everything of that kind). A radiologist of T itself needs none.
2. **Privilege.** They hold a privilege for T, valid that day, listing the item's modality and,
   when the item has a subspecialty, that subspecialty.
3. **Licence.** When T names a jurisdiction, they hold a licence for it valid that day.

``coverage`` turns this into a few clauses per tenant, and ``visible_q`` into one ``Q`` on
WorkItem: the worklist is then one query whatever the number of items. ``explain`` says, for an
admin, who can read an item and why each other candidate cannot.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils import timezone

from tenants.models import Membership, ReadingAgreement, Role, Tenant, User

from .models import Licence, Privilege, WorkItem

ALL: frozenset[str] | None = None  # "no restriction" in a clause


@dataclass(frozen=True)
class Clause:
    """One way a user may read items of one tenant."""

    tenant_id: int
    modalities: frozenset[str]
    # Subspecialties the item may carry; "" is the general (no subspecialty) item.
    subspecialties: frozenset[str] | None
    priority_codes: frozenset[str] | None

    def covers(self, item: WorkItem) -> bool:
        return (
            item.tenant_id == self.tenant_id
            and item.modality.upper() in self.modalities
            and (self.subspecialties is None or item.subspecialty in self.subspecialties)
            and (self.priority_codes is None or item.priority.code in self.priority_codes)
        )

    def q(self) -> Q:
        q = Q(tenant_id=self.tenant_id, modality__in=sorted(self.modalities))
        if self.subspecialties is not None:
            q &= Q(subspecialty__in=sorted(self.subspecialties))
        if self.priority_codes is not None:
            q &= Q(priority__code__in=sorted(self.priority_codes))
        return q


@dataclass
class _Sources:
    """What one user holds, loaded in four queries."""

    tenant_roles: set[int] = field(default_factory=set)  # tenants where they are a radiologist
    agreements: list[ReadingAgreement] = field(default_factory=list)
    privileges: list[Privilege] = field(default_factory=list)
    licences: list[Licence] = field(default_factory=list)
    jurisdictions: dict[int, str] = field(default_factory=dict)


def _upper(values: list[str]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in values if v.strip())


def _lower(values: list[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values if v.strip())


def _load(user: User) -> _Sources:
    sources = _Sources()
    if not user.is_active:
        return sources
    sources.tenant_roles = set(
        Membership.objects.filter(
            user=user, role=Role.RADIOLOGIST, tenant__is_active=True
        ).values_list("tenant_id", flat=True)
    )
    sources.agreements = list(
        ReadingAgreement.objects.filter(
            is_active=True,
            tenant__is_active=True,
            group__is_active=True,
            group__memberships__user=user,
            group__memberships__role=Role.RADIOLOGIST,
        )
        .select_related("terms")
        .distinct()
    )
    sources.privileges = list(Privilege.objects.filter(user=user))
    sources.licences = list(Licence.objects.filter(user=user))
    tenant_ids = sources.tenant_roles | {a.tenant_id for a in sources.agreements}
    sources.jurisdictions = dict(
        Tenant.objects.filter(id__in=tenant_ids).values_list("id", "jurisdiction")
    )
    return sources


def _licensed(sources: _Sources, tenant_id: int, day: date) -> bool:
    jurisdiction = sources.jurisdictions.get(tenant_id, "")
    if not jurisdiction:
        return True
    return any(
        lic.jurisdiction.upper() == jurisdiction.upper() and lic.is_valid_on(day)
        for lic in sources.licences
    )


def _in_force(agreement: ReadingAgreement, day: date) -> bool:
    """An agreement's period (worklists.AgreementTerms), when it has one, includes ``day``."""
    try:
        terms = agreement.terms
    except ObjectDoesNotExist:
        return True
    return bool(terms.in_force_on(day))


def coverage(user: User, day: date | None = None) -> list[Clause]:
    """Every clause under which ``user`` may read, on ``day`` (today by default)."""
    day = day or timezone.localdate()
    sources = _load(user)
    # Per tenant: the agreements' coverage (None: the tenant's own radiologist, all of it).
    terms: dict[int, list[tuple[frozenset[str] | None, ...]]] = defaultdict(list)
    for tenant_id in sources.tenant_roles:
        terms[tenant_id].append((ALL, ALL, ALL))
    for agreement in sources.agreements:
        if not _in_force(agreement, day):
            continue
        terms[agreement.tenant_id].append(
            (
                _upper(agreement.modalities) or ALL,
                _lower(agreement.subspecialties) or ALL,
                _lower(agreement.priority_codes) or ALL,
            )
        )
    clauses: list[Clause] = []
    for privilege in sources.privileges:
        tenant_id = privilege.tenant_id
        if tenant_id not in terms or not privilege.is_valid_on(day):
            continue
        if not _licensed(sources, tenant_id, day):
            continue
        held_modalities = _upper(privilege.modalities)
        held_subs = _lower(privilege.subspecialties) | {""}
        for modalities, subs, priorities in terms[tenant_id]:
            mods = held_modalities if modalities is None else held_modalities & modalities
            allowed_subs = held_subs if subs is None else held_subs & subs
            if mods and allowed_subs:
                clauses.append(Clause(tenant_id, mods, frozenset(allowed_subs), priorities))
    return clauses


def visible_q(clauses: list[Clause]) -> Q:
    """Items covered by any clause; nothing when there are none."""
    if not clauses:
        return Q(pk__in=[])
    q = Q()
    for clause in clauses:
        q |= clause.q()
    return q


def may_read(user: User, item: WorkItem, day: date | None = None) -> bool:
    return any(clause.covers(item) for clause in coverage(user, day))


# ---------------------------------------------------------------------------------------------
# Explanations for admins
# ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    user: User
    via: str  # "Demo Readers" or "Demo Hospital (staff)"
    can_read: bool
    reasons: list[str]


def _agreement_gaps(agreement: ReadingAgreement, item: WorkItem) -> list[str]:
    gaps = []
    group = agreement.group.name
    if not agreement.is_active:
        gaps.append(f"the agreement between {group} and this hospital is not active")
    if not agreement.group.is_active:
        gaps.append(f"{group} is not active")
    if agreement.modalities and item.modality.upper() not in _upper(agreement.modalities):
        gaps.append(f"the agreement of {group} does not cover {item.modality or 'this modality'}")
    if agreement.subspecialties and item.subspecialty not in _lower(agreement.subspecialties):
        what = item.subspecialty or "general reading"
        gaps.append(f"the agreement of {group} does not cover {what}")
    if agreement.priority_codes and item.priority.code not in _lower(agreement.priority_codes):
        gaps.append(f"the agreement of {group} does not cover {item.priority.name} priority")
    return gaps


def _privilege_gaps(privileges: list[Privilege], item: WorkItem, day: date) -> list[str]:
    mine = [p for p in privileges if p.tenant_id == item.tenant_id]
    if not mine:
        return ["no privilege at this hospital"]
    current = [p for p in mine if p.is_valid_on(day)]
    if not current:
        ends = [p.valid_to for p in mine if p.valid_to and p.valid_to < day]
        if ends:
            return [f"privilege at this hospital expired on {max(ends).isoformat()}"]
        starts = min(p.valid_from for p in mine)
        return [f"privilege at this hospital starts on {starts.isoformat()}"]
    modality = item.modality.upper()
    with_modality = [p for p in current if modality in _upper(p.modalities)]
    if not with_modality:
        return [f"no privilege for {item.modality or 'this modality'} at this hospital"]
    if item.subspecialty and not any(
        item.subspecialty in _lower(p.subspecialties) for p in with_modality
    ):
        return [f"no privilege for {item.subspecialty} at this hospital"]
    return []


def _licence_gaps(licences: list[Licence], jurisdiction: str, day: date) -> list[str]:
    if not jurisdiction:
        return []
    held = [lic for lic in licences if lic.jurisdiction.upper() == jurisdiction.upper()]
    if not held:
        return [f"no licence for {jurisdiction}"]
    if any(lic.is_valid_on(day) for lic in held):
        return []
    ended = [lic.valid_to for lic in held if lic.valid_to and lic.valid_to < day]
    if ended:
        return [f"licence for {jurisdiction} expired on {max(ended).isoformat()}"]
    return [f"licence for {jurisdiction} starts on {min(lic.valid_from for lic in held)}"]


def explain(item: WorkItem, day: date | None = None) -> list[Verdict]:
    """Every radiologist who could be linked to the item's tenant, whether they can read it, and
    if not, why. Constant in queries: a handful whatever the number of candidates."""
    day = day or timezone.localdate()
    tenant = item.tenant
    agreements = list(
        ReadingAgreement.objects.filter(tenant=tenant).select_related("group").order_by("id")
    )
    group_members = list(
        Membership.objects.filter(
            group__in=[a.group_id for a in agreements], role=Role.RADIOLOGIST
        ).select_related("user")
    )
    staff = list(
        Membership.objects.filter(tenant=tenant, role=Role.RADIOLOGIST).select_related("user")
    )
    user_ids = {m.user_id for m in group_members} | {m.user_id for m in staff}
    privileges: dict[int, list[Privilege]] = defaultdict(list)
    for p in Privilege.objects.filter(user_id__in=user_ids, tenant=tenant):
        privileges[p.user_id].append(p)
    licences: dict[int, list[Licence]] = defaultdict(list)
    for lic in Licence.objects.filter(user_id__in=user_ids):
        licences[lic.user_id].append(lic)

    by_group = {a.group_id: a for a in agreements}
    verdicts: list[Verdict] = []
    for membership in staff:
        user = membership.user
        reasons = _personal_gaps(user, privileges, licences, tenant, item, day)
        verdicts.append(Verdict(user, f"{tenant.name} (staff)", not reasons, reasons))
    for membership in group_members:
        user = membership.user
        agreement = by_group[membership.group_id]  # type: ignore[index]
        reasons = _agreement_gaps(agreement, item)
        reasons += _personal_gaps(user, privileges, licences, tenant, item, day)
        verdicts.append(Verdict(user, agreement.group.name, not reasons, reasons))
    verdicts.sort(key=lambda v: (not v.can_read, str(v.user)))
    return verdicts


def _personal_gaps(
    user: User,
    privileges: dict[int, list[Privilege]],
    licences: dict[int, list[Licence]],
    tenant: Tenant,
    item: WorkItem,
    day: date,
) -> list[str]:
    reasons = [] if user.is_active else ["account is disabled"]
    reasons += _privilege_gaps(privileges[user.pk], item, day)
    reasons += _licence_gaps(licences[user.pk], tenant.jurisdiction, day)
    return reasons
