"""REST API of critical results, under /api/reports/critical/.

Like the worklist's API there is no tenant in the URLs: an item or a critical result the caller
may not see is 404, whoever's it is. Acknowledging by link needs no account (the token is the
key) and answers the same whether or not it had been acknowledged before.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import audit
from tenants.models import ActorType, AuditAction, Membership, Role, Tenant, User
from tenants.queries import readable_tenants
from worklists import services as worklist
from worklists.api import BAD_REQUEST, FORBIDDEN, WorklistAPIView, _body
from worklists.serializers import DetailSerializer

from . import services
from .models import Category, CommunicationMethod, CriticalResult

NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such item or critical result.")


class CommunicationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.ChoiceField(choices=CommunicationMethod.choices)
    recipient_name = serializers.CharField()
    recipient_role = serializers.CharField()
    recipient_username = serializers.CharField(allow_null=True)
    communicated_at = serializers.DateTimeField()
    communicated_by = serializers.CharField()
    note = serializers.CharField()


class CriticalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    tenant = serializers.CharField(help_text="The hospital's slug.")
    category = serializers.ChoiceField(choices=Category.choices)
    finding = serializers.CharField()
    recipient = serializers.CharField()
    flagged_by = serializers.CharField()
    flagged_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_name = serializers.CharField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    communications = CommunicationSerializer(many=True)


class FlagSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=Category.choices, help_text="ACR category 1-3.")
    finding = serializers.CharField(max_length=services.MAX_FINDING)
    recipient = serializers.CharField(max_length=200, required=False, allow_blank=True)


class CommunicateSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=CommunicationMethod.choices)
    recipient_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    recipient_role = serializers.CharField(max_length=100, required=False, allow_blank=True)
    recipient_username = serializers.CharField(max_length=150, required=False, allow_blank=True)
    recipient_contact = serializers.EmailField(required=False, allow_blank=True)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    confirmed = serializers.BooleanField(
        required=False, default=False, help_text="Phone or in person, read back: acknowledged."
    )


class CommunicatedSerializer(CommunicationSerializer):
    ack_url = serializers.URLField(
        allow_null=True, help_text="The secure link, returned this once (only its hash is kept)."
    )


class AcknowledgeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class AcknowledgedSerializer(serializers.Serializer):
    acknowledged_at = serializers.DateTimeField()
    acknowledged_name = serializers.CharField()
    first = serializers.BooleanField(help_text="False: it had been acknowledged already.")


class SettingsSerializer(serializers.Serializer):
    category1_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)
    category2_minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60)
    category3_minutes = serializers.IntegerField(min_value=1, max_value=90 * 24 * 60)
    escalation_contacts = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True)),
        max_length=50,
        help_text='[{"name": ..., "role": ..., "email": ..., "phone": ...}]',
    )


def _communication(m: Any) -> dict[str, Any]:
    return {
        "id": m.pk,
        "method": m.method,
        "recipient_name": m.recipient_name,
        "recipient_role": m.recipient_role,
        "recipient_username": m.recipient_user.username if m.recipient_user_id else None,
        "communicated_at": m.communicated_at,
        "communicated_by": m.communicated_by.username,
        "note": m.note,
    }


def _critical(c: CriticalResult) -> dict[str, Any]:
    return {
        "id": c.pk,
        "item": c.work_item_id,
        "tenant": c.tenant.slug,
        "category": c.category,
        "finding": c.finding,
        "recipient": c.recipient,
        "flagged_by": c.flagged_by.username,
        "flagged_at": c.flagged_at,
        "due_at": c.due_at,
        "acknowledged_at": c.acknowledged_at,
        "acknowledged_name": c.acknowledged_name,
        "escalated_at": c.escalated_at,
        "communications": [_communication(m) for m in c.communications.all()],
    }


def _item(user: User, item_id: int) -> Any:
    return worklist.visible_item(user, item_id)


class ItemCriticals(WorklistAPIView):
    @extend_schema(responses={200: CriticalSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        """The item's critical results, newest first."""
        item = _item(self.user, item_id)
        results = (
            CriticalResult.objects.filter(tenant=item.tenant, work_item=item)
            .select_related("tenant", "flagged_by")
            .prefetch_related("communications__communicated_by", "communications__recipient_user")
            .order_by("-flagged_at", "-id")
        )
        worklist._record(AuditAction.CRITICAL_LIST, item, self.actor(), results=len(results))
        return Response([_critical(c) for c in results])

    @extend_schema(
        request=FlagSerializer,
        responses={201: CriticalSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, item_id: int) -> Response:
        """Flag a finding of the item's study critical (ACR category 1, 2 or 3)."""
        body = _body(FlagSerializer, request)
        critical = services.flag(
            item=_item(self.user, item_id), user=self.user, actor=self.actor(),
            category=int(body["category"]), finding=body["finding"],
            recipient=body.get("recipient", ""),
        )  # fmt: skip
        return Response(_critical(critical), status=status.HTTP_201_CREATED)


class Communicate(WorklistAPIView):
    @extend_schema(
        request=CommunicateSerializer,
        responses={201: CommunicatedSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, critical_id: int) -> Response:
        """Record who was told, how and when; a secure link's URL is returned this once."""
        body = _body(CommunicateSerializer, request)
        critical = services.visible_critical(self.user, critical_id)
        recipient_user = None
        if body.get("recipient_username"):
            recipient_user = User.objects.filter(
                username=body["recipient_username"], is_active=True
            ).first()
            if recipient_user is None:
                raise services.CriticalError("No active user has that recipient_username.")
        done = services.communicate(
            critical=critical, user=self.user, actor=self.actor(), method=body["method"],
            recipient_name=body.get("recipient_name", ""),
            recipient_role=body.get("recipient_role", ""), recipient_user=recipient_user,
            recipient_contact=body.get("recipient_contact", ""), note=body.get("note", ""),
            confirmed=body.get("confirmed", False),
        )  # fmt: skip
        data = _communication(done.communication)
        data["ack_url"] = request.build_absolute_uri(done.ack_path) if done.ack_path else None
        return Response(data, status=status.HTTP_201_CREATED)


class Acknowledge(WorklistAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []  # the token in the URL is the key

    @extend_schema(
        request=AcknowledgeSerializer,
        responses={200: AcknowledgedSerializer, 404: NOT_FOUND},
        auth=[],
    )
    def post(self, request: Request, token: str) -> Response:
        """Acknowledge with a secure link's token. Idempotent: the first acknowledgement stands."""
        body = _body(AcknowledgeSerializer, request)
        if services.open_link(token) is None:  # narrows the database to the link's tenant
            raise services.NotFound("This acknowledgement link is not valid.")
        actor = audit.Actor(
            type=ActorType.SYSTEM,
            address=request.META.get("REMOTE_ADDR"),
            extra={"via": "acknowledgement link"},
        )
        critical, first = services.acknowledge_by_link(
            token=token, actor=actor, name=body.get("name", "")
        )
        return Response(
            {
                "acknowledged_at": critical.acknowledged_at,
                "acknowledged_name": critical.acknowledged_name,
                "first": first,
            }
        )


class OpenCriticals(WorklistAPIView):
    @extend_schema(responses={200: CriticalSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Unacknowledged critical results the caller looks after: escalated first, then by due
        time (the dashboard's list)."""
        results = list(
            services.open_for(self.user, now=timezone.now()).prefetch_related(
                "communications__communicated_by", "communications__recipient_user"
            )[:500]
        )
        audit.record(
            action=AuditAction.CRITICAL_LIST,
            actor=self.actor(),
            tenant=None,
            detail={"results": len(results), "critical": [c.pk for c in results][:100]},
        )
        return Response([_critical(c) for c in results])


class TenantSettings(WorklistAPIView):
    def _tenant(self, slug: str) -> Tenant:
        tenant = readable_tenants(self.user).filter(slug=slug).first()
        if tenant is None:
            raise Http404("No such hospital.")
        return tenant

    @extend_schema(responses={200: SettingsSerializer, 404: NOT_FOUND})
    def get(self, request: Request, tenant_slug: str) -> Response:
        """The hospital's limits per category (minutes) and escalation contacts."""
        found = services.settings_for(self._tenant(tenant_slug))
        return Response(SettingsSerializer(found).data)

    @extend_schema(
        request=SettingsSerializer,
        responses={200: SettingsSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def put(self, request: Request, tenant_slug: str) -> Response:
        """Change them (the hospital's admins). Results already flagged keep their due time."""
        tenant = self._tenant(tenant_slug)
        if not Membership.objects.filter(
            user=self.user, tenant=tenant, role=Role.TENANT_ADMIN
        ).exists():
            raise worklist.NotAllowed("Only the hospital's admins change its critical settings.")
        body = _body(SettingsSerializer, request)
        found = services.settings_for(tenant)
        for name, value in body.items():
            setattr(found, name, value)
        found.updated_at = timezone.now()
        found.save()
        audit.record(
            action=AuditAction.SETTINGS_CHANGE,
            actor=self.actor(),
            tenant=tenant,
            detail={"settings": "critical", "fields": sorted(body)},
        )
        return Response(SettingsSerializer(found).data)
