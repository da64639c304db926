"""REST API of reports, under /api/reports/: a work item's report, its draft, signing, changes
and co-sign (``review/``). Token or session auth, like the worklist's API.

A work item is reached through ``worklists.services.visible_item`` (404 for what is missing or
someone else's); a review request through ``review.services.visible_request``. Errors are the
services' own, with their HTTP status (``DetailErrors``). A draft save names the draft as the
caller last saw it (``If-Match``: its ETag), so a second tab cannot silently overwrite the
first: 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.models import AuditAction, Tenant, User
from worklists.api import BAD_REQUEST, FORBIDDEN, NOT_FOUND, WorklistAPIView, _body
from worklists.models import WorkItem
from worklists.serializers import DetailSerializer

from . import services
from .models import FHIR_STATUS, HL7_OBR25, Report, ReportVersion, ReviewPolicy, Status
from .review import services as review
from .serializers import (
    ChangeSerializer,
    DraftSerializer,
    FinaliseSerializer,
    PolicySerializer,
    ReportSerializer,
    ReturnSerializer,
    ReviewAskSerializer,
    ReviewRequestDetailSerializer,
    ReviewRequestSerializer,
    SignSerializer,
    ValidateSerializer,
    VersionSerializer,
    etag_of,
    person,
)

CONFLICT = OpenApiResponse(
    DetailSerializer, description="Not a step the report can take now, or changed meanwhile."
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The draft's ETag as you last saw it; a save over a newer draft is refused "
    "with 409. Leave it out to save regardless.",
)


# ---------------------------------------------------------------------------------------------
# The report's state, for the API and for the reading room page
# ---------------------------------------------------------------------------------------------


def report_state(user: User, item: WorkItem, report: Report | None) -> dict[str, Any]:
    """Everything the editor needs: signed versions, the caller's draft, the open review, and
    whether the caller's preliminary needs validation. A few queries, whatever the history."""
    versions: list[ReportVersion] = []
    if report is not None:
        versions = list(report.versions.select_related("author", "signed_by").order_by("number"))
    signed = [v for v in versions if v.is_signed]
    draft = next((v for v in versions if not v.is_signed), None)
    numbers = {v.pk: v.number for v in versions}
    context = {"numbers": numbers}
    latest = signed[-1] if signed else None
    report_status = latest.report_status() if latest else (draft.report_status() if draft else None)
    open_review = review.open_request_of(report) if report is not None else None
    mine = draft is not None and draft.author_id == user.pk
    return {
        "item": item.pk,
        "report": report.pk if report else None,
        "status": report_status,
        "hl7_obr25": HL7_OBR25.get(report_status) if report_status else None,  # type: ignore[call-overload]
        "fhir_status": FHIR_STATUS.get(report_status) if report_status else None,  # type: ignore[call-overload]
        "current": VersionSerializer(latest, context=context).data if latest else None,
        "draft": VersionSerializer(draft, context=context).data if mine else None,
        "draft_by_other": person(draft.author) if draft is not None and not mine else None,
        "versions": VersionSerializer(signed, many=True, context=context).data,
        "review": ReviewRequestSerializer(open_review).data if open_review else None,
        "needs_validation": ReviewPolicy.validation_required(item.tenant_id, user),
        "reviewers": [person(u) for u in review.reviewers_of(item.tenant) if u.pk != user.pk],
    }


def _if_match(request: Request) -> datetime | None:
    raw = request.headers.get("If-Match", "").strip()
    if not raw or raw == "*":
        return None
    raw = raw.removeprefix("W/").strip('"')
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise services.ReportError(
            "If-Match must be the draft's ETag as the API gave it; reload the report."
        ) from None


class ReportAPIView(WorklistAPIView):
    def item_report(self, item_id: int) -> tuple[WorkItem, Report | None]:
        return services.item_report(self.user, item_id, actor=self.actor())

    def state(self, item_id: int, code: int = status.HTTP_200_OK) -> Response:
        item, report = self.item_report(item_id)
        data = report_state(self.user, item, report)
        response = Response(data, status=code)
        if data["draft"]:
            response["ETag"] = data["draft"]["etag"]
        return response

    def existing(self, item_id: int) -> Report:
        item, report = self.item_report(item_id)
        if report is None:
            raise services.NotFound("This study has no report yet.")
        return report

    def draft_of(self, report: Report) -> ReportVersion:
        draft = report.versions.filter(status=Status.DRAFT).first()
        if draft is None:
            raise services.IllegalTransition("This report has no draft to sign or discard.")
        return draft


