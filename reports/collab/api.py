"""REST API of collaboration, under /api/reports/collab/: consults, comments, notifications.

No tenant in the URLs, as for the worklist: an item or a consult the caller may not see is 404,
whoever's it is. Views parse, call one service, serialize.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.models import AuditAction, ReadingGroup, User
from worklists import services as worklist
from worklists.api import BAD_REQUEST, FORBIDDEN, WorklistAPIView, _body
from worklists.serializers import DetailSerializer

from . import services
from .models import Comment, Consult, ConsultStatus, Notification, NotificationKind

NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such item or consult.")
CONFLICT = OpenApiResponse(DetailSerializer, description="Closed, or taken by someone else.")


class ConsultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    requested_by = serializers.CharField()
    consultant = serializers.CharField(allow_null=True, help_text="Username.")
    group = serializers.CharField(allow_null=True, help_text="Reading group slug.")
    question = serializers.CharField()
    status = serializers.ChoiceField(choices=ConsultStatus.choices)
    created_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    answered_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class ConsultRequestSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=services.MAX_QUESTION)
    consultant = serializers.CharField(
        max_length=150, required=False, help_text="A radiologist's username."
    )
    group = serializers.SlugField(required=False, help_text="Or a reading group's slug.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField()
    body = serializers.CharField()
    reply_to = serializers.IntegerField(allow_null=True)
    answers = serializers.IntegerField(allow_null=True, help_text="The consult it answers.")
    depth = serializers.IntegerField()
    mentions = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class CommentInSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=services.MAX_COMMENT)
    reply_to = serializers.IntegerField(required=False, allow_null=True)
    answers = serializers.IntegerField(required=False, allow_null=True)


class CommentAddedSerializer(CommentSerializer):
    not_notified = serializers.ListField(
        child=serializers.CharField(),
        help_text="Mentioned names that were not notified: nobody so named may see the study.",
    )


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    text = serializers.CharField()
    link = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationsSerializer(serializers.Serializer):
    unread = serializers.IntegerField()
    results = NotificationSerializer(many=True)


class ReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="None: all of them."
    )


class ReadCountSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


def _consult(c: Consult) -> dict[str, Any]:
    return {
        "id": c.pk,
        "item": c.work_item_id,
        "requested_by": c.requested_by.username,
        "consultant": c.consultant.username if c.consultant else None,
        "group": c.group.slug if c.group else None,
        "question": c.question,
        "status": c.status,
        "created_at": c.created_at,
        "accepted_at": c.accepted_at,
        "answered_at": c.answered_at,
        "revoked_at": c.revoked_at,
        "expires_at": c.expires_at,
    }


def _comment(c: Comment, depth: int = 0) -> dict[str, Any]:
    return {
        "id": c.pk,
        "author": c.author.username,
        "body": c.body,
        "reply_to": c.reply_to_id,
        "answers": c.answers_id,
        "depth": depth,
        "mentions": [u.username for u in c.mentions.all()],
        "created_at": c.created_at,
    }


class ItemConsults(WorklistAPIView):
    @extend_schema(responses={200: ConsultSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        """The item's consults, newest first."""
        item = worklist.visible_item(self.user, item_id)
        worklist._record(AuditAction.ITEM_VIEW, item, self.actor(), page="consults")
        return Response([_consult(c) for c in services.consults_of(item)])

    @extend_schema(
        request=ConsultRequestSerializer,
        responses={201: ConsultSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, item_id: int) -> Response:
        """Ask a radiologist (``consultant``) or a reading group (``group``) about the item's
        study; they see that study only, read-only, until revoked or expired."""
        body = _body(ConsultRequestSerializer, request)
        item = worklist.visible_item(self.user, item_id)
        consultant = group = None
        if body.get("consultant"):
            consultant = User.objects.filter(
                services.radiologists(), username=body["consultant"]
            ).first()
            if consultant is None:
                raise services.CollabError("No active radiologist has that username.")
        if body.get("group"):
            group = ReadingGroup.objects.filter(slug=body["group"]).first()
            if group is None:
                raise services.CollabError("No such reading group.")
        consult = services.request_consult(
            item=item, user=self.user, actor=self.actor(), question=body["question"],
            consultant=consultant, group=group, expires_at=body.get("expires_at"),
        )  # fmt: skip
        return Response(_consult(consult), status=status.HTTP_201_CREATED)


class ConsultAccept(WorklistAPIView):
    @extend_schema(
        request=None,
        responses={200: ConsultSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, consult_id: int) -> Response:
        """Take the consult (of a group: the first who accepts; the others lose access)."""
        consult = services.visible_consult(self.user, consult_id)
        consult = services.accept_consult(consult=consult, user=self.user, actor=self.actor())
        return Response(_consult(consult))


class ConsultRevoke(WorklistAPIView):
    @extend_schema(request=None, responses={200: ConsultSerializer, 403: FORBIDDEN, 404: NOT_FOUND})
    def post(self, request: Request, consult_id: int) -> Response:
        """End the consult and its access at once (the requester, or the hospital's admins)."""
        consult = services.visible_consult(self.user, consult_id)
        consult = services.revoke_consult(consult=consult, user=self.user, actor=self.actor())
        return Response(_consult(consult))


class ItemComments(WorklistAPIView):
    @extend_schema(responses={200: CommentSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        """The thread in reading order: each reply under the comment it answers."""
        item = worklist.visible_item(self.user, item_id)
        worklist._record(AuditAction.ITEM_VIEW, item, self.actor(), page="comments")
        return Response([_comment(c, depth) for c, depth in services.thread(item)])

    @extend_schema(
        request=CommentInSerializer,
        responses={201: CommentAddedSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, item_id: int) -> Response:
        """Comment; ``@username`` notifies that person if they may see the study. A consultant
        answers their consult with ``answers``."""
        body = _body(CommentInSerializer, request)
        item = worklist.visible_item(self.user, item_id)
        reply_to = answers = None
        if body.get("reply_to") is not None:
            reply_to = Comment.objects.filter(pk=body["reply_to"], work_item=item).first()
            if reply_to is None:
                raise services.CollabError("The comment you reply to is not in this thread.")
        if body.get("answers") is not None:
            answers = Consult.objects.filter(pk=body["answers"], work_item=item).first()
            if answers is None:
                raise services.CollabError("No such consult on this study.")
        comment, unresolved = services.add_comment(
            item=item, user=self.user, actor=self.actor(), body=body["body"],
            reply_to=reply_to, answers=answers,
        )  # fmt: skip
        return Response(
            {**_comment(comment), "not_notified": unresolved}, status=status.HTTP_201_CREATED
        )


class Notifications(WorklistAPIView):
    @extend_schema(responses={200: NotificationsSerializer})
    def get(self, request: Request) -> Response:
        """Your notifications, newest first (at most 200), and how many are unread."""
        notes = Notification.objects.filter(user=self.user)[:200]
        return Response(
            {
                "unread": services.unread_count(self.user),
                "results": [
                    {
                        "id": n.pk,
                        "kind": n.kind,
                        "text": n.text,
                        "link": n.link,
                        "created_at": n.created_at,
                        "read_at": n.read_at,
                    }
                    for n in notes
                ],
            }
        )


class NotificationsRead(WorklistAPIView):
    @extend_schema(request=ReadSerializer, responses={200: ReadCountSerializer})
    def post(self, request: Request) -> Response:
        """Mark notifications read: these ``ids``, or all."""
        body = _body(ReadSerializer, request)
        return Response({"marked": services.mark_read(self.user, ids=body.get("ids"))})
