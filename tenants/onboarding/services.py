"""Writes of onboarding: hospitals and groups made by the platform, invitations, roles, profiles.

Each function runs in one transaction with an explicit actor, writes its audit rows, and sends
mail only once the transaction has committed (``transaction.on_commit``), so a rolled-back
onboarding (``onboard_tenant`` on an error, or ``--dry-run``) sends nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from studies.storage import derived_key, object_store
from tenants import audit
from tenants import services as tenant_services
from tenants.models import (
    GROUP_ROLES,
    TENANT_ROLES,
    AuditAction,
    Membership,
    ReadingGroup,
    Role,
    Tenant,
    User,
)

from .models import DeactivatedMembership, HospitalProfile, Invitation, InvitationState

# Changing these is a configuration change audited with the field names (never the values).
PROFILE_FIELDS = ("address", "phone", "email", "report_footer")


def actor_of(user: User | None, address: str | None = None) -> audit.Actor:
    return audit.Actor.for_user(user, address=address) if user else audit.Actor.system()


def roles_for(target: Tenant | ReadingGroup) -> list[str]:
    """The roles one can hold in a hospital, or in a reading group, in the order of ``Role``."""
    allowed = TENANT_ROLES if isinstance(target, Tenant) else GROUP_ROLES
    return [value for value in Role.values if value in allowed]


def admin_role(target: Tenant | ReadingGroup) -> str:
    return Role.TENANT_ADMIN if isinstance(target, Tenant) else Role.GROUP_ADMIN


def _target_filter(target: Tenant | ReadingGroup) -> dict[str, object]:
    return {"tenant": target} if isinstance(target, Tenant) else {"group": target}


def _audit_tenant(target: Tenant | ReadingGroup) -> Tenant | None:
    """A hospital's rows go to its own log; a reading group's to the platform's chain."""
    return target if isinstance(target, Tenant) else None


# ---------------------------------------------------------------------------------------------
# Invitations
# ---------------------------------------------------------------------------------------------


def accept_url(token: str) -> str:
    path = reverse("onboarding:invite-accept", kwargs={"token": token})
    return settings.SKYLIGHT_PUBLIC_URL.rstrip("/") + path


def _mail_invitation(invitation: Invitation, token: str) -> None:
    target = invitation.target_name
    role = Role(invitation.role).label.lower()
    days = max(1, round((invitation.expires_at - invitation.sent_at).total_seconds() / 86400))
    body = (
        f"You are invited to join {target} on Skylight as {role}.\n\n"
        f"Accept the invitation here (the link works once, for {days} days):\n"
        f"{accept_url(token)}\n\n"
        "If you did not expect this e-mail, ignore it.\n"
    )
    send_mail(f"Skylight: join {target}", body, None, [invitation.email])


def _new_token() -> tuple[str, str]:
    # 256 random bits: guessing a live token is hopeless, so no rate limit is needed on top.
    token = secrets.token_urlsafe(32)
    return token, Invitation.hash_token(token)


def invite(
    *,
    target: Tenant | ReadingGroup,
    email: str,
    role: str,
    actor: User | None,
    person_name: str = "",
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """Invite ``email`` to ``role`` in a hospital or a reading group and mail the link.

    Inviting the same address to the same role again while the first invitation is open sends
    it again with a new token (the old link stops working). Returns the invitation and its token.
    """
    now = now or timezone.now()
    email = email.strip()
    if role not in roles_for(target):
        kind = "hospital" if isinstance(target, Tenant) else "reading-group"
        raise ValidationError(
            {"role": f"{Role(role).label if role in Role.values else role!r} is not a {kind} role."}
        )
    if Membership.objects.filter(
        **_target_filter(target), role=role, user__email__iexact=email
    ).exists():
        raise ValidationError({"email": f"{email} already has this role here."})
    token, token_hash = _new_token()
    expires = now + timedelta(days=settings.SKYLIGHT_INVITATION_DAYS)
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(
                **_target_filter(target),
                email__iexact=email,
                role=role,
                accepted_at=None,
                revoked_at=None,
            )
            .first()
        )
        resent = invitation is not None
        if invitation is None:
            invitation = Invitation(**_target_filter(target), email=email, role=role)
            invitation.created_at = now
        invitation.person_name = person_name.strip() or invitation.person_name
        invitation.token_hash = token_hash
        invitation.sent_at = now
        invitation.expires_at = expires
        invitation.invited_by = actor
        invitation.full_clean()
        invitation.save()
        audit.record(
            action=AuditAction.INVITE_SEND,
            actor=actor_of(actor),
            tenant=_audit_tenant(target),
            detail={
                "invitation": invitation.pk,
                "role": role,
                "group": invitation.group_id,
                "resent": resent,
            },
        )
        transaction.on_commit(lambda: _mail_invitation(invitation, token))
    return invitation, token


