"""Writes of the DICOM set-up: called AE titles, allowed callers, the PACS, C-MOVE destinations.

Each function takes values its caller validated with the forms of ``forms.py``, runs in one
transaction and writes one SETTINGS_CHANGE audit row naming what changed. Nothing is cached: the
SCP reads the titles and rules afresh for each association (tenants.queries), so a change here
holds for the next association.

The hospital's PACS is a ``DicomDestination`` (it pulls studies with C-MOVE like any other node)
that the report delivery settings name as ``pacs_destination`` (signed reports are C-STOREd to
it). The DICOM page edits that same row, so there is one PACS, whichever page set it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reports.delivery.models import DeliverySettings
from tenants import audit
from tenants.models import (
    AllowedCaller,
    AuditAction,
    CalledAETitle,
    DicomDestination,
    Tenant,
    User,
)
from tenants.services import register_destination


def record_change(tenant: Tenant, actor: audit.Actor, settings: str, **detail: Any) -> None:
    audit.record(
        action=AuditAction.SETTINGS_CHANGE,
        actor=actor,
        tenant=tenant,
        detail={"settings": settings, **detail},
    )


def actor_for(user: User | None, address: str | None = None) -> audit.Actor:
    return audit.Actor.for_user(user, address=address) if user else audit.Actor.system()


# ---------------------------------------------------------------------------------------------
# Called AE titles
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def add_called_ae_title(*, tenant: Tenant, actor: audit.Actor, ae_title: str) -> CalledAETitle:
    row = CalledAETitle.objects.create(tenant=tenant, ae_title=ae_title)
    record_change(tenant, actor, "dicom", fields=["called_ae_titles"], added=row.ae_title)
    return row


@transaction.atomic
def remove_called_ae_title(*, tenant: Tenant, actor: audit.Actor, row: CalledAETitle) -> None:
    # Locked, so two admins removing the last two titles at once cannot leave none.
    titles = list(CalledAETitle.objects.select_for_update().filter(tenant=tenant))
    if len(titles) <= 1:
        raise ValidationError(
            "A hospital keeps at least one called AE title: add the new one before removing "
            "this one."
        )
    CalledAETitle.objects.filter(tenant=tenant, pk=row.pk).delete()
    record_change(tenant, actor, "dicom", fields=["called_ae_titles"], removed=row.ae_title)


# ---------------------------------------------------------------------------------------------
# Allowed callers
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def save_caller(
    *,
    tenant: Tenant,
    actor: audit.Actor,
    rule: AllowedCaller | None,
    ae_title: str,
    network: str,
    description: str,
) -> AllowedCaller:
    """Add a rule (``rule`` None) or change one; audited with the fields that changed."""
    if rule is None:
        rule = AllowedCaller.objects.create(
            tenant=tenant, ae_title=ae_title, network=network, description=description
        )
        record_change(
            tenant, actor, "dicom", fields=["callers"], added=str(rule), caller_id=rule.pk
        )
        return rule
    changed = [
        name
        for name, value in (
            ("ae_title", ae_title),
            ("network", network),
            ("description", description),
        )
        if getattr(rule, name) != value
    ]
    if changed:
        rule.ae_title, rule.network, rule.description = ae_title, network, description
        rule.save()
        record_change(
            tenant, actor, "dicom", fields=[f"callers.{n}" for n in changed], caller_id=rule.pk
        )
    return rule


@transaction.atomic
def remove_caller(*, tenant: Tenant, actor: audit.Actor, rule: AllowedCaller) -> None:
    AllowedCaller.objects.filter(tenant=tenant, pk=rule.pk).delete()
    record_change(tenant, actor, "dicom", fields=["callers"], removed=str(rule), caller_id=rule.pk)


# ---------------------------------------------------------------------------------------------
# The PACS and the C-MOVE destinations
# ---------------------------------------------------------------------------------------------


def pacs_of(tenant: Tenant) -> DicomDestination | None:
    row = (
        DeliverySettings.objects.filter(tenant=tenant)
        .select_related("pacs_destination")
        .only("pacs_destination")
        .first()
    )
    return row.pacs_destination if row else None


def _node_changes(node: DicomDestination, values: dict[str, Any]) -> list[str]:
    return [name for name, value in values.items() if getattr(node, name) != value]


@transaction.atomic
def set_pacs(
    *, tenant: Tenant, actor: audit.Actor, ae_title: str, host: str, port: int
) -> DicomDestination:
    """Make (AE, host, port) the hospital's PACS: a C-MOVE destination and the report PACS."""
    settings_row = DeliverySettings.objects.select_for_update().filter(tenant=tenant).first()
    node = settings_row.pacs_destination if settings_row else None
    if node is None:
        # A destination of that title already registered becomes the PACS.
        node = DicomDestination.objects.filter(tenant=tenant, ae_title=ae_title).first()
    values = {"ae_title": ae_title, "host": host, "port": port, "enabled": True}
    changed = _node_changes(node, values) if node else ["ae_title", "host", "port"]
    if node is None:
        node = DicomDestination(tenant=tenant, description="PACS")
    if changed:
        for name, value in values.items():
            setattr(node, name, value)
        node.save()
    if settings_row is None:
        DeliverySettings.objects.create(
            tenant=tenant, pacs_destination=node, updated_by=actor.user, updated_at=timezone.now()
        )
        changed.append("pacs_destination")
    elif settings_row.pacs_destination_id != node.pk:
        DeliverySettings.objects.filter(tenant=tenant).update(
            pacs_destination=node, updated_by=actor.user, updated_at=timezone.now()
        )
        changed.append("pacs_destination")
    if changed:
        record_change(tenant, actor, "dicom", fields=[f"pacs.{n}" for n in changed])
    return node


