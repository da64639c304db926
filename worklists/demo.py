"""The demo's worklist set-up: credentials for bob, a stroke class and routing rules."""

from __future__ import annotations

from datetime import date

from tenants.models import Tenant, User

from .models import Licence, PriorityClass, Privilege, RoutingRule
from .services import ensure_builtin_priorities

DEMO_MODALITIES = ["CT", "MR", "CR", "DX", "US"]


def seed_worklist(tenants: dict[str, Tenant], *, bob: User, dave: User | None = None) -> None:
    """Idempotent: bob may read everything of both demo hospitals, neuro included; dave, the
    demo hospital's own radiologist, everything of his hospital."""
    ensure_builtin_priorities()
    start = date(2020, 1, 1)
    readers = [(bob, tenant) for tenant in tenants.values()]
    if dave is not None:
        readers.append((dave, tenants["demo-hospital"]))
    for reader, tenant in readers:
        if (
            tenant.jurisdiction
            and not Licence.objects.filter(user=reader, jurisdiction=tenant.jurisdiction).exists()
        ):
            Licence.objects.create(
                user=reader,
                jurisdiction=tenant.jurisdiction,
                number=f"DEMO-{tenant.jurisdiction}-{reader.pk:04d}",
                valid_from=start,
            )
        if not Privilege.objects.filter(user=reader, tenant=tenant).exists():
            Privilege.objects.create(
                user=reader,
                tenant=tenant,
                modalities=DEMO_MODALITIES,
                subspecialties=["neuro"],
                valid_from=start,
            )
    demo = tenants["demo-hospital"]
    PriorityClass.objects.get_or_create(
        tenant=demo, code="stroke", defaults={"name": "Stroke", "sla_minutes": 15, "rank": 5}
    )
    if not RoutingRule.objects.filter(tenant=demo).exists():
        RoutingRule.objects.create(
            tenant=demo, position=1, description_contains="stroke", priority_code="stroke",
            subspecialty="neuro",
        )  # fmt: skip
        RoutingRule.objects.create(tenant=demo, position=2, modality="MR", body_part="HEAD",
                                   subspecialty="neuro")  # fmt: skip
        RoutingRule.objects.create(tenant=demo, position=3, modality="MR", body_part="BRAIN",
                                   subspecialty="neuro")  # fmt: skip
