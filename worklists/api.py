"""REST API of the reading worklist, under /api/worklist/.

There is no tenant in these URLs: a worklist spans every hospital a radiologist reads for. The
scoping is the caller's coverage (``eligibility``), applied by ``queries.worklist`` for lists and
by ``services.visible_item`` for one item, which answers 404 both for a missing item and for one
the caller may neither read nor manage. Views parse, call one service or query, serialize.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import audit, rls, tokens
from tenants.models import (
    AuditAction,
    Membership,
    ReadingAgreement,
    ReadingGroup,
    Role,
    Tenant,
    User,
)
from tenants.usage import metrics as usage_metrics

from . import eligibility, metrics, queries, services
from .models import SavedView, WorkItem
from .serializers import (
    ClaimedSerializer,
    ConflictSerializer,
    DetailSerializer,
    LeaseExpirySerializer,
    LeaseSerializer,
    LicenceSerializer,
    MetricsSerializer,
    PriorityChangeSerializer,
    PriorSerializer,
    PrivilegeSerializer,
    ReasonSerializer,
    ReassignSerializer,
    SavedViewSerializer,
    ViewCountSerializer,
    WorkItemDetailSerializer,
    WorkItemSerializer,
    person,
)

NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such work item (or not yours).")
BAD_REQUEST = OpenApiResponse(DetailSerializer, description="A value that cannot be used.")
FORBIDDEN = OpenApiResponse(DetailSerializer, description="Visible, but not yours to change.")
CONFLICT = OpenApiResponse(ConflictSerializer, description="Someone else holds the item.")


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes tenants.auth's bearer tokens to the schema (registered on import; it lives here
    because this module is the first to need it without warnings)."""

    target_class = "tenants.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "sky_<prefix>_<secret>"}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else f"{key}: "
            out += _flatten(value, prefix + name)
        return out
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value, prefix)]
    return [f"{prefix}{detail}"]


class DetailErrors:
    """Errors as ``{"detail": ...}``: services' WorklistError with its status, validation errors
    flattened to one sentence (field errors also under ``errors``)."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.Conflict):
            return Response(
                {"detail": str(exc), "holder": person(exc.holder), "since": exc.since},
                status=exc.status,
            )
        if isinstance(exc, services.WorklistError):
            return Response({"detail": str(exc)}, status=exc.status)
        if isinstance(exc, queries.FilterError):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, ValidationError):
            response.data = {"detail": " ".join(_flatten(exc.detail)), "errors": exc.detail}
        return response


class WorklistAPIView(DetailErrors, APIView):
    """An API view whose scope is the caller's coverage (no tenant in the URL)."""

    def actor(self) -> audit.Actor:
        return audit.Actor.for_user(
            self.request.user,
            token=getattr(self.request, "auth", None),
            address=self.request.META.get("REMOTE_ADDR"),
        )

    @property
    def user(self) -> User:
        return self.request.user


def _body(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# ---------------------------------------------------------------------------------------------
# The list
# ---------------------------------------------------------------------------------------------


def filters_from(user: User, params: Any) -> tuple[queries.Filters, list[str]]:
    """Filters from query parameters over a saved view's (``view=<id>``), and the keys used."""
    merged: dict[str, Any] = {}
    used: list[str] = []
    view_id = str(params.get("view", "") or "").strip()
    if view_id:
        if not view_id.isdigit():
            raise queries.FilterError("view is the id of a saved view, e.g. view=3.")
        view = queries.saved_views(user).filter(pk=int(view_id)).first()
        if view is None:
            raise NotFound("No such saved view.")
        merged.update({k: v for k, v in view.filters.items() if k in queries.FILTER_KEYS})
        used.append("view")
    for key in queries.FILTER_KEYS:
        value = params.get(key)
        if value not in (None, ""):
            merged[key] = value
    used += sorted(k for k in merged if merged[k] not in (None, "", False))
    return queries.Filters.parse(merged), used


ITEM_FILTERS = [
    OpenApiParameter("tenant", str, description="Hospital slug."),
    OpenApiParameter("priority", str, description="Priority class code (stat, urgent, …)."),
    OpenApiParameter("modality", str),
    OpenApiParameter("subspecialty", str),
    OpenApiParameter(
        "state", str, enum=["scheduled", "in_progress", "mine", "completed", "canceled"]
    ),
    OpenApiParameter("q", str, description="Patient name, patient ID or accession number."),
    OpenApiParameter("overdue", str, description="1: only items past their SLA deadline."),
    OpenApiParameter("due_within", int, description="Minutes."),
    OpenApiParameter("sort", str, enum=list(queries.SORTS)),
    OpenApiParameter("view", int, description="A saved view; explicit parameters override it."),
]


class ItemList(WorklistAPIView):
    """The caller's worklist: open items they may read, most urgent first."""

    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=ITEM_FILTERS,
        responses={200: WorkItemSerializer(many=True), 400: BAD_REQUEST},
    )
    @usage_metrics.timed_worklist("api")
    def get(self, request: Request) -> Response:
        now = timezone.now()
        filters, used = filters_from(self.user, request.query_params)
        items = queries.worklist(self.user, filters, now=now)
        paginator = self.pagination_class()
        # The page's ids first, then their rows (queries.rows explains why).
        ids = paginator.paginate_queryset(items.values_list("id", flat=True), request, view=self)
        page = queries.rows(list(ids or []))
        by_tenant: dict[int, list[int]] = defaultdict(list)
        tenants: dict[int, Tenant] = {}
        for item in page:
            by_tenant[item.tenant_id].append(item.pk)
            tenants[item.tenant_id] = item.tenant
        actor = self.actor()
        # Filter keys only: a q value can be a patient's name.
        audit.record_many(
            audit.build(
                action=AuditAction.WORKLIST_LIST,
                actor=actor,
                tenant=tenants[tenant_id],
                detail={"items": ids, "filters": used},
            )
            for tenant_id, ids in by_tenant.items()
        )
        data = WorkItemSerializer(page, many=True, context={"now": now}).data
        return paginator.get_paginated_response(data)