@transaction.atomic
def save_destination(
    *, tenant: Tenant, actor: audit.Actor, node: DicomDestination | None, **values: Any
) -> DicomDestination:
    """Add a C-MOVE destination (``node`` None) or change one: ae_title, host, port,
    description, enabled."""
    if node is None:
        node = register_destination(tenant=tenant, **values)
        record_change(tenant, actor, "destinations", fields=["move_destinations"], added=str(node))
        return node
    changed = _node_changes(node, values)
    if changed:
        for name, value in values.items():
            setattr(node, name, value)
        node.save()
        record_change(
            tenant,
            actor,
            "destinations",
            fields=[f"move_destinations.{n}" for n in changed],
            destination=node.ae_title,
        )
    return node


def is_pacs(tenant: Tenant, node: DicomDestination) -> bool:
    return DeliverySettings.objects.filter(tenant=tenant, pacs_destination=node).exists()


@transaction.atomic
def remove_destination(*, tenant: Tenant, actor: audit.Actor, node: DicomDestination) -> None:
    if is_pacs(tenant, node):
        raise ValidationError(
            f"{node.ae_title} is the hospital's PACS (it receives the reports); "
            "change the PACS on the DICOM page first."
        )
    DicomDestination.objects.filter(tenant=tenant, pk=node.pk).delete()
    record_change(
        tenant, actor, "destinations", fields=["move_destinations"], removed=node.ae_title
    )


def delivery_summary(tenant: Tenant) -> list[str]:
    """What the report delivery settings send where, in a few words each (edited on their page)."""
    row = DeliverySettings.objects.filter(tenant=tenant).select_related("pacs_destination").first()
    if row is None:
        return []
    lines = []
    if row.pacs_destination:
        lines.append(f"Final reports are C-STOREd to the PACS {row.pacs_destination}.")
    if row.fhir_enabled and row.webhook_url:
        lines.append("FHIR DiagnosticReport is POSTed to the webhook.")
    if row.hl7_enabled and row.mllp_host:
        lines.append(f"HL7 ORU^R01 goes to {row.mllp_host}:{row.mllp_port}.")
    return lines
