"""The reading room's templates panel: the templates that fit the item, their fill-in forms, and
the text blocks for shortcut expansion, as one HTML fragment (templating.js does the rest).

The panel shows no patient data (only the item's modality and body part), so it writes no audit
row of its own; the room page that loads it audits the item's view.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reports.models import SECTIONS
from tenants.models import User
from worklists import services as worklist

from . import queries, syntax
from .models import ReportTemplate

log = logging.getLogger(__name__)

SECTION_LABELS = {
    "clinical_information": "Clinical information",
    "technique": "Technique",
    "comparison": "Comparison",
    "findings": "Findings",
    "impression": "Impression",
}


@dataclass
class TemplateForm:
    """One template as the panel offers it."""

    template: ReportTemplate
    fit_label: str
    fields: list[syntax.Field]
    data: dict[str, Any]  # for templating.js: name, section labels and segments


def template_form(template: ReportTemplate, fit_label: str = "") -> TemplateForm | None:
    """The template's form, or None for one whose text no longer parses (it is left out of
    the panel rather than breaking it; an admin sees the error when editing it)."""
    sections = template.sections()
    try:
        fields = syntax.fields_of(sections)
        segments = {s: syntax.segments_json(sections[s]) for s in SECTIONS if sections[s].strip()}
    except syntax.TemplateSyntaxError:
        log.warning("Template %s does not parse; left out of the panel.", template.pk)
        return None
    data = {
        "name": template.name,
        "labels": SECTION_LABELS,
        "sections": segments,
        "unfilled": syntax.UNFILLED,
    }
    return TemplateForm(template, fit_label, fields, data)


@login_required
@require_GET
def item_panel(request: HttpRequest, item_id: int) -> HttpResponse:
    user = cast(User, request.user)
    try:
        item = worklist.visible_item(user, item_id)
    except worklist.NotVisible:
        raise Http404("No such work item.") from None
    forms = [
        form
        for offered in queries.templates_for(item, user)
        if (form := template_form(offered.template, offered.fit_label)) is not None
    ]
    blocks = {b.shortcut: b.text for b in queries.text_blocks_for(item, user)}
    manages = (
        queries.administered_tenants(user).filter(pk=item.tenant_id).exists()
        or queries.administered_groups(user).exists()
    )
    return render(
        request,
        "reports/templating/panel.html",
        {
            "item": item,
            "forms": forms,
            "blocks": blocks,
            "manages": manages,
            "unfilled": syntax.UNFILLED,
        },
    )
