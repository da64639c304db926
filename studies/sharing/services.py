"""Creating, opening, unlocking and revoking share links.

The token is shown once, at creation; only its SHA-256 is stored, so the database alone opens
nothing. Every answer about a token that is not active is the same few words naming no patient.
Each function that lets a holder reach patient data counts the request (rate limit, accesses)
and writes an audit row whose actor says ``via: share`` and the link's id.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from tenants import audit
from tenants.models import ActorType, AuditAction, Outcome, Tenant, User

from ..models import Study
from .models import SecondFactor, ShareLink, ShareLinkStudy, SharePolicy, StudyGrant

DEFAULT_DAYS = 7
MAX_STUDIES = 20
PIN_LENGTHS = range(6, 13)


class ShareError(ValueError):
    """A request to create a link that cannot be honoured; the message says what to change."""


class Gone(Exception):
    """The token names a link that is expired, revoked or locked (``status`` says which)."""

    def __init__(self, link: ShareLink, status: str) -> None:
        super().__init__(status)
        self.link = link
        self.status = status


class NotFound(Exception):
    """No link has this token."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def holder(link: ShareLink, *, address: str | None) -> audit.Actor:
    """The anonymous holder of a link, as the audit log names them."""
    return audit.Actor(
        type=ActorType.TOKEN, address=address, extra={"via": "share", "share": link.pk}
    )


@dataclass(frozen=True)
class Created:
    link: ShareLink
    token: str  # shown once, never stored


def create_share(
    *,
    tenant: Tenant,
    actor: audit.Actor,
    studies: list[Study],
    days: int = DEFAULT_DAYS,
    second_factor: str = SecondFactor.NONE,
    pin: str = "",
    allow_download: bool = False,
    note: str = "",
    deidentified: bool | None = None,
    now: datetime.datetime | None = None,
) -> Created:
    """A new link to these studies of the tenant (the caller checked the actor may read them).

    ``deidentified`` None follows the hospital's de-identification policy; a policy that
    requires de-identified shares refuses False."""
    from ..deid import links as deid_links
    from ..deid.models import DeidPolicy

    assert actor.user is not None
    now = now or timezone.now()
    policy = SharePolicy.for_tenant(tenant)
    deid_policy = DeidPolicy.for_tenant(tenant)
    if deidentified is None:
        deidentified = deid_policy.required_for_shares
    if deid_policy.required_for_shares and not deidentified:
        raise ShareError("This hospital shares studies de-identified only.")
    if policy.require_second_factor and second_factor == SecondFactor.NONE:
        raise ShareError("This hospital requires a PIN or the patient's date of birth on links.")
    if allow_download and not policy.allow_download:
        raise ShareError("This hospital does not allow downloads through share links.")
    if deidentified and second_factor == SecondFactor.BIRTH_DATE:
        raise ShareError(
            "A de-identified link cannot ask for the patient's date of birth: use a PIN."
        )
    if not studies:
        raise ShareError("Choose at least one study to share.")
    if len(studies) > MAX_STUDIES:
        raise ShareError(f"A link shares at most {MAX_STUDIES} studies; make several links.")
    if any(s.tenant_id != tenant.pk for s in studies):
        raise ShareError("All the studies of a link must belong to the same hospital.")
    if not 1 <= days <= policy.max_days:
        raise ShareError(f"A link is valid from 1 to {policy.max_days} days in this hospital.")
    if second_factor not in SecondFactor.values:
        raise ShareError("Choose no second factor, a PIN or the patient's date of birth.")
    pin_hash = ""
    if second_factor == SecondFactor.PIN:
        if not (pin.isdigit() and len(pin) in PIN_LENGTHS):
            raise ShareError("The PIN must be 6 to 12 digits.")
        pin_hash = make_password(pin)
    if second_factor == SecondFactor.BIRTH_DATE:
        births = {s.patient.patient_birth_date for s in studies}
        if len({s.patient_id for s in studies}) != 1:
            raise ShareError("A link protected by a date of birth shares one patient's studies.")
        if births == {None}:
            raise ShareError(
                "The patient's date of birth is not recorded in these studies: use a PIN."
            )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        link = ShareLink.objects.create(
            tenant=tenant,
            token_sha256=token_hash(token),
            created_by=actor.user,
            created_at=now,
            expires_at=now + datetime.timedelta(days=days),
            second_factor=second_factor,
            pin_hash=pin_hash,
            allow_download=allow_download,
            note=note.strip()[:200],
        )
        if deidentified:
            options = deid_policy.options()
            link.deidentified = True
            link.deid_options = options.as_dict()
            link.deid_key = deid_links.new_key()
            link.deid_date_offset_days = deid_links.new_offset(options)
            link.deid_burned_in = deid_policy.burned_in
            link.save(
                update_fields=[
                    "deidentified",
                    "deid_options",
                    "deid_key",
                    "deid_date_offset_days",
                    "deid_burned_in",
                ]
            )
        ShareLinkStudy.objects.bulk_create(
            ShareLinkStudy(tenant=tenant, link=link, study=s) for s in studies
        )
        created = {
            "share": link.pk,
            "event": "share.create",
            "days": days,
            "second_factor": second_factor,
            "download": allow_download,
            "deidentified": deidentified,
        }
        exported = {
            "share": link.pk,
            "profile": "PS3.15 E.1.1 basic",
            "options": link.deid_options,
            "burned_in": link.deid_burned_in,
        }
        events = [(AuditAction.SHARE_CREATE, created)]
        if deidentified:
            events.append((AuditAction.DEID_EXPORT, exported))
        audit.record_many(
            audit.build(
                action=action,
                actor=actor,
                tenant=tenant,
                study_instance_uid=s.study_instance_uid,
                patient_ref=s.patient_id,
                detail=detail,
            )
            for action, detail in events
            for s in studies
        )
    return Created(link=link, token=token)