# ---------------------------------------------------------------------------------------------
# One item and what can be done with it
# ---------------------------------------------------------------------------------------------


def _item(user: User, item_id: int) -> WorkItem:
    return services.visible_item(user, item_id)


def _item_data(item: WorkItem) -> dict[str, Any]:
    return dict(WorkItemSerializer(item, context={"now": timezone.now()}).data)


class ItemDetail(WorklistAPIView):
    @extend_schema(responses={200: WorkItemDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        """One item with its priors; for its managers, who can read it and why others cannot."""
        item = _item(self.user, item_id)
        data = _item_data(item)
        priors = item.priors.select_related("study").order_by("rank")
        data["priors"] = PriorSerializer(priors, many=True).data
        data["can_manage"] = services.can_manage(self.user, item)
        if data["can_manage"]:
            data["readers"] = [
                {
                    **(person(v.user) or {}),
                    "via": v.via,
                    "can_read": v.can_read,
                    "reasons": v.reasons,
                }
                for v in eligibility.explain(item)
            ]
        audit.record(
            action=AuditAction.ITEM_VIEW,
            actor=self.actor(),
            tenant=item.tenant,
            study_instance_uid=item.study.study_instance_uid,
            patient_ref=item.patient_id,
            detail={"item": item.pk},
        )
        return Response(data)


class ItemClaim(WorklistAPIView):
    @extend_schema(
        request=None,
        responses={200: ClaimedSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    @usage_metrics.counts_claims("api")
    def post(self, request: Request, item_id: int) -> Response:
        """Take the item for reading under a lease; keep it with heartbeats."""
        item = services.claim(_item(self.user, item_id), self.user, self.actor())
        return Response({**_item_data(item), "lease_token": str(item.lease_token)})


class ItemHeartbeat(WorklistAPIView):
    @extend_schema(
        request=LeaseSerializer,
        responses={200: LeaseExpirySerializer, 400: BAD_REQUEST, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, item_id: int) -> Response:
        """Extend your lease. 409 when it ran out and someone else took the item."""
        token = _body(LeaseSerializer, request)["lease_token"]
        item = _item(self.user, item_id)
        try:
            item = services.heartbeat(item, self.user, token)
        except services.Conflict:
            audit.record(
                action=AuditAction.ITEM_HEARTBEAT_LOST,
                actor=self.actor(),
                tenant=item.tenant,
                outcome="failure",
                study_instance_uid=item.study.study_instance_uid,
                patient_ref=item.patient_id,
                detail={"item": item.pk},
            )
            raise
        return Response({"lease_expires_at": item.lease_expires_at})


def _action(
    summary: str, request_body: type | None, call: Any, *, conflict: bool = False
) -> type[WorklistAPIView]:
    """A POST that runs one service on a visible item and answers with the item."""
    responses: dict[int, Any] = {
        200: WorkItemSerializer,
        400: BAD_REQUEST,
        403: FORBIDDEN,
        404: NOT_FOUND,
    }
    if conflict:
        responses[409] = CONFLICT

    class ItemAction(WorklistAPIView):
        @extend_schema(summary=summary, request=request_body, responses=responses)
        def post(self, request: Request, item_id: int) -> Response:
            body = _body(request_body, request) if request_body else {}
            item = _item(self.user, item_id)
            item = call(item, self.user, self.actor(), **body)
            return Response(_item_data(item))

    return ItemAction


def _reassign(item: WorkItem, user: User, actor: audit.Actor, *, to: str, reason: str) -> WorkItem:
    if not services.can_manage(user, item):
        raise services.NotAllowed("Only an admin can reassign a study.")
    to_user = User.objects.filter(username=to, is_active=True).first()
    if to_user is None:
        raise services.WorklistError("No such radiologist.")
    return services.reassign(item, user, to_user, actor, reason=reason)


def _priority(
    item: WorkItem, user: User, actor: audit.Actor, *, code: str, clinical_question: str | None
) -> WorkItem:
    return services.set_priority(item, user, actor, code=code, clinical_question=clinical_question)


ItemRelease = _action(
    "Give the item back (an admin releasing someone else's claim says why).",
    ReasonSerializer,
    lambda item, user, actor, reason: services.release(item, user, actor, reason=reason),
)
ItemReassign = _action(
    "Move the item to another eligible radiologist (admins).", ReassignSerializer, _reassign
)
ItemDecline = _action(
    "Turn down an item assigned to you.",
    ReasonSerializer,
    lambda item, user, actor, reason: services.decline(item, user, actor, reason=reason),
)
ItemPause = _action(
    "Pause the SLA clock (holder or admin).",
    ReasonSerializer,
    lambda item, user, actor, reason: services.pause_sla(item, user, actor, reason=reason),
    conflict=True,
)
ItemResume = _action(
    "Resume the SLA clock; the deadline moves by the time paused.",
    None,
    lambda item, user, actor: services.resume_sla(item, user, actor),
    conflict=True,
)
ItemPriority = _action(
    "Change the priority class; the deadline follows from arrival (admins).",
    PriorityChangeSerializer,
    _priority,
)
ItemCancel = _action(
    "Cancel the item (admins).",
    ReasonSerializer,
    lambda item, user, actor, reason: services.cancel(item, user, actor, reason=reason),
)
for _view, _name in (
    (ItemRelease, "ItemRelease"),
    (ItemReassign, "ItemReassign"),
    (ItemDecline, "ItemDecline"),
    (ItemPause, "ItemPause"),
    (ItemResume, "ItemResume"),
    (ItemPriority, "ItemPriority"),
    (ItemCancel, "ItemCancel"),
):
    _view.__name__ = _view.__qualname__ = _name


# ---------------------------------------------------------------------------------------------
# Saved views
# ---------------------------------------------------------------------------------------------


def _view_data(view: SavedView, user: User, admin_groups: set[int]) -> dict[str, Any]:
    return {
        "id": view.pk,
        "name": view.name,
        "filters": view.filters,
        "group": view.group.slug if view.group else None,
        "owner": user.get_username() if view.owner_id == user.pk else None,
        "can_delete": view.owner_id == user.pk or view.group_id in admin_groups,
    }


def _admin_groups(user: User) -> set[int]:
    return set(
        Membership.objects.filter(
            user=user, role=Role.GROUP_ADMIN, group__isnull=False
        ).values_list("group_id", flat=True)
    )


class SavedViewList(WorklistAPIView):
    @extend_schema(responses={200: SavedViewSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Your own views and those shared with your reading groups."""
        admin_groups = _admin_groups(self.user)
        views = queries.saved_views(self.user)
        return Response([_view_data(v, self.user, admin_groups) for v in views])

    @extend_schema(
        request=SavedViewSerializer, responses={201: SavedViewSerializer, 400: BAD_REQUEST}
    )
    def post(self, request: Request) -> Response:
        """Save filters under a name: private, or shared with one of your reading groups."""
        body = _body(SavedViewSerializer, request)
        unknown = sorted(set(body["filters"]) - set(queries.FILTER_KEYS))
        if unknown:
            raise queries.FilterError(f"Unknown filter: {', '.join(unknown)}.")
        filters = queries.Filters.parse(body["filters"])
        group = None
        if body["group"]:
            group = ReadingGroup.objects.filter(
                slug=body["group"], memberships__user=self.user
            ).first()
            if group is None:
                raise ValidationError(
                    {"group": "You can share a view only with a reading group you belong to."}
                )
        view = SavedView.objects.create(
            owner=None if group else self.user,
            group=group,
            name=body["name"].strip(),
            filters=filters.as_dict(),
        )
        data = _view_data(view, self.user, _admin_groups(self.user))
        return Response(data, status=status.HTTP_201_CREATED)


class SavedViewDetail(WorklistAPIView):
    @extend_schema(responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND})
    def delete(self, request: Request, view_id: int) -> Response:
        """Delete your own view, or a group's view as that group's admin."""
        view = queries.saved_views(self.user).filter(pk=view_id).first()
        if view is None:
            raise NotFound("No such saved view.")
        if view.owner_id != self.user.pk and not (
            view.group and queries.is_group_admin(self.user, view.group)
        ):
            raise PermissionDenied("Only the group's admins can delete a shared view.")
        view.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedViewCounts(WorklistAPIView):
    @extend_schema(responses={200: ViewCountSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """How many items each of your saved views holds now (null: its filters are broken)."""
        views = list(queries.saved_views(self.user))
        counts = queries.view_counts(self.user, views)
        return Response([{"id": v.pk, "name": v.name, "count": counts.get(v.pk)} for v in views])


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class Metrics(WorklistAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("tenant", str, description="Hospital slug."),
            OpenApiParameter("priority", str, description="Priority class code."),
            OpenApiParameter("radiologist", str, description="Username of the reader."),
            OpenApiParameter("since", OpenApiTypes.DATE, description="Arrived on or after."),
        ],
        responses={200: MetricsSerializer, 400: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        """Turnaround (arrival to preliminary, arrival to final) of items you read or manage."""
        params = request.query_params
        items = tokens.within_scope(self.user, metrics.measurable_items(self.user))
        if params.get("since"):
            try:
                since = date.fromisoformat(params["since"])
            except ValueError:
                raise ValidationError(
                    {"since": "since is a date in the form YYYY-MM-DD, e.g. 2026-01-31."}
                ) from None
            start = timezone.make_aware(datetime.combine(since, datetime.min.time()))
            items = items.filter(arrived_at__gte=start)
        if params.get("tenant"):
            items = items.filter(tenant__slug=params["tenant"])
        if params.get("priority"):
            items = items.filter(priority__code=params["priority"])
        if params.get("radiologist"):
            items = items.filter(holder__username=params["radiologist"])
        return Response(
            {
                "by_tenant": metrics.turnaround(items, "tenant"),
                "by_priority": metrics.turnaround(items, "priority"),
                "by_radiologist": metrics.turnaround(items, "radiologist"),
            }
        )


# ---------------------------------------------------------------------------------------------
# Credentials: licences and privileges
# ---------------------------------------------------------------------------------------------


def _led_groups(user: User) -> list[int]:
    return list(
        Membership.objects.filter(
            user=user, role=Role.GROUP_ADMIN, group__isnull=False
        ).values_list("group_id", flat=True)
    )


def _radiologists_of_groups(group_ids: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(group_id__in=group_ids, role=Role.RADIOLOGIST)


def _admin_tenants(user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user, tenant__isnull=False, role=Role.TENANT_ADMIN)


def manageable_licences(user: User) -> Q:
    """Licences of radiologists of reading groups the user leads."""
    groups = _led_groups(user)
    return Q(user_id__in=_radiologists_of_groups(groups).values("user_id"))


def manageable_privileges(user: User) -> Q:
    """Privileges a group admin may manage (their radiologists, at hospitals the group has an
    agreement with), and those at a hospital the user administers."""
    q = Q(tenant_id__in=_admin_tenants(user).values("tenant_id"))
    for group_id in _led_groups(user):
        q |= Q(
            user_id__in=_radiologists_of_groups([group_id]).values("user_id"),
            tenant_id__in=ReadingAgreement.objects.filter(group_id=group_id).values("tenant_id"),
        )
    return q


def privilege_candidates(user: User) -> QuerySet[User]:
    """Radiologists the user may grant privileges to (at some hospital)."""
    admin_tenants = _admin_tenants(user).values("tenant_id")
    linked_groups = ReadingAgreement.objects.filter(tenant_id__in=admin_tenants).values("group_id")
    return User.objects.filter(
        Q(id__in=_radiologists_of_groups(_led_groups(user)).values("user_id"))
        | Q(id__in=_radiologists_of_groups(linked_groups).values("user_id"))
        | Q(
            id__in=Membership.objects.filter(
                tenant_id__in=admin_tenants, role=Role.RADIOLOGIST
            ).values("user_id")
        )
    )


class CredentialViewSet(
    DetailErrors,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Shared by licences and privileges: the caller's manageable rows plus their own (read-only);
    anything else is 404. Every change is audited without patient data."""

    kind = ""
    of_a_hospital = False  # rows with a tenant (privileges), which a scoped token narrows
    lookup_value_converter = "int"
    handle_exception = WorklistAPIView.handle_exception

    def manageable(self) -> Q:
        raise NotImplementedError

    def candidates(self) -> QuerySet[User]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Any]:
        model = self.get_serializer_class().Meta.model
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return model.objects.none()
        user = self.request.user
        rows = model.objects.filter(self.manageable() | Q(user=user))
        if self.of_a_hospital:  # a token kept to one hospital lists that hospital's rows only
            rows = tokens.within_scope(user, rows)
        return rows.select_related("user").order_by("user__username", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        model = self.get_serializer_class().Meta.model
        context["users"] = self.candidates()
        context["manageable_ids"] = set(
            model.objects.filter(self.manageable()).values_list("id", flat=True)
        )
        return context

    def check_manageable(self, obj: Any) -> None:
        model = type(obj)
        if not model.objects.filter(self.manageable(), pk=obj.pk).exists():
            raise PermissionDenied(f"You cannot manage this {self.kind}.")

    def record(self, obj: Any, change: str, fields: list[str] | None = None) -> None:
        detail: dict[str, Any] = {"kind": self.kind, "id": obj.pk, "user": obj.user_id}
        detail["change"] = change
        if fields:
            detail["fields"] = sorted(fields)
        audit.record(
            action=AuditAction.CREDENTIAL_CHANGE,
            actor=audit.Actor.for_user(
                self.request.user,
                token=getattr(self.request, "auth", None),
                address=self.request.META.get("REMOTE_ADDR"),
            ),
            tenant=getattr(obj, "tenant", None),
            detail=detail,
        )

    def perform_create(self, serializer: Any) -> None:
        try:
            with transaction.atomic():
                obj = serializer.save(**self.create_extra())
                self.check_manageable(obj)  # rolls back what the caller may not grant
                self.record(obj, "create")
        except DatabaseError as error:
            # A hospital outside the request's tenants: row-level security refused the row.
            if rls.is_violation(error):
                raise PermissionDenied(f"You cannot manage this {self.kind}.") from None
            raise

    def create_extra(self) -> dict[str, Any]:
        return {}

    def perform_update(self, serializer: Any) -> None:
        self.check_manageable(serializer.instance)
        for fixed in ("user", "tenant"):
            if fixed in serializer.validated_data and serializer.validated_data[fixed] != getattr(
                serializer.instance, fixed
            ):
                raise ValidationError({fixed: f"Cannot be changed; add a new {self.kind}."})
        with transaction.atomic():
            obj = serializer.save()
            self.record(obj, "update", list(serializer.validated_data))

    def perform_destroy(self, instance: Any) -> None:
        self.check_manageable(instance)
        with transaction.atomic():
            self.record(instance, "delete")
            instance.delete()


class LicenceViewSet(CredentialViewSet):
    """Licences to practise. Managed by the admins of the radiologist's reading groups."""

    serializer_class = LicenceSerializer
    kind = "licence"

    def manageable(self) -> Q:
        # A licence is a reading group's business, not one hospital's: a token kept to a
        # hospital manages none (its owner's own licences stay readable).
        if tokens.scope_of(self.request.user) is not None:
            return Q(pk__in=[])
        return manageable_licences(self.request.user)

    def candidates(self) -> QuerySet[User]:
        groups = _led_groups(self.request.user)
        return User.objects.filter(id__in=_radiologists_of_groups(groups).values("user_id"))


class PrivilegeViewSet(CredentialViewSet):
    """Privileges at a hospital. Managed by the radiologist's group admins (hospitals the group
    has an agreement with) and by the hospital's own admins."""

    serializer_class = PrivilegeSerializer
    kind = "privilege"
    of_a_hospital = True

    def manageable(self) -> Q:
        scope = tokens.scope_of(self.request.user)
        q = manageable_privileges(self.request.user)
        return q if scope is None else q & Q(tenant_id=scope)

    def candidates(self) -> QuerySet[User]:
        return privilege_candidates(self.request.user)

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().select_related("tenant", "granted_by")

    def create_extra(self) -> dict[str, Any]:
        return {"granted_by": self.request.user}
