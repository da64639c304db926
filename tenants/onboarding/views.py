"""Pages of onboarding: the platform console, accepting an invitation, the set-up overview,
hospital details, and the members pages of hospitals and reading groups."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from tenants import rls
from tenants.models import Membership, ReadingGroup, Role, Tenant, User

from . import services
from .access import (
    group_for_admin,
    hospital_for_admin,
    hospital_for_member,
    require_platform_admin,
)
from .forms import DetailsForm, GroupForm, HospitalForm, InviteForm, RoleForm, UsersImportForm
from .models import DeactivatedMembership, HospitalProfile, Invitation, InvitationState
from .sections import sections


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{field}: {m}" if field != "__all__" else m
            for field, ms in error.message_dict.items()
            for m in ms
        ]
    return list(error.messages)


# ---------------------------------------------------------------------------------------------
# The platform console
# ---------------------------------------------------------------------------------------------


def _platform_lists() -> dict[str, Any]:
    admins = Count("memberships", filter=Q(memberships__role=Role.TENANT_ADMIN), distinct=True)
    invited = Count(
        "invitations",
        filter=Q(invitations__accepted_at=None, invitations__revoked_at=None),
        distinct=True,
    )
    hospitals = Tenant.objects.annotate(admins=admins, invited=invited).prefetch_related(
        "called_ae_titles"
    )
    group_admins = Count("memberships", filter=Q(memberships__role=Role.GROUP_ADMIN), distinct=True)
    group_invited = Count(
        "invitations",
        filter=Q(invitations__accepted_at=None, invitations__revoked_at=None),
        distinct=True,
    )
    groups = ReadingGroup.objects.annotate(admins=group_admins, invited=group_invited)
    return {"hospitals": hospitals, "groups": groups}


@login_required
@require_http_methods(["GET", "POST"])
def platform(request: HttpRequest) -> HttpResponse:
    """Hospitals and reading groups with their state; forms to create either with its first
    admin's invitation. Platform staff only: for anyone else the page does not exist."""
    require_platform_admin(request.user)
    user: Any = request.user
    hospital_form = HospitalForm(prefix="hospital")
    group_form = GroupForm(prefix="group")
    status = 200
    if request.method == "POST":
        form: HospitalForm | GroupForm
        if request.POST.get("kind") == "group":
            form = group_form = GroupForm(request.POST, prefix="group")
        else:
            form = hospital_form = HospitalForm(request.POST, prefix="hospital")
        if form.is_valid():
            created = form.save(actor=user)
            messages.success(request, f"{created.name} created; invitation sent.")
            return redirect("onboarding:platform")
        status = 400
    context = {"hospital_form": hospital_form, "group_form": group_form, **_platform_lists()}
    return render(request, "onboarding/platform.html", context, status=status)


# ---------------------------------------------------------------------------------------------
# Accepting an invitation
# ---------------------------------------------------------------------------------------------