def find_invitation(token: str) -> Invitation | None:
    """The invitation of a token, whatever its state; None for a token nobody was sent."""
    return (
        Invitation.objects.select_related("tenant", "group")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )


def revoke_invitation(
    *, invitation: Invitation, actor: User | None, now: datetime | None = None
) -> bool:
    """Stop an open invitation's link working. False when it was no longer open."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at=None, revoked_at=None
        ).update(revoked_at=now)
        if changed:
            audit.record(
                action=AuditAction.INVITE_REVOKE,
                actor=actor_of(actor),
                tenant=invitation.tenant,
                detail={"invitation": invitation.pk, "group": invitation.group_id},
            )
    return bool(changed)


class InvitationClosed(Exception):
    """The invitation was accepted, revoked or has expired. The message is safe to show."""


def accept_invitation(
    *, invitation: Invitation, user: User, now: datetime | None = None
) -> Membership:
    """Give ``user`` the invited role. A conditional UPDATE claims the invitation, so a double
    click or a second browser cannot use it twice."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at=None, revoked_at=None, expires_at__gt=now
        ).update(accepted_at=now, accepted_by=user)
        if not claimed:
            invitation.refresh_from_db()
            raise InvitationClosed(closed_message(invitation, now))
        target: Tenant | ReadingGroup = invitation.tenant or invitation.group  # type: ignore[assignment]
        changed = []
        if invitation.person_name and not user.person_name:
            user.person_name = invitation.person_name
            changed.append("person_name")
        if not user.email:
            user.email = invitation.email
            changed.append("email")
        if changed:
            user.save(update_fields=changed)
        membership = Membership.objects.filter(
            user=user, **_target_filter(target), role=invitation.role
        ).first()
        if membership is None:
            membership = tenant_services.add_membership(
                user=user,
                role=invitation.role,
                actor=audit.Actor.for_user(user),
                **_target_filter(target),  # type: ignore[arg-type]
            )
        DeactivatedMembership.objects.filter(
            user=user, **_target_filter(target), role=invitation.role
        ).delete()
        audit.record(
            action=AuditAction.INVITE_ACCEPT,
            actor=audit.Actor.for_user(user),
            tenant=_audit_tenant(target),
            detail={
                "invitation": invitation.pk,
                "role": invitation.role,
                "group": invitation.group_id,
            },
        )
    return membership


def closed_message(invitation: Invitation, now: datetime | None = None) -> str:
    state = invitation.state(now)
    if state == InvitationState.ACCEPTED:
        return "This invitation has already been used. Sign in with the account that accepted it."
    if state == InvitationState.REVOKED:
        return "This invitation was withdrawn. Ask your administrator for a new one."
    if state == InvitationState.EXPIRED:
        return "This invitation has expired. Ask your administrator to send it again."
    return ""


# ---------------------------------------------------------------------------------------------
# The platform: hospitals and reading groups with their first admin
# ---------------------------------------------------------------------------------------------


