"""Which templates and text blocks a user may use or manage.

For a work item the offer is: the item's hospital's own, and those of the user's reading groups
that read for that hospital (an active agreement), plus the user's personal text blocks. Single
templates are found through ``visible_template`` / ``managed_template``, which answer NotFound
both for a missing one and for someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from tenants.models import Membership, ReadingAgreement, ReadingGroup, Role, Tenant, User
from tenants.queries import readable_tenants
from worklists.models import WorkItem

from .models import ReportTemplate, TextBlock


class NotFound(Exception):
    """Missing, or not this user's to see: the same answer for both."""


# How well a template fits an item, best first.
FIT_EXACT, FIT_MODALITY, FIT_BODY_PART, FIT_GENERIC = range(4)
FIT_LABELS = {
    FIT_EXACT: "modality and body part",
    FIT_MODALITY: "modality",
    FIT_BODY_PART: "body part",
    FIT_GENERIC: "any study",
}


def _reading_groups_for(user: User, tenant_id: int) -> QuerySet[ReadingGroup]:
    """The user's active groups that read for this hospital."""
    return ReadingGroup.objects.filter(
        is_active=True,
        memberships__user=user,
        agreements__tenant_id=tenant_id,
        agreements__is_active=True,
    ).distinct()


def fit(template: ReportTemplate, modality: str, body_part: str) -> int:
    if template.modality and template.body_part:
        return FIT_EXACT
    if template.modality:
        return FIT_MODALITY
    return FIT_BODY_PART if template.body_part else FIT_GENERIC


@dataclass(frozen=True)
class Offered:
    template: ReportTemplate
    fit: int

    @property
    def fit_label(self) -> str:
        return FIT_LABELS[self.fit]


def templates_for(item: WorkItem, user: User) -> list[Offered]:
    """The active templates that fit the item, best fit first, then by name. The caller has
    made sure the user may see the item (``worklists.services.visible_item``)."""
    modality = (item.modality or "").upper()
    body_part = (item.body_part or "").upper()
    groups = _reading_groups_for(user, item.tenant_id).values("id")
    candidates = ReportTemplate.objects.filter(
        Q(tenant_id=item.tenant_id) | Q(group_id__in=groups),
        Q(modality="") | Q(modality=modality),
        Q(body_part="") | Q(body_part=body_part),
        is_active=True,
    ).select_related("tenant", "group")
    offered = [Offered(t, fit(t, modality, body_part)) for t in candidates]
    return sorted(offered, key=lambda o: (o.fit, o.template.name.lower(), o.template.pk))


def text_blocks_for(item: WorkItem, user: User) -> list[TextBlock]:
    """The active text blocks for this item, one per shortcut: the user's own over their
    group's over the hospital's."""
    groups = _reading_groups_for(user, item.tenant_id).values("id")
    blocks = TextBlock.objects.filter(
        Q(owner=user) | Q(group_id__in=groups) | Q(tenant_id=item.tenant_id), is_active=True
    )

    def rank(block: TextBlock) -> int:
        return 0 if block.owner_id else 1 if block.group_id else 2

    chosen: dict[str, TextBlock] = {}
    for block in sorted(blocks, key=lambda b: (rank(b), b.pk)):
        chosen.setdefault(block.shortcut, block)
    return sorted(chosen.values(), key=lambda b: b.shortcut)


# ---------------------------------------------------------------------------------------------
# Single templates
# ---------------------------------------------------------------------------------------------


def visible_template(user: User, template_id: int) -> ReportTemplate:
    """A template the user may use: their hospital's (or one their group reads for), or their
    group's. Else NotFound."""
    template = (
        ReportTemplate.objects.select_related("tenant", "group").filter(pk=template_id).first()
    )
    if template is None or not user.is_active:
        raise NotFound("No such template.")
    if template.tenant_id is not None:
        if readable_tenants(user).filter(pk=template.tenant_id).exists():
            return template
    elif Membership.objects.filter(user=user, group_id=template.group_id).exists():
        return template
    raise NotFound("No such template.")


# ---------------------------------------------------------------------------------------------
# Management: tenant admins manage their hospital's, group admins their group's
# ---------------------------------------------------------------------------------------------


def administered_tenants(user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.TENANT_ADMIN
    ).distinct()


def administered_groups(user: User) -> QuerySet[ReadingGroup]:
    return ReadingGroup.objects.filter(
        is_active=True, memberships__user=user, memberships__role=Role.GROUP_ADMIN
    ).distinct()


def may_manage(user: User, obj: ReportTemplate | TextBlock) -> bool:
    if not user.is_active:
        return False
    if obj.tenant_id is not None:
        return administered_tenants(user).filter(pk=obj.tenant_id).exists()
    if obj.group_id is not None:
        return administered_groups(user).filter(pk=obj.group_id).exists()
    return isinstance(obj, TextBlock) and obj.owner_id == user.pk


def managed_template(user: User, template_id: int) -> ReportTemplate:
    template = (
        ReportTemplate.objects.select_related("tenant", "group").filter(pk=template_id).first()
    )
    if template is None or not may_manage(user, template):
        raise NotFound("No such template.")
    return template


def managed_block(user: User, block_id: int) -> TextBlock:
    block = TextBlock.objects.select_related("tenant", "group").filter(pk=block_id).first()
    if block is None or not may_manage(user, block):
        raise NotFound("No such text block.")
    return block


def reads_for(group: ReadingGroup) -> QuerySet[Tenant]:
    """The hospitals a group reads for (for the management page's explanation)."""
    return Tenant.objects.filter(
        id__in=ReadingAgreement.objects.filter(group=group, is_active=True).values("tenant_id")
    )
