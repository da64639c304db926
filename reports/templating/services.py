"""Writes to templates and text blocks: create, edit, deactivate, import. Each is checked here (so
the pages, the API and an import obey the same rules) and audited as TEMPLATE_CHANGE.

Callers have already found the owner through ``queries`` (an owner the user administers), so
these functions take it as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from reports.models import SECTIONS
from tenants import audit
from tenants.models import AuditAction, ReadingGroup, Tenant, User

from . import mrrt, syntax
from .models import MAX_BLOCK, MAX_SECTION, SHORTCUT, SHORTCUT_HELP, ReportTemplate, TextBlock

Owner = Tenant | ReadingGroup | User

MODALITY = re.compile(r"^[A-Z0-9]{0,16}$")
BODY_PART = re.compile(r"^[A-Z0-9_ ]{0,64}$")


class TemplateError(ValueError):
    """A template or text block that cannot be saved; the message says what to change."""

    status = 400


def _owner_fields(owner: Owner) -> dict[str, Any]:
    if isinstance(owner, Tenant):
        return {"tenant": owner}
    if isinstance(owner, ReadingGroup):
        return {"group": owner}
    return {"owner": owner}


def _record(actor: audit.Actor, obj: ReportTemplate | TextBlock, change: str) -> None:
    kind = "template" if isinstance(obj, ReportTemplate) else "text_block"
    detail: dict[str, Any] = {kind: obj.pk, "change": change}
    if obj.group_id:
        detail["group"] = obj.group_id
    audit.record(
        action=AuditAction.TEMPLATE_CHANGE,
        actor=actor,
        # A group's template belongs to no hospital; the row names the group instead.
        tenant=obj.tenant,
        detail=detail,
    )


def clean_template(data: Mapping[str, Any]) -> dict[str, Any]:
    """The template's fields as they will be stored, or TemplateError."""
    name = str(data.get("name", "")).strip()
    if not name or len(name) > 120:
        raise TemplateError("Give the template a name of 1 to 120 characters.")
    modality = str(data.get("modality", "")).strip().upper()
    if not MODALITY.match(modality):
        raise TemplateError('The modality is a DICOM modality such as "CT" or "MR", or blank.')
    body_part = str(data.get("body_part", "")).strip().upper()
    if not BODY_PART.match(body_part):
        raise TemplateError(
            'The body part is a DICOM Body Part Examined such as "CHEST" or "HEAD", or blank.'
        )
    description = str(data.get("description", "")).strip()
    if len(description) > 500:
        raise TemplateError("Keep the description under 500 characters.")
    cleaned: dict[str, Any] = {
        "name": name,
        "modality": modality,
        "body_part": body_part,
        "description": description,
    }
    for section in SECTIONS:
        text = str(data.get(section, "") or "").replace("\r\n", "\n")
        if len(text) > MAX_SECTION:
            raise TemplateError(
                f"The {section.replace('_', ' ')} section is over {MAX_SECTION} characters."
            )
        cleaned[section] = text
    if not any(cleaned[s].strip() for s in SECTIONS):
        raise TemplateError("A template needs text in at least one section.")
    try:
        syntax.fields_of({s: cleaned[s] for s in SECTIONS})
    except syntax.TemplateSyntaxError as error:
        raise TemplateError(str(error)) from None
    return cleaned


def create_template(
    *,
    owner: Tenant | ReadingGroup,
    user: User | None,
    actor: audit.Actor,
    data: Mapping[str, Any],
    now: datetime | None = None,
    change: str = "create",
) -> ReportTemplate:
    now = now or timezone.now()
    cleaned = clean_template(data)
    try:
        with transaction.atomic():
            template = ReportTemplate.objects.create(
                **_owner_fields(owner), **cleaned, created_by=user, created_at=now, updated_at=now
            )
            _record(actor, template, change)
    except IntegrityError:
        raise TemplateError(
            f"{owner.name} already has a template named “{cleaned['name']}”: choose another name."
        ) from None
    return template


