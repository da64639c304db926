"""What a consult lets its consultant see: one study, read-only, while the consult is open.

The access checks of the worklist, DICOMweb and the viewer ask here only after their own rules
have found nothing (so readers of a hospital pay nothing for consults). They import this module
inside their functions: ``reports`` is built on ``worklists`` and ``studies``, not the reverse.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from studies.models import Study
from tenants.models import Tenant, User

from .models import OPEN_CONSULT_STATES, Consult

PERMISSION = "view_consult"


def open_consults(user: User, now: datetime | None = None) -> QuerySet[Consult]:
    """Open consults that grant ``user`` access: the guardian permission row and an open,
    unexpired consult, both."""
    if not user.is_authenticated or not user.is_active:
        return Consult.objects.none()
    now = now or timezone.now()
    return Consult.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        status__in=OPEN_CONSULT_STATES,
        grants__user=user,
        grants__permission__codename=PERMISSION,
    )


def consults_item(user: User, item_id: int, now: datetime | None = None) -> bool:
    """Whether an open consult lets ``user`` see this work item (read-only)."""
    return open_consults(user, now).filter(work_item_id=item_id).exists()


def consulted_studies(user: User, tenant: Tenant, now: datetime | None = None) -> frozenset[str]:
    """The Study Instance UIDs of ``tenant`` that open consults let ``user`` see."""
    study_ids = open_consults(user, now).filter(tenant=tenant).values("study_id")
    return frozenset(
        Study.objects.filter(tenant=tenant, id__in=study_ids).values_list(
            "study_instance_uid", flat=True
        )
    )


def consulted_tenant(user: User, slug: str) -> tuple[Tenant, frozenset[str]] | None:
    """The active tenant with this slug and the studies of it consults let ``user`` see; None
    when there are none (then the caller answers "not found", as for any other tenant)."""
    tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
    if tenant is None:
        return None
    uids = consulted_studies(user, tenant)
    return (tenant, uids) if uids else None


def consulted_tenants(user: User) -> QuerySet[Tenant]:
    """Active tenants of which open consults let ``user`` see at least one study."""
    return Tenant.objects.filter(
        is_active=True, id__in=open_consults(user).values("tenant_id")
    ).order_by("slug")
