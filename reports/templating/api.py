"""REST API of report templates, under /api/reports/templates/.

- ``items/<item_id>/``: the templates that fit a work item (best first) and its text blocks;
  404 for an item the caller may not see.
- ``<template_id>/``: one template with its sections and fields; 404 for another hospital's or
  another group's.
- ``<template_id>/fill/``: the template's sections with given field values, as the panel's
  "Insert into report" writes them (for programs that fill templates, e.g. dictation).
- ``<template_id>/export/``: the template as IHE MRRT HTML.

Templates hold no patient data, so reading them is not audited; changes are (``services``).
"""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reports.models import SECTIONS
from tenants.models import User
from worklists import services as worklist

from . import queries, syntax
from .models import ReportTemplate, TextBlock
from .views import mrrt_download

DETAIL = inline_serializer("TemplateErrorDetail", {"detail": serializers.CharField()})
NOT_FOUND = OpenApiResponse(DETAIL, description="No such template or item (or not yours).")


class OwnerSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["tenant", "group", "user"])
    id = serializers.IntegerField()
    name = serializers.CharField()


def _owner(obj: ReportTemplate | TextBlock) -> dict[str, Any]:
    if obj.tenant_id and obj.tenant is not None:
        return {"kind": "tenant", "id": obj.tenant_id, "name": obj.tenant.name}
    if obj.group_id and obj.group is not None:
        return {"kind": "group", "id": obj.group_id, "name": obj.group.name}
    return {"kind": "user", "id": getattr(obj, "owner_id", 0), "name": "own"}


class FieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["text", "number", "date", "time", "choice", "multi"],
        help_text="choice: pick one of options; multi: pick any of options.",
    )
    options = serializers.ListField(child=serializers.CharField())
    default = serializers.ListField(child=serializers.CharField())


class TemplateSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    modality = serializers.CharField(help_text="Blank: any modality.")
    body_part = serializers.CharField(help_text="Blank: any body part.")
    description = serializers.CharField()
    owner = OwnerSerializer()


class OfferedSerializer(TemplateSummarySerializer):
    fit = serializers.ChoiceField(
        choices=list(queries.FIT_LABELS.values()),
        help_text="What the template fits of the item; the list is ordered best fit first.",
    )


class SectionsSerializer(serializers.Serializer):
    clinical_information = serializers.CharField(allow_blank=True)
    technique = serializers.CharField(allow_blank=True)
    comparison = serializers.CharField(allow_blank=True)
    findings = serializers.CharField(allow_blank=True)
    impression = serializers.CharField(allow_blank=True)


class TemplateSerializer(TemplateSummarySerializer):
    is_active = serializers.BooleanField()
    sections = SectionsSerializer(
        help_text="Text with fields written inline: [[name]], [[name:number]], [[side:left|right]]."
    )
    fields = FieldSerializer(many=True)


class TextBlockSerializer(serializers.Serializer):
    shortcut = serializers.CharField()
    text = serializers.CharField()
    owner = OwnerSerializer()


class ItemTemplatesSerializer(serializers.Serializer):
    templates = OfferedSerializer(many=True)
    text_blocks = TextBlockSerializer(many=True)


def _summary(template: ReportTemplate) -> dict[str, Any]:
    return {
        "id": template.pk,
        "name": template.name,
        "modality": template.modality,
        "body_part": template.body_part,
        "description": template.description,
        "owner": _owner(template),
    }


class TemplatesAPIView(APIView):
    @property
    def user(self) -> User:
        return cast(User, self.request.user)

    def visible(self, template_id: int) -> ReportTemplate:
        try:
            return queries.visible_template(self.user, template_id)
        except queries.NotFound:
            raise NotFound("No such template.") from None


class ItemTemplates(TemplatesAPIView):
    """The templates that fit a work item, best first, and the text blocks for it."""

    @extend_schema(responses={200: ItemTemplatesSerializer, 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        try:
            item = worklist.visible_item(self.user, item_id)
        except worklist.NotVisible:
            raise NotFound("No such work item.") from None
        templates = [
            {**_summary(o.template), "fit": o.fit_label}
            for o in queries.templates_for(item, self.user)
        ]
        blocks = [
            {"shortcut": b.shortcut, "text": b.text, "owner": _owner(b)}
            for b in queries.text_blocks_for(item, self.user)
        ]
        return Response({"templates": templates, "text_blocks": blocks})


class TemplateDetail(TemplatesAPIView):
    """One template: its sections as written and the fields they hold."""

    @extend_schema(responses={200: TemplateSerializer, 404: NOT_FOUND})
    def get(self, request: Request, template_id: int) -> Response:
        template = self.visible(template_id)
        sections = template.sections()
        return Response(
            {
                **_summary(template),
                "is_active": template.is_active,
                "sections": {s: sections[s] for s in SECTIONS},
                "fields": [f.as_dict() for f in syntax.fields_of(sections)],
            }
        )


class FillSerializer(serializers.Serializer):
    values = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Field name → text, or a list of texts for a pick-several list. A field left "
        "out takes its default, or *** when it has none.",
    )

    def validate_values(self, values: dict[str, Any]) -> dict[str, Any]:
        for name, value in values.items():
            if isinstance(value, str):
                continue
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                continue
            raise serializers.ValidationError(f"The value of {name} is text or a list of texts.")
        return values


class TemplateFill(TemplatesAPIView):
    """The template's sections filled with the given values."""

    @extend_schema(
        request=FillSerializer,
        responses={
            200: inline_serializer("FilledTemplate", {"sections": SectionsSerializer()}),
            400: OpenApiResponse(DETAIL, description="A value that is not text, or no such field."),
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, template_id: int) -> Response:
        template = self.visible(template_id)
        body = FillSerializer(data=request.data)
        if not body.is_valid():
            errors = body.errors.get("values", ['Send the field values as {"values": {…}}.'])
            return Response({"detail": " ".join(str(e) for e in errors)}, status=400)
        values = body.validated_data["values"]
        sections = template.sections()
        known = {f.name for f in syntax.fields_of(sections)}
        unknown = sorted(set(values) - known)
        if unknown:
            return Response(
                {"detail": f"This template has no field named {', '.join(unknown)}."}, status=400
            )
        return Response({"sections": {s: syntax.fill(sections[s], values) for s in SECTIONS}})


class TemplateExport(TemplatesAPIView):
    """The template as an IHE MRRT (RSNA RadReport) HTML5 document."""

    @extend_schema(
        responses={
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="MRRT HTML."),
            404: NOT_FOUND,
        }
    )
    def get(self, request: Request, template_id: int) -> HttpResponse:
        return mrrt_download(self.visible(template_id))