def update_template(
    *,
    template: ReportTemplate,
    actor: audit.Actor,
    data: Mapping[str, Any],
    now: datetime | None = None,
) -> ReportTemplate:
    cleaned = clean_template(data)
    for key, value in cleaned.items():
        setattr(template, key, value)
    template.updated_at = now or timezone.now()
    try:
        with transaction.atomic():
            template.save()
            _record(actor, template, "edit")
    except IntegrityError:
        raise TemplateError(
            f"There is already a template named “{cleaned['name']}”: choose another name."
        ) from None
    return template


def set_template_active(
    *, template: ReportTemplate, actor: audit.Actor, active: bool, now: datetime | None = None
) -> ReportTemplate:
    if template.is_active != active:
        template.is_active = active
        template.updated_at = now or timezone.now()
        with transaction.atomic():
            template.save(update_fields=["is_active", "updated_at"])
            _record(actor, template, "activate" if active else "deactivate")
    return template


# ---------------------------------------------------------------------------------------------
# Text blocks
# ---------------------------------------------------------------------------------------------


def clean_block(data: Mapping[str, Any]) -> dict[str, str]:
    shortcut = str(data.get("shortcut", "")).strip().lower()
    if shortcut and not shortcut.startswith("."):
        shortcut = "." + shortcut
    if not SHORTCUT.match(shortcut):
        raise TemplateError(SHORTCUT_HELP)
    text = str(data.get("text", "") or "").replace("\r\n", "\n")
    if not text.strip():
        raise TemplateError("A text block needs the text its shortcut expands to.")
    if len(text) > MAX_BLOCK:
        raise TemplateError(f"Keep a text block under {MAX_BLOCK} characters.")
    return {"shortcut": shortcut, "text": text}


def create_block(
    *, owner: Owner, actor: audit.Actor, data: Mapping[str, Any], now: datetime | None = None
) -> TextBlock:
    now = now or timezone.now()
    cleaned = clean_block(data)
    try:
        with transaction.atomic():
            block = TextBlock.objects.create(
                **_owner_fields(owner), **cleaned, created_at=now, updated_at=now
            )
            _record(actor, block, "create")
    except IntegrityError:
        raise TemplateError(
            f"The shortcut {cleaned['shortcut']} is already taken here: choose another."
        ) from None
    return block


def update_block(
    *, block: TextBlock, actor: audit.Actor, data: Mapping[str, Any], now: datetime | None = None
) -> TextBlock:
    cleaned = clean_block(data)
    block.shortcut, block.text = cleaned["shortcut"], cleaned["text"]
    block.updated_at = now or timezone.now()
    try:
        with transaction.atomic():
            block.save()
            _record(actor, block, "edit")
    except IntegrityError:
        raise TemplateError(
            f"The shortcut {cleaned['shortcut']} is already taken here: choose another."
        ) from None
    return block


def set_block_active(
    *, block: TextBlock, actor: audit.Actor, active: bool, now: datetime | None = None
) -> TextBlock:
    if block.is_active != active:
        block.is_active = active
        block.updated_at = now or timezone.now()
        with transaction.atomic():
            block.save(update_fields=["is_active", "updated_at"])
            _record(actor, block, "activate" if active else "deactivate")
    return block


# ---------------------------------------------------------------------------------------------
# MRRT import
# ---------------------------------------------------------------------------------------------


def import_template(
    *,
    owner: Tenant | ReadingGroup,
    user: User,
    actor: audit.Actor,
    data: bytes,
    overrides: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ReportTemplate:
    """A new template from an IHE MRRT / RSNA RadReport HTML file. ``overrides`` (name,
    modality, body part, when given) replace what the file says."""
    try:
        imported = mrrt.read_template(data)
    except mrrt.NotATemplate as error:
        raise TemplateError(str(error)) from None
    fields = imported.as_data()
    fields.update({k: v for k, v in (overrides or {}).items() if v and k in fields})
    return create_template(
        owner=owner, user=user, actor=actor, data=fields, now=now, change="import"
    )
