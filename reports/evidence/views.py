"""The evidence panel of the reading room and its API: the study's measurements and candidate
key images, to insert into the report. Both answer 404 for an item the caller may not see, and
both audit what they showed (EVIDENCE_VIEW: the item and the counts, never values)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit
from tenants.models import AuditAction, User
from worklists import services as worklist
from worklists.models import WorkItem

from .services import StudyEvidence, study_evidence


def _evidence(user: User, item_id: int, actor: audit.Actor) -> tuple[WorkItem, StudyEvidence]:
    item = worklist.visible_item(user, item_id)  # NotVisible for anything not the user's
    found = study_evidence(item)
    worklist._record(
        AuditAction.EVIDENCE_VIEW, item, actor,
        measurements=len(found.measurements), key_images=len(found.candidates),
        unreadable=found.unreadable,
    )  # fmt: skip
    return item, found


@login_required
@require_GET
def panel(request: HttpRequest, item_id: int) -> HttpResponse:
    user = cast(User, request.user)
    actor = audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR"))
    try:
        item, found = _evidence(user, item_id, actor)
    except worklist.NotVisible:
        raise Http404("No such work item.") from None
    return render(request, "reports/evidence/panel.html", {"item": item, "evidence": found})


class ImageSerializer(serializers.Serializer):
    series = serializers.CharField(help_text="Series Instance UID")
    instance = serializers.CharField(help_text="SOP Instance UID")
    frame = serializers.IntegerField(min_value=1)
    series_number = serializers.IntegerField(allow_null=True)
    instance_number = serializers.IntegerField(allow_null=True)
    modality = serializers.CharField()
    where = serializers.CharField(help_text='How a report names it: "series 3, image 150".')
    thumbnail = serializers.CharField(help_text="DICOMweb rendered thumbnail of the frame.")


class MeasurementSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The measurement\'s concept, e.g. "Length".')
    value = serializers.CharField(help_text="The value as a decimal string.")
    unit = serializers.CharField(help_text='UCUM code where the SR used UCUM, e.g. "mm".')
    label = serializers.CharField(help_text="The tracking identifier given in the viewer.")
    text = serializers.CharField(help_text="The sentence the editor inserts into the findings.")
    image = ImageSerializer(allow_null=True)


class EvidenceSerializer(serializers.Serializer):
    measurements = MeasurementSerializer(many=True)
    key_image_candidates = ImageSerializer(many=True)
    unreadable_documents = serializers.IntegerField(
        help_text="SR or KOS documents of the study that could not be read."
    )


def _image(image: Any) -> dict[str, Any] | None:
    if image is None:
        return None
    return {
        "series": image.series,
        "instance": image.instance,
        "frame": image.frame,
        "series_number": image.series_number,
        "instance_number": image.instance_number,
        "modality": image.modality,
        "where": image.where(),
        "thumbnail": image.thumbnail,
    }


class ItemEvidence(APIView):
    """Measurements saved into the item's study (DICOM SR, TID 1500) and its candidate key
    images (those the measurements were drawn on, and those Key Object Selections name)."""

    @extend_schema(
        responses={200: EvidenceSerializer, 404: OpenApiResponse(description="No such item.")}
    )
    def get(self, request: Request, item_id: int) -> Response:
        user = cast(User, request.user)
        actor = audit.Actor.for_user(
            user, token=getattr(request, "auth", None), address=request.META.get("REMOTE_ADDR")
        )
        try:
            _, found = _evidence(user, item_id, actor)
        except worklist.NotVisible:
            raise NotFound("No such work item.") from None
        data = {
            "measurements": [
                {
                    "name": m.name,
                    "value": m.value,
                    "unit": m.unit,
                    "label": m.label,
                    "text": m.text(),
                    "image": _image(m.image),
                }
                for m in found.measurements
            ],
            "key_image_candidates": [_image(c) for c in found.candidates],
            "unreadable_documents": found.unreadable,
        }
        return Response(EvidenceSerializer(data).data)