def create_hospital(
    *,
    slug: str,
    name: str,
    jurisdiction: str,
    called_ae_title: str,
    admin_email: str,
    actor: User | None,
    now: datetime | None = None,
) -> tuple[Tenant, Invitation, str]:
    """A new hospital with its called AE title, and an invitation for its first admin."""
    with transaction.atomic():
        tenant = tenant_services.create_tenant(slug=slug, name=name, jurisdiction=jurisdiction)
        tenant_services.add_called_ae_title(tenant=tenant, ae_title=called_ae_title)
        HospitalProfile.objects.create(tenant=tenant)
        audit.record(
            action=AuditAction.TENANT_CREATE,
            actor=actor_of(actor),
            tenant=tenant,
            detail={"slug": tenant.slug, "called_ae_title": called_ae_title.strip()},
        )
        invitation, token = invite(
            target=tenant, email=admin_email, role=Role.TENANT_ADMIN, actor=actor, now=now
        )
    return tenant, invitation, token


def create_reading_group(
    *, slug: str, name: str, admin_email: str, actor: User | None, now: datetime | None = None
) -> tuple[ReadingGroup, Invitation, str]:
    with transaction.atomic():
        group = tenant_services.create_group(slug=slug, name=name)
        audit.record(
            action=AuditAction.GROUP_CREATE,
            actor=actor_of(actor),
            tenant=None,
            detail={"group": group.pk, "slug": group.slug},
        )
        invitation, token = invite(
            target=group, email=admin_email, role=Role.GROUP_ADMIN, actor=actor, now=now
        )
    return group, invitation, token


# ---------------------------------------------------------------------------------------------
# Users and roles
# ---------------------------------------------------------------------------------------------


def _refuse_last_admin(membership: Membership) -> None:
    target = membership.tenant or membership.group
    assert target is not None
    if membership.role != admin_role(target):
        return
    others = Membership.objects.filter(**_target_filter(target), role=membership.role).exclude(
        pk=membership.pk
    )
    if not others.exists():
        raise ValidationError(
            "This is the last admin here; make someone else admin first, so that somebody can "
            "still manage it."
        )


def change_role(*, membership: Membership, role: str, actor: User | None) -> Membership:
    target = membership.tenant or membership.group
    assert target is not None
    if role not in roles_for(target):
        raise ValidationError({"role": "Choose one of the roles offered."})
    if role == membership.role:
        return membership
    if Membership.objects.filter(
        user=membership.user, **_target_filter(target), role=role
    ).exists():
        raise ValidationError({"role": "This person already has that role here."})
    _refuse_last_admin(membership)
    old = membership.role
    with transaction.atomic():
        membership.role = role
        membership.save(update_fields=["role"])
        tenant_services._membership_audit(
            membership, AuditAction.ROLE_CHANGE, actor_of(actor), previous_role=old
        )
    return membership


def deactivate(
    *, membership: Membership, actor: User | None, now: datetime | None = None
) -> DeactivatedMembership:
    """Take the role away at once (every access check reads memberships), keeping a record to
    give it back. The person's roles elsewhere stay as they are."""
    _refuse_last_admin(membership)
    target = membership.tenant or membership.group
    assert target is not None
    with transaction.atomic():
        record, _ = DeactivatedMembership.objects.update_or_create(
            user=membership.user,
            role=membership.role,
            **_target_filter(target),  # type: ignore[arg-type]
            defaults={"deactivated_at": now or timezone.now(), "deactivated_by": actor},
        )
        tenant_services._membership_audit(membership, AuditAction.USER_DEACTIVATE, actor_of(actor))
        membership.delete()
    return record


def reactivate(*, record: DeactivatedMembership, actor: User | None) -> Membership:
    with transaction.atomic():
        membership, _ = Membership.objects.get_or_create(
            user=record.user, tenant=record.tenant, group=record.group, role=record.role
        )
        tenant_services._membership_audit(membership, AuditAction.USER_REACTIVATE, actor_of(actor))
        record.delete()
    return membership


@dataclass(frozen=True)
class Invitee:
    email: str
    role: str
    person_name: str = ""


def pending(target: Tenant | ReadingGroup, email: str, role: str) -> bool:
    """An invitation to this role is open and still works (an expired one is sent again)."""
    return Invitation.objects.filter(
        **_target_filter(target),
        email__iexact=email,
        role=role,
        accepted_at=None,
        revoked_at=None,
        expires_at__gt=timezone.now(),
    ).exists()