class ItemReport(ReportAPIView):
    @extend_schema(responses={200: ReportSerializer, 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        """The report of a work item: its signed versions (history), your draft, its status as
        HL7 OBR-25 and FHIR DiagnosticReport.status, and the open review request."""
        return self.state(item_id)


class ItemDraft(ReportAPIView):
    def _save(self, request: Request, item_id: int) -> Response:
        item, _report = self.item_report(item_id)
        body = _body(DraftSerializer, request)
        key_images = body.pop("key_images", None)
        expected = _if_match(request)
        draft = services.save_draft(
            item=item,
            user=self.user,
            actor=self.actor(),
            sections=body,
            key_images=key_images,
            if_unchanged_since=expected,
        )
        response = Response(VersionSerializer(draft).data)
        response["ETag"] = etag_of(draft)
        return response

    @extend_schema(
        parameters=[IF_MATCH],
        request=DraftSerializer,
        responses={
            200: VersionSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def put(self, request: Request, item_id: int) -> Response:
        """Save the draft (autosave): the sections given, and the key images if given. The first
        save starts the report and needs your claim on the item."""
        return self._save(request, item_id)

    @extend_schema(
        parameters=[IF_MATCH],
        request=DraftSerializer,
        responses={
            200: VersionSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def patch(self, request: Request, item_id: int) -> Response:
        """Save some sections of the draft; the others stay as they are."""
        return self._save(request, item_id)

    @extend_schema(
        request=None,
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def delete(self, request: Request, item_id: int) -> Response:
        """Throw your unsigned draft away."""
        report = self.existing(item_id)
        services.discard_draft(version=self.draft_of(report), user=self.user, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


STATE_RESPONSES = {
    200: ReportSerializer,
    400: BAD_REQUEST,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
}


class ItemSign(ReportAPIView):
    @extend_schema(request=SignSerializer, responses=STATE_RESPONSES)
    def post(self, request: Request, item_id: int) -> Response:
        """Sign your draft as preliminary or final, with your password (step-up). A preliminary
        may go straight to a hospital radiologist for validation (send_for_review)."""
        report = self.existing(item_id)
        body = _body(SignSerializer, request)
        reviewer = None
        if body["send_for_review"]:
            if body["status"] != Status.PRELIMINARY:
                raise services.ReportError("Only a preliminary report is sent for review.")
            # Checked before signing, so that a wrong name does not leave a signed orphan.
            reviewer = review.reviewer_named(report.tenant, body.get("reviewer"))
        version = services.sign(
            version=self.draft_of(report),
            user=self.user,
            actor=self.actor(),
            status=body["status"],
            password=body["password"],
            mfa_code=body.get("mfa_code") or None,
        )
        if body["send_for_review"]:
            review.request_review(
                version=version,
                user=self.user,
                actor=self.actor(),
                reviewer=reviewer,
                message=body.get("message", ""),
            )
        return self.state(item_id)


class ItemFinalise(ReportAPIView):
    @extend_schema(request=FinaliseSerializer, responses=STATE_RESPONSES)
    def post(self, request: Request, item_id: int) -> Response:
        """Make your preliminary final (a new version; the preliminary stays)."""
        report = self.existing(item_id)
        body = _body(FinaliseSerializer, request)
        latest = services.current(report)
        if latest is None:
            raise services.IllegalTransition("Only a preliminary report can be finalised.")
        services.finalise(
            preliminary=latest,
            user=self.user,
            actor=self.actor(),
            password=body["password"],
            mfa_code=body.get("mfa_code") or None,
            sections=body.get("sections"),
        )
        return self.state(item_id)


class ItemChange(ReportAPIView):
    @extend_schema(request=ChangeSerializer, responses={**STATE_RESPONSES, 201: ReportSerializer})
    def post(self, request: Request, item_id: int) -> Response:
        """Start an addendum or a correction of the final report, as a draft."""
        report = self.existing(item_id)
        body = _body(ChangeSerializer, request)
        services.start_change(report=report, user=self.user, actor=self.actor(), kind=body["kind"])
        return self.state(item_id, status.HTTP_201_CREATED)


class ItemRevise(ReportAPIView):
    @extend_schema(request=None, responses={**STATE_RESPONSES, 201: ReportSerializer})
    def post(self, request: Request, item_id: int) -> Response:
        """Revise your preliminary (e.g. returned by its validator): a new draft from its text."""
        report = self.existing(item_id)
        services.start_revision(report=report, user=self.user, actor=self.actor())
        return self.state(item_id, status.HTTP_201_CREATED)


class ItemReview(ReportAPIView):
    @extend_schema(
        request=ReviewAskSerializer, responses={**STATE_RESPONSES, 201: ReportSerializer}
    )
    def post(self, request: Request, item_id: int) -> Response:
        """Send the current preliminary to a hospital radiologist (or to all of them) to
        validate."""
        report = self.existing(item_id)
        body = _body(ReviewAskSerializer, request)
        latest = services.current(report)
        if latest is None:
            raise services.IllegalTransition("Only a signed preliminary can be validated.")
        review.request_review(
            version=latest,
            user=self.user,
            actor=self.actor(),
            reviewer=review.reviewer_named(report.tenant, body.get("reviewer")),
            message=body.get("message", ""),
        )
        return self.state(item_id, status.HTTP_201_CREATED)


# ---------------------------------------------------------------------------------------------
# Co-sign: the validator's side
# ---------------------------------------------------------------------------------------------

REVIEW_NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such review request.")


class ReviewQueue(WorklistAPIView):
    pagination_class = None

    @extend_schema(responses={200: ReviewRequestSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Open requests you may validate: named to you, or to any radiologist of your
        hospital."""
        waiting = review.queue(self.user)
        review.audit_listed(waiting, self.actor(), "review queue api")
        return Response(ReviewRequestSerializer(waiting, many=True).data)


class ReviewDetail(WorklistAPIView):
    @extend_schema(responses={200: ReviewRequestDetailSerializer, 404: REVIEW_NOT_FOUND})
    def get(self, request: Request, request_id: int) -> Response:
        """One request with the preliminary's text (audited as a view of the report)."""
        found = review.visible_request(self.user, request_id)
        services._record(
            AuditAction.REPORT_VIEW, found.report, found.report.work_item, self.actor(),
            review=found.pk,
        )  # fmt: skip
        return Response(ReviewRequestDetailSerializer(found).data)


DECISION_RESPONSES = {
    200: ReviewRequestSerializer,
    400: BAD_REQUEST,
    403: FORBIDDEN,
    404: REVIEW_NOT_FOUND,
    409: CONFLICT,
}


class ReviewValidate(WorklistAPIView):
    @extend_schema(request=ValidateSerializer, responses=DECISION_RESPONSES)
    def post(self, request: Request, request_id: int) -> Response:
        """Validate the preliminary to final, with your password: a new final version signed by
        you; the author stays the author. The work item is completed."""
        found = review.visible_request(self.user, request_id)
        body = _body(ValidateSerializer, request)
        review.validate(
            request=found,
            user=self.user,
            actor=self.actor(),
            password=body["password"],
            mfa_code=body.get("mfa_code") or None,
            sections=body.get("sections"),
            comments=body.get("comments", ""),
        )
        found.refresh_from_db()
        return Response(ReviewRequestSerializer(found).data)


class ReviewReturn(WorklistAPIView):
    @extend_schema(request=ReturnSerializer, responses=DECISION_RESPONSES)
    def post(self, request: Request, request_id: int) -> Response:
        """Return the preliminary to its author with what to change."""
        found = review.visible_request(self.user, request_id)
        body = _body(ReturnSerializer, request)
        review.return_to_author(
            request=found, user=self.user, actor=self.actor(), comments=body["comments"]
        )
        return Response(ReviewRequestSerializer(found).data)


class ReviewCancel(WorklistAPIView):
    @extend_schema(request=None, responses=DECISION_RESPONSES)
    def post(self, request: Request, request_id: int) -> Response:
        """Take your request back (its author only)."""
        found = review.visible_request(self.user, request_id)
        review.cancel(request=found, user=self.user, actor=self.actor())
        return Response(ReviewRequestSerializer(found).data)


class ReviewPolicyDetail(WorklistAPIView):
    def _tenant(self, slug: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug, is_active=True).first()
        if tenant is None or not review.is_tenant_admin(self.user, tenant):
            raise Http404
        return tenant

    @extend_schema(responses={200: PolicySerializer, 404: NOT_FOUND})
    def get(self, request: Request, tenant_slug: str) -> Response:
        """Whether the hospital's radiologists validate the reading groups' preliminaries
        (its admins only)."""
        tenant = self._tenant(tenant_slug)
        policy = review.policy_of(tenant)
        return Response(
            {"hospital": tenant.name, "requires_validation": policy.requires_validation}
        )

    @extend_schema(request=PolicySerializer, responses={200: PolicySerializer, 404: NOT_FOUND})
    def put(self, request: Request, tenant_slug: str) -> Response:
        """Set the hospital's validation rule (its admins only)."""
        tenant = self._tenant(tenant_slug)
        body = _body(PolicySerializer, request)
        policy = review.set_policy(
            tenant=tenant,
            user=self.user,
            actor=self.actor(),
            requires_validation=body["requires_validation"],
        )
        return Response(
            {"hospital": tenant.name, "requires_validation": policy.requires_validation}
        )
