"""Writing the audit log. Callers describe who acted; this module never sees patient data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .models import ActorType, ApiToken, AuditEvent, Outcome, Tenant, User


@dataclass(frozen=True)
class Actor:
    """Who did something: a user (maybe through a token), a DICOM peer, or the system itself."""

    type: str
    user: User | None = None
    token: ApiToken | None = None
    ae_title: str = ""
    address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def system(cls) -> Actor:
        return cls(type=ActorType.SYSTEM)

    @classmethod
    def for_user(
        cls, user: User, *, token: ApiToken | None = None, address: str | None = None
    ) -> Actor:
        return cls(
            type=ActorType.TOKEN if token else ActorType.USER,
            user=user,
            token=token,
            address=address,
        )

    @classmethod
    def for_ae(cls, ae_title: str, *, address: str | None = None, called_ae: str = "") -> Actor:
        return cls(
            type=ActorType.AE,
            ae_title=ae_title.strip(),
            address=address,
            extra={"called_ae": called_ae},
        )


def build(
    *,
    action: str,
    actor: Actor,
    tenant: Tenant | None,
    outcome: str = Outcome.SUCCESS,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    sop_instance_uid: str = "",
    patient_ref: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    merged = dict(actor.extra)
    merged.update(detail or {})
    return AuditEvent(
        tenant=tenant,
        actor_type=actor.type,
        actor_user=actor.user,
        actor_token=actor.token,
        actor_ae_title=actor.ae_title,
        action=action,
        outcome=outcome,
        source_address=actor.address,
        patient_ref=patient_ref,
        study_instance_uid=study_instance_uid or "",
        series_instance_uid=series_instance_uid or "",
        sop_instance_uid=sop_instance_uid or "",
        detail=merged,
    )


def record(**kwargs: Any) -> AuditEvent:
    event = build(**kwargs)
    event.save()
    return event


def record_many(events: Iterable[AuditEvent]) -> None:
    AuditEvent.objects.bulk_create(list(events), batch_size=500)