def has_role(target: Tenant | ReadingGroup, email: str, role: str) -> bool:
    return Membership.objects.filter(
        **_target_filter(target), role=role, user__email__iexact=email
    ).exists()


def import_users(
    *,
    target: Tenant | ReadingGroup,
    invitees: list[Invitee],
    actor: User | None,
    now: datetime | None = None,
) -> int:
    """Invite every row of a checked CSV in one transaction. Rows whose person already has the
    role, or has an open invitation to it, are left alone, so importing a file twice sends
    nothing twice. Returns how many invitations were sent."""
    sent = 0
    with transaction.atomic():
        for row in invitees:
            if has_role(target, row.email, row.role) or pending(target, row.email, row.role):
                continue
            invite(
                target=target,
                email=row.email,
                role=row.role,
                person_name=row.person_name,
                actor=actor,
                now=now,
            )
            sent += 1
        audit.record(
            action=AuditAction.USERS_IMPORT,
            actor=actor_of(actor),
            tenant=_audit_tenant(target),
            detail={
                "rows": len(invitees),
                "invited": sent,
                "group": getattr(target, "pk", None) if isinstance(target, ReadingGroup) else None,
            },
        )
    return sent


def members_of(target: Tenant | ReadingGroup) -> list[Membership]:
    return list(
        Membership.objects.filter(**_target_filter(target))
        .select_related("user")
        .order_by("user__username", "role")
    )


def deactivated_of(target: Tenant | ReadingGroup) -> list[DeactivatedMembership]:
    return list(
        DeactivatedMembership.objects.filter(**_target_filter(target))
        .select_related("user")
        .order_by("user__username", "role")
    )


def open_invitations(target: Tenant | ReadingGroup) -> list[Invitation]:
    return list(
        Invitation.objects.filter(**_target_filter(target), accepted_at=None).filter(
            Q(revoked_at=None)
        )
    )


# ---------------------------------------------------------------------------------------------
# Hospital details and branding
# ---------------------------------------------------------------------------------------------


def logo_key(tenant: Tenant, data: bytes, extension: str) -> str:
    """Content-addressed, under the tenant: saving the same logo twice writes the same key."""
    digest = hashlib.sha256(data).hexdigest()[:32]
    return derived_key(tenant.pk, "branding", f"logo-{digest}.{extension}")


def store_logo(tenant: Tenant, data: bytes, extension: str) -> str:
    """Write the logo to object storage before the database names it (slow I/O stays outside
    the transaction; an orphan object from a failed save is harmless)."""
    key = logo_key(tenant, data, extension)
    object_store().put(key, data, len(data))
    return key


def read_logo(profile: HospitalProfile) -> bytes | None:
    if not profile.logo_key:
        return None
    with object_store().open(profile.logo_key, "rb") as stored:
        data: bytes = stored.read()
    return data


def save_details(
    *,
    tenant: Tenant,
    name: str,
    values: dict[str, str],
    logo: tuple[str, str] | None,
    actor: User | None,
    now: datetime | None = None,
) -> list[str]:
    """Save what changed; ``logo`` is (storage key, content type) of a logo already stored.
    Returns the changed field names (audited as SETTINGS_CHANGE; nothing changed: no row)."""
    now = now or timezone.now()
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        profile, _ = HospitalProfile.objects.select_for_update().get_or_create(tenant=tenant)
        changed = []
        if name and name != tenant.name:
            tenant.name = name
            tenant.save(update_fields=["name"])
            changed.append("name")
        for field in PROFILE_FIELDS:
            if field in values and values[field] != getattr(profile, field):
                setattr(profile, field, values[field])
                changed.append(field)
        if logo is not None and logo[0] != profile.logo_key:
            profile.logo_key, profile.logo_content_type = logo
            changed.append("logo")
        if changed:
            profile.updated_at = now
            profile.save()
            audit.record(
                action=AuditAction.SETTINGS_CHANGE,
                actor=actor_of(actor),
                tenant=tenant,
                detail={"settings": "details", "fields": changed},
            )
    return changed
