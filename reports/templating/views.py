"""Management pages, under /reports/templates/manage/: tenant admins keep their hospital's
templates and text blocks, group admins their group's, every user their own text blocks.

An owner is named in the URL as ``t-<id>`` (a hospital), ``g-<id>`` (a reading group) or ``me``;
one the user does not administer is 404, as is a template or block of such an owner. Views parse,
find through ``queries``, call one service, render; the services check and audit.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reports.models import SECTIONS
from tenants import audit
from tenants.models import ReadingGroup, Tenant, User

from . import mrrt, queries, services
from .models import ReportTemplate, TextBlock
from .panel import SECTION_LABELS

Owner = Tenant | ReadingGroup | User


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(_me(request), address=request.META.get("REMOTE_ADDR"))


def owner_key(obj: ReportTemplate | TextBlock) -> str:
    if obj.tenant_id:
        return f"t-{obj.tenant_id}"
    if obj.group_id:
        return f"g-{obj.group_id}"
    return "me"


def _owner(user: User, key: str, *, templates: bool = False) -> Owner:
    """The owner named by ``key`` if the user administers it (``me`` has text blocks only)."""
    kind, _, number = key.partition("-")
    found: Owner | None = None
    if key == "me" and not templates:
        found = user
    elif kind == "t" and number.isdigit():
        found = queries.administered_tenants(user).filter(pk=int(number)).first()
    elif kind == "g" and number.isdigit():
        found = queries.administered_groups(user).filter(pk=int(number)).first()
    if found is None:
        raise Http404("No such owner.")
    return found


def _owner_label(owner: Owner) -> str:
    if isinstance(owner, Tenant):
        return f"{owner.name} (hospital)"
    if isinstance(owner, ReadingGroup):
        return f"{owner.name} (reading group)"
    return "My own text blocks"


def _template(user: User, template_id: int) -> ReportTemplate:
    try:
        return queries.managed_template(user, template_id)
    except queries.NotFound:
        raise Http404("No such template.") from None


def _block(user: User, block_id: int) -> TextBlock:
    try:
        return queries.managed_block(user, block_id)
    except queries.NotFound:
        raise Http404("No such text block.") from None


# ---------------------------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------------------------


@login_required
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    return _index(request)


def _index(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    user = _me(request)
    owners: list[dict[str, Any]] = []
    for tenant in queries.administered_tenants(user).order_by("name"):
        owners.append(
            {
                "key": f"t-{tenant.pk}",
                "label": _owner_label(tenant),
                "templates": ReportTemplate.objects.filter(tenant=tenant),
                "blocks": TextBlock.objects.filter(tenant=tenant),
                "has_templates": True,
            }
        )
    for group in queries.administered_groups(user).order_by("name"):
        owners.append(
            {
                "key": f"g-{group.pk}",
                "label": _owner_label(group),
                "templates": ReportTemplate.objects.filter(group=group),
                "blocks": TextBlock.objects.filter(group=group),
                "has_templates": True,
                "reads_for": list(queries.reads_for(group).order_by("name")),
            }
        )
    owners.append(
        {
            "key": "me",
            "label": _owner_label(user),
            "templates": [],
            "blocks": TextBlock.objects.filter(owner=user),
            "has_templates": False,
        }
    )
    return render(
        request,
        "reports/templating/manage.html",
        {"owners": owners, "error": error},
        status=status,
    )


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def _template_form(
    request: HttpRequest,
    *,
    owner_label: str,
    values: dict[str, Any],
    action: str,
    error: str = "",
    template: ReportTemplate | None = None,
) -> HttpResponse:
    return render(
        request,
        "reports/templating/template_form.html",
        {
            "owner_label": owner_label,
            "values": values,
            "sections": [(s, SECTION_LABELS[s], values.get(s, "")) for s in SECTIONS],
            "action": action,
            "error": error,
            "template": template,
        },
        status=400 if error else 200,
    )


def _posted_template(request: HttpRequest) -> dict[str, str]:
    keys = ("name", "modality", "body_part", "description", *SECTIONS)
    return {k: request.POST.get(k, "") for k in keys}


@login_required
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest, owner: str) -> HttpResponse:
    user = _me(request)
    found = _owner(user, owner, templates=True)
    assert not isinstance(found, User)
    label = _owner_label(found)
    if request.method == "GET":
        return _template_form(request, owner_label=label, values={}, action="Create template")
    values = _posted_template(request)
    try:
        template = services.create_template(
            owner=found, user=user, actor=_actor(request), data=values
        )
    except services.TemplateError as error:
        return _template_form(
            request, owner_label=label, values=values, action="Create template", error=str(error)
        )
    messages.success(request, f"Created the template “{template.name}”.")
    return redirect("reports:templating:manage")


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    user = _me(request)
    template = _template(user, template_id)
    owner = template.tenant or template.group
    assert owner is not None
    label = _owner_label(owner)
    if request.method == "GET":
        values = {
            "name": template.name,
            "modality": template.modality,
            "body_part": template.body_part,
            "description": template.description,
            **template.sections(),
        }
        return _template_form(
            request, owner_label=label, values=values, action="Save template", template=template
        )
    values = _posted_template(request)
    try:
        services.update_template(template=template, actor=_actor(request), data=values)
    except services.TemplateError as error:
        return _template_form(
            request,
            owner_label=label,
            values=values,
            action="Save template",
            error=str(error),
            template=template,
        )
    messages.success(request, f"Saved the template “{template.name}”.")
    return redirect("reports:templating:manage")


@login_required
@require_POST
def template_active(request: HttpRequest, template_id: int) -> HttpResponse:
    user = _me(request)
    template = _template(user, template_id)
    active = request.POST.get("active") == "1"
    services.set_template_active(template=template, actor=_actor(request), active=active)
    state = "is offered again" if active else "is no longer offered"
    messages.success(request, f"The template “{template.name}” {state}.")
    return redirect("reports:templating:manage")


@login_required
@require_GET
def template_export(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template(_me(request), template_id)
    return mrrt_download(template)


def mrrt_download(template: ReportTemplate) -> HttpResponse:
    response = HttpResponse(mrrt.export_template(template), content_type="text/html; charset=utf-8")
    filename = f"{slugify(template.name) or 'template'}.html"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # A template file opened from here must not run as a page of ours.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def template_import(request: HttpRequest, owner: str) -> HttpResponse:
    user = _me(request)
    found = _owner(user, owner, templates=True)
    assert not isinstance(found, User)
    upload = request.FILES.get("file")
    if upload is None:
        return _index(request, error="Choose an MRRT template file (.html) to import.", status=400)
    if upload.size is not None and upload.size > mrrt.MAX_IMPORT_BYTES:
        too_big = (
            f"The file was not imported: it is larger than {mrrt.MAX_IMPORT_BYTES // 1024} KB; "
            "an MRRT template is a small HTML file."
        )
        return _index(request, error=too_big, status=413)
    overrides = {k: request.POST.get(k, "").strip() for k in ("name", "modality", "body_part")}
    try:
        template = services.import_template(
            owner=found,
            user=user,
            actor=_actor(request),
            data=upload.read(mrrt.MAX_IMPORT_BYTES + 1),
            overrides=overrides,
        )
    except services.TemplateError as error:
        return _index(request, error=f"The file was not imported: {error}", status=400)
    messages.success(request, f"Imported the template “{template.name}”; check it, then use it.")
    return redirect("reports:templating:template-edit", template_id=template.pk)


# ---------------------------------------------------------------------------------------------
# Text blocks
# ---------------------------------------------------------------------------------------------


def _block_form(
    request: HttpRequest,
    *,
    owner_label: str,
    values: dict[str, Any],
    action: str,
    error: str = "",
    block: TextBlock | None = None,
) -> HttpResponse:
    return render(
        request,
        "reports/templating/block_form.html",
        {
            "owner_label": owner_label,
            "values": values,
            "action": action,
            "error": error,
            "block": block,
        },
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def block_new(request: HttpRequest, owner: str) -> HttpResponse:
    user = _me(request)
    found = _owner(user, owner)
    label = _owner_label(found)
    if request.method == "GET":
        return _block_form(request, owner_label=label, values={}, action="Create text block")
    values = {k: request.POST.get(k, "") for k in ("shortcut", "text")}
    try:
        block = services.create_block(owner=found, actor=_actor(request), data=values)
    except services.TemplateError as error:
        return _block_form(
            request, owner_label=label, values=values, action="Create text block", error=str(error)
        )
    messages.success(request, f"Created the text block {block.shortcut}.")
    return redirect("reports:templating:manage")


@login_required
@require_http_methods(["GET", "POST"])
def block_edit(request: HttpRequest, block_id: int) -> HttpResponse:
    user = _me(request)
    block = _block(user, block_id)
    owner = block.tenant or block.group or block.owner
    assert owner is not None
    label = _owner_label(owner)
    if request.method == "GET":
        values = {"shortcut": block.shortcut, "text": block.text}
        return _block_form(
            request, owner_label=label, values=values, action="Save text block", block=block
        )
    values = {k: request.POST.get(k, "") for k in ("shortcut", "text")}
    try:
        services.update_block(block=block, actor=_actor(request), data=values)
    except services.TemplateError as error:
        return _block_form(
            request,
            owner_label=label,
            values=values,
            action="Save text block",
            error=str(error),
            block=block,
        )
    messages.success(request, f"Saved the text block {block.shortcut}.")
    return redirect("reports:templating:manage")


@login_required
@require_POST
def block_active(request: HttpRequest, block_id: int) -> HttpResponse:
    block = _block(_me(request), block_id)
    active = request.POST.get("active") == "1"
    services.set_block_active(block=block, actor=_actor(request), active=active)
    state = "expands again" if active else "no longer expands"
    messages.success(request, f"The text block {block.shortcut} {state}.")
    return redirect("reports:templating:manage")
