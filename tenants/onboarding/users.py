"""The wizard's "Users and roles" step: who works here, in which role, and who is invited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from tenants.models import Membership, Role, Tenant, User

from . import services
from .forms import InviteForm
from .models import Invitation
from .sections import Section


def summary(tenant: Tenant) -> str:
    members = Membership.objects.filter(tenant=tenant).values("user").distinct().count()
    invited = Invitation.objects.filter(tenant=tenant, accepted_at=None, revoked_at=None).count()
    return f"{members} users, {invited} open invitations"


def done(tenant: Tenant) -> bool:
    """A hospital is staffed when someone besides its admins has a role."""
    return Membership.objects.filter(tenant=tenant).exclude(role=Role.TENANT_ADMIN).exists()


def apply(tenant: Tenant, data: Any, actor: User | None) -> None:
    """``users: [{email, role, person_name}, ...]``: invite whoever does not hold the role yet
    and has no open invitation to it; everyone else is left as is (idempotent)."""
    if not isinstance(data, list):
        raise ValidationError("Give the users as a list of {email, role, person_name}.")
    roles = services.roles_for(tenant)
    errors: dict[str, list[str]] = {}
    invitees: list[services.Invitee] = []
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            errors[f"[{index}]"] = ["Give email, role and person_name."]
            continue
        form = InviteForm({k: "" if v is None else str(v) for k, v in row.items()}, roles=roles)
        if not form.is_valid():
            for field, messages in form.errors.items():
                errors[f"[{index}].{field}"] = [str(m) for m in messages]
            continue
        cleaned = form.cleaned_data
        invitees.append(services.Invitee(cleaned["email"], cleaned["role"], cleaned["person_name"]))
    if errors:
        raise ValidationError(errors)
    for row in invitees:
        if services.has_role(tenant, row.email, row.role) or services.pending(
            tenant, row.email, row.role
        ):
            continue
        services.invite(
            target=tenant,
            email=row.email,
            role=row.role,
            person_name=row.person_name,
            actor=actor,
        )


def export(tenant: Tenant) -> list[dict[str, str]]:
    rows = [
        {"email": m.user.email, "role": m.role, "person_name": m.user.person_name}
        for m in services.members_of(tenant)
        if m.user.email
    ]
    rows += [
        {"email": i.email, "role": i.role, "person_name": i.person_name}
        for i in services.open_invitations(tenant)
    ]
    return rows


SECTION = Section(
    key="users",
    title="Users and roles",
    order=30,
    url_name="onboarding:users",
    summary=summary,
    done=done,
    apply=apply,
    export=export,
)