def find(token: str, *, address: str | None, now: datetime.datetime | None = None) -> ShareLink:
    """The active link of this token, else NotFound (no such token) or Gone (audited)."""
    link = (
        ShareLink.objects.select_related("tenant")
        .filter(token_sha256=token_hash(token), tenant__is_active=True)
        .first()
    )
    if link is None:
        raise NotFound
    status = link.status(now)
    if status != "active":
        audit.record(
            action=AuditAction.ACCESS_DENIED,
            actor=holder(link, address=address),
            tenant=link.tenant,
            outcome=Outcome.FAILURE,
            detail={"event": "share.refused", "status": status},
        )
        raise Gone(link, status)
    return link


def studies_of(link: ShareLink) -> list[Study]:
    return list(
        Study.objects.filter(tenant=link.tenant, id__in=link.shared.values("study_id"))
        .select_related("patient")
        .order_by("study_date", "id")
    )


def study_uids(link: ShareLink) -> frozenset[str]:
    return frozenset(
        Study.objects.filter(tenant=link.tenant, id__in=link.shared.values("study_id")).values_list(
            "study_instance_uid", flat=True
        )
    )


def count_request(link: ShareLink, *, now: datetime.datetime | None = None) -> bool:
    """Count one request in the link's minute; False when the policy's limit is reached."""
    now = now or timezone.now()
    # The minute starts at the first request after the last one ended, not on the clock's
    # minute: a burst is never split in two allowances.
    stale = now - datetime.timedelta(minutes=1)
    limit = SharePolicy.for_tenant(link.tenant).requests_per_minute
    ShareLink.objects.filter(pk=link.pk).filter(
        Q(window_start__isnull=True) | Q(window_start__lte=stale)
    ).update(window_start=now, window_count=0)
    counted = ShareLink.objects.filter(
        pk=link.pk, window_start__gt=stale, window_count__lt=limit
    ).update(window_count=F("window_count") + 1, accesses=F("accesses") + 1, last_access_at=now)
    return counted == 1


def check_second_factor(
    link: ShareLink,
    *,
    answer: str,
    address: str | None,
    now: datetime.datetime | None = None,
) -> bool:
    """True if the answer opens the link. A wrong one counts; the policy's limit locks it.

    The birth date is typed as YYYY-MM-DD (what a browser's date field sends)."""
    now = now or timezone.now()
    if link.second_factor == SecondFactor.PIN:
        right = bool(answer) and check_password(answer.strip(), link.pin_hash)
    elif link.second_factor == SecondFactor.BIRTH_DATE:
        births = {s.patient.patient_birth_date for s in studies_of(link)}
        right = any(b is not None and b.isoformat() == answer.strip() for b in births)
    else:
        right = True
    actor = holder(link, address=address)
    if right:
        audit.record(
            action=AuditAction.SHARE_OPEN,
            actor=actor,
            tenant=link.tenant,
            detail={"event": "share.unlock"},
        )
        return True
    limit = SharePolicy.for_tenant(link.tenant).max_attempts
    with transaction.atomic():
        ShareLink.objects.filter(pk=link.pk, locked_at__isnull=True).update(
            failed_attempts=F("failed_attempts") + 1
        )
        locked = ShareLink.objects.filter(
            pk=link.pk, locked_at__isnull=True, failed_attempts__gte=limit
        ).update(locked_at=now)
        audit.record(
            action=AuditAction.SHARE_LOCKED if locked else AuditAction.ACCESS_DENIED,
            actor=actor,
            tenant=link.tenant,
            outcome=Outcome.FAILURE,
            detail={"event": "share.locked" if locked else "share.wrong_factor"},
        )
    link.refresh_from_db()
    return False