class NewAccountForm(UserCreationForm):
    """A username and a password checked by AUTH_PASSWORD_VALIDATORS."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)


def _landing(invitation: Invitation) -> str:
    if invitation.tenant and invitation.role == Role.TENANT_ADMIN:
        return reverse("onboarding:overview", kwargs={"tenant_slug": invitation.tenant.slug})
    if invitation.group and invitation.role == Role.GROUP_ADMIN:
        return reverse("onboarding:group-members", kwargs={"group_slug": invitation.group.slug})
    return reverse("home")


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Who invites whom to what; accept as the signed-in user, or choose a username and a
    password. Admins and radiologists then go through MFA enrolment (the MFA gate) first."""
    invitation = services.find_invitation(token)
    if invitation is None:
        raise Http404("No such invitation.")
    if invitation.state() != InvitationState.PENDING:
        return render(
            request,
            "onboarding/invite_closed.html",
            {"invitation": invitation, "reason": services.closed_message(invitation)},
            status=410,
        )
    user: Any = request.user
    form = NewAccountForm()
    status = 200
    if request.method == "POST":
        if user.is_authenticated:
            account = user
        else:
            form = NewAccountForm(request.POST)
            if not form.is_valid():
                return render(
                    request,
                    "onboarding/invite.html",
                    {"invitation": invitation, "form": form, "role": Role(invitation.role).label},
                    status=400,
                )
            account = form.save(commit=False)
            account.email = invitation.email
            account.save()
        try:
            # The link is the capability, and the caller may have no hospital yet: the
            # acceptance (membership, audit rows in the hospital's log) is system work.
            with rls.system_work():
                services.accept_invitation(invitation=invitation, user=account)
        except services.InvitationClosed as exc:
            return render(
                request,
                "onboarding/invite_closed.html",
                {"invitation": invitation, "reason": str(exc)},
                status=410,
            )
        if not user.is_authenticated:
            login(request, account, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to {invitation.target_name}.")
        return redirect(_landing(invitation))
    context = {"invitation": invitation, "form": form, "role": Role(invitation.role).label}
    return render(request, "onboarding/invite.html", context, status=status)


# ---------------------------------------------------------------------------------------------
# The set-up wizard
# ---------------------------------------------------------------------------------------------


@login_required
def overview(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = hospital_for_admin(request.user, tenant_slug)
    steps = [
        {
            "title": s.title,
            "summary": s.summary(tenant),
            "done": s.done(tenant),
            "url": reverse(s.url_name, kwargs={"tenant_slug": tenant.slug}),
        }
        for s in sections()
    ]
    return render(request, "onboarding/overview.html", {"tenant": tenant, "steps": steps})


@login_required
@require_http_methods(["GET", "POST"])
def details(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = hospital_for_admin(request.user, tenant_slug)
    profile, _ = HospitalProfile.objects.get_or_create(tenant=tenant)
    initial = {"name": tenant.name, **{f: getattr(profile, f) for f in services.PROFILE_FIELDS}}
    form = DetailsForm(initial=initial)
    status = 200
    if request.method == "POST":
        form = DetailsForm(request.POST, request.FILES, initial=initial)
        if form.is_valid():
            data = form.cleaned_data
            logo = None
            if data["logo"]:
                content, extension, content_type = data["logo"]
                logo = (services.store_logo(tenant, content, extension), content_type)
            changed = services.save_details(
                tenant=tenant,
                name=data["name"],
                values={f: data[f] for f in services.PROFILE_FIELDS},
                logo=logo,
                actor=request.user,  # type: ignore[arg-type]
            )
            messages.success(request, "Saved." if changed else "Nothing changed.")
            return redirect("onboarding:details", tenant_slug=tenant.slug)
        status = 400
    context = {"tenant": tenant, "form": form, "profile": profile}
    return render(request, "onboarding/details.html", context, status=status)


@login_required
def logo(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """The hospital's logo, for its own staff only."""
    tenant = hospital_for_member(request.user, tenant_slug)
    profile = HospitalProfile.objects.filter(tenant=tenant).first()
    data = services.read_logo(profile) if profile else None
    if data is None or profile is None:
        raise Http404("No logo.")
    response = HttpResponse(data, content_type=profile.logo_content_type)
    response["Cache-Control"] = "private, max-age=300"
    return response


# ---------------------------------------------------------------------------------------------
# Members of a hospital or a reading group
# ---------------------------------------------------------------------------------------------


def _members_post(request: HttpRequest, target: Tenant | ReadingGroup) -> tuple[str, Any]:
    """Do what the POST asks; return (message, form with errors or None)."""
    user: Any = request.user
    roles = services.roles_for(target)
    where = {"tenant": target} if isinstance(target, Tenant) else {"group": target}
    action = request.POST.get("action", "")

    def named(model: Any, **extra: Any) -> Any:
        """The row the POST's ``id`` names, of this hospital or group only; else not found."""
        try:
            pk = int(request.POST.get("id", ""))
        except ValueError:
            raise Http404("No such row.") from None
        found = model.objects.filter(pk=pk, **where, **extra).first()
        if found is None:
            raise Http404("No such row.")
        return found

    form: forms.Form
    if action == "invite":
        form = InviteForm(request.POST, roles=roles, prefix="invite")
        if not form.is_valid():
            return "", form
        data = form.cleaned_data
        try:
            services.invite(
                target=target,
                email=data["email"],
                role=data["role"],
                person_name=data["person_name"],
                actor=user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            return "", form
        return f"Invitation sent to {data['email']}.", None
    if action == "import":
        form = UsersImportForm(request.POST, request.FILES, roles=roles, prefix="import")
        if not form.is_valid():
            return "", form
        sent = services.import_users(target=target, invitees=form.cleaned_data["file"], actor=user)
        return f"{sent} invitations sent.", None
    if action == "role":
        membership = named(Membership)
        form = RoleForm(request.POST, roles=roles)
        if form.is_valid():
            services.change_role(membership=membership, role=form.cleaned_data["role"], actor=user)
            return "Role changed.", None
        return "", form
    if action == "deactivate":
        services.deactivate(membership=named(Membership), actor=user)
        return "Deactivated.", None
    if action == "reactivate":
        services.reactivate(record=named(DeactivatedMembership), actor=user)
        return "Reactivated.", None
    if action in ("revoke", "resend"):
        invitation = named(Invitation, accepted_at=None)
        if action == "revoke":
            services.revoke_invitation(invitation=invitation, actor=user)
            return "Invitation withdrawn.", None
        services.invite(target=target, email=invitation.email, role=invitation.role, actor=user)
        return f"Invitation sent again to {invitation.email}.", None
    raise ValidationError("Choose an action.")


def _members_page(
    request: HttpRequest, target: Tenant | ReadingGroup, *, here: str, title: str
) -> HttpResponse:
    roles = services.roles_for(target)
    invite_form = InviteForm(roles=roles, prefix="invite")
    import_form = UsersImportForm(roles=roles, prefix="import")
    errors: list[str] = []
    if request.method == "POST":
        try:
            message, form = _members_post(request, target)
        except ValidationError as exc:
            message, form = "", None
            errors = _messages_of(exc)
        if message:
            messages.success(request, message)
            return redirect(here)
        if isinstance(form, InviteForm):
            invite_form = form
        elif isinstance(form, UsersImportForm):
            import_form = form
        elif form is not None:
            errors += [f"{f}: {e}" for f, es in form.errors.items() for e in es]
    context = {
        "target": target,
        "title": title,
        "here": here,
        "members": services.members_of(target),
        "deactivated": services.deactivated_of(target),
        "invitations": services.open_invitations(target),
        "roles": [(value, Role(value).label) for value in roles],
        "invite_form": invite_form,
        "import_form": import_form,
        "errors": errors,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "onboarding/members.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = hospital_for_admin(request.user, tenant_slug)
    here = reverse("onboarding:users", kwargs={"tenant_slug": tenant.slug})
    return _members_page(request, tenant, here=here, title=f"Users of {tenant.name}")


@login_required
@require_http_methods(["GET", "POST"])
def group_members(request: HttpRequest, group_slug: str) -> HttpResponse:
    group = group_for_admin(request.user, group_slug)
    here = reverse("onboarding:group-members", kwargs={"group_slug": group.slug})
    return _members_page(request, group, here=here, title=f"Members of {group.name}")