def links_for(tenant: Tenant) -> list[ShareLink]:
    return list(
        ShareLink.objects.filter(tenant=tenant)
        .select_related("created_by", "revoked_by")
        .prefetch_related("shared__study")
        .order_by("-created_at", "-id")[:500]
    )


def get_link_for(user: User, tenant: Tenant, link_id: int) -> ShareLink | None:
    """The tenant's link, if this user may manage it (the tenant's admin or its creator)."""
    from tenants.queries import is_tenant_admin

    links = ShareLink.objects.filter(tenant=tenant, pk=link_id)
    if not is_tenant_admin(user, tenant):
        links = links.filter(created_by=user)
    return links.first()


def revoke_share(
    *, link: ShareLink, actor: audit.Actor, now: datetime.datetime | None = None
) -> bool:
    """Revoke the link (idempotent: False if it already was)."""
    now = now or timezone.now()
    with transaction.atomic():
        done = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor.user
        )
        if done:
            audit.record(
                action=AuditAction.SHARE_REVOKE,
                actor=actor,
                tenant=link.tenant,
                detail={"share": link.pk, "event": "share.revoke"},
            )
    link.refresh_from_db()
    return bool(done)


# ---------------------------------------------------------------------------------------------
# Grants: a study given to one of the hospital's referring physicians
# ---------------------------------------------------------------------------------------------


def referrers_of(tenant: Tenant) -> list[User]:
    """The hospital's referring physicians, whom its studies may be granted to."""
    from tenants.models import Membership, Role

    ids = Membership.objects.filter(tenant=tenant, role=Role.REFERRING_PHYSICIAN).values("user_id")
    return list(User.objects.filter(id__in=ids, is_active=True).order_by("username"))


def grant_studies(
    *,
    tenant: Tenant,
    actor: audit.Actor,
    user: User,
    studies: list[Study],
    now: datetime.datetime | None = None,
) -> list[StudyGrant]:
    """Give these studies to one of the tenant's referrers (again: nothing duplicated)."""
    assert actor.user is not None
    now = now or timezone.now()
    if user not in referrers_of(tenant):
        raise ShareError("Choose one of this hospital's referring physicians.")
    if not studies or any(s.tenant_id != tenant.pk for s in studies):
        raise ShareError("Choose at least one study of this hospital.")
    made = []
    with transaction.atomic():
        for study in studies:
            grant, created = StudyGrant.objects.get_or_create(
                tenant=tenant,
                study=study,
                user=user,
                revoked_at=None,
                defaults={"granted_by": actor.user, "granted_at": now},
            )
            made.append(grant)
            if created:
                audit.record(
                    action=AuditAction.SHARE_GRANT,
                    actor=actor,
                    tenant=tenant,
                    study_instance_uid=study.study_instance_uid,
                    patient_ref=study.patient_id,
                    detail={"event": "share.grant", "grant": grant.pk, "user": user.pk},
                )
    return made


def revoke_grant(
    *, tenant: Tenant, actor: audit.Actor, grant_id: int, now: datetime.datetime | None = None
) -> bool:
    """Withdraw a grant of this tenant (False: no such grant, or withdrawn already)."""
    with transaction.atomic():
        done = StudyGrant.objects.filter(
            tenant=tenant, pk=grant_id, revoked_at__isnull=True
        ).update(revoked_at=now or timezone.now())
        if done:
            audit.record(
                action=AuditAction.SHARE_GRANT,
                actor=actor,
                tenant=tenant,
                detail={"event": "share.grant_revoke", "grant": grant_id},
            )
    return bool(done)


def grants_of(tenant: Tenant) -> list[StudyGrant]:
    return list(
        StudyGrant.objects.filter(tenant=tenant, revoked_at__isnull=True)
        .select_related("study", "user", "granted_by")
        .order_by("-granted_at", "-id")[:500]
    )
