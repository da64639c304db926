"""Writes of collaboration: consults, comments with @mentions, notifications.

- A consult is asked by a radiologist who may read the item, of an active radiologist (named) or
  of a reading group (each of its radiologists may take it). Asking grants each of them the
  guardian permission ``view_consult`` on the consult; accepting a group's consult keeps it for
  the one who accepts; revoking (by the requester or the hospital's admins) deletes every grant
  and closes the consult, in one transaction, so access ends with the commit.
- A comment may reply to another and may be a consultant's answer to their consult. ``@name``
  mentions notify only people who may see the item (readers, managers, consultants of it).
- Notifications hold no patient data (their text is also an e-mail's subject and body).

Every action writes an audit row naming the item's study (``worklists.services._record``).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from tenants import audit
from tenants.models import AuditAction, Membership, Outcome, ReadingGroup, Role, Tenant, User
from worklists import eligibility
from worklists import services as worklist
from worklists.models import WorkItem

from . import access
from .models import (
    OPEN_CONSULT_STATES,
    Comment,
    Consult,
    ConsultStatus,
    ConsultUserObjectPermission,
    Notification,
    NotificationKind,
)

log = logging.getLogger(__name__)

CollabError = worklist.WorklistError
NotFound = worklist.NotVisible
NotAllowed = worklist.NotAllowed
Conflict = worklist.Conflict

MAX_QUESTION = 4000
MAX_COMMENT = 8000
# "@bob", "@j.smith": Django usernames (letters, digits and @.+-_), not ending in a full stop.
MENTION = re.compile(r"(?<![\w@])@([\w.+-]*[\w+-])")


def item_link(item: WorkItem) -> str:
    return reverse("worklists:item", args=[item.pk])


def _study_words(item: WorkItem) -> str:
    """How a notification names a study without naming the patient: modality and hospital."""
    return f"a {item.modality or 'study'} study of {item.tenant.name}"


# ---------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------


def notify(
    *,
    user: User,
    tenant: Tenant,
    kind: str,
    text: str,
    link: str = "",
    key: str = "",
    now: datetime | None = None,
) -> Notification | None:
    """Tell ``user``; with ``key``, at most once (a task run twice notifies once). E-mailed after
    the commit when the user has an address. Returns None if it had been sent already."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            note = Notification.objects.create(
                tenant=tenant, user=user, kind=kind, text=text[:300], link=link, key=key,
                created_at=now,
            )  # fmt: skip
    except IntegrityError:
        return None  # this key was notified already
    if user.email:
        transaction.on_commit(lambda: email(user.email, note.get_kind_display(), text, link))
    return note


def email(address: str, subject: str, text: str, link: str = "") -> None:
    """One e-mail. The subject names the kind of event only, never patient data. A mail server
    that is down loses the e-mail, not the notification (it stays listed in Skylight)."""
    root = getattr(settings, "PUBLIC_URL", "") or ""
    body = text + (f"\n\n{root}{link}" if link else "") + "\n\n-- Skylight"
    try:
        send_mail(f"Skylight: {subject}", body, None, [address])
    except OSError as error:
        log.warning("notification e-mail not sent: %s", type(error).__name__)


def unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def mark_read(user: User, *, ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Mark the user's notifications read (these ids, or all). Someone else's ids match none."""
    now = now or timezone.now()
    notes = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        notes = notes.filter(pk__in=ids)
    return notes.update(read_at=now)


# ---------------------------------------------------------------------------------------------
# Consults
# ---------------------------------------------------------------------------------------------


def radiologists() -> Q:
    """Users who may be asked for a consult: active, with a radiologist role somewhere."""
    return Q(
        is_active=True,
        id__in=Membership.objects.filter(role=Role.RADIOLOGIST).values("user_id"),
    )


def _group_radiologists(group: ReadingGroup) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True,
            memberships__group=group,
            memberships__role=Role.RADIOLOGIST,
        ).distinct()
    )


def visible_consult(user: User, consult_id: int, now: datetime | None = None) -> Consult:
    """A consult of an item the user may see, else NotFound (missing or someone else's)."""
    consult = (
        Consult.objects.select_related("work_item", "group", "consultant", "requested_by")
        .filter(pk=consult_id)
        .first()
    )
    if consult is None:
        raise NotFound("No such consult.")
    try:
        item = worklist.visible_item(user, consult.work_item_id)
    except worklist.NotVisible:
        raise NotFound("No such consult.") from None
    consult.work_item = item
    return consult


def request_consult(
    *,
    item: WorkItem,
    user: User,
    actor: audit.Actor,
    question: str,
    consultant: User | None = None,
    group: ReadingGroup | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> Consult:
    """Ask a named radiologist or a reading group about this item's study."""
    now = now or timezone.now()
    item = worklist.visible_item(user, item.pk)
    question = (question or "").strip()
    if not eligibility.may_read(user, item):
        worklist._record(AuditAction.CONSULT_REQUEST, item, actor, Outcome.FAILURE, why="reader")
        raise NotAllowed("Only a radiologist who may read this study can ask for a consult.")
    if not question:
        raise CollabError("Write the question you want answered.")
    if len(question) > MAX_QUESTION:
        raise CollabError(f"The question is longer than {MAX_QUESTION} characters.")
    if (consultant is None) == (group is None):
        raise CollabError("Ask either one radiologist or one reading group.")
    if expires_at is not None and expires_at <= now:
        raise CollabError("The access would end before it starts: choose a later expiry.")
    if consultant is not None:
        if consultant.pk == user.pk:
            raise CollabError("You cannot ask yourself for a consult.")
        if not User.objects.filter(radiologists(), pk=consultant.pk).exists():
            raise CollabError("Consults are asked of active radiologists.")
        grantees = [consultant]
    else:
        assert group is not None
        if not group.is_active:
            raise CollabError("This reading group is not active.")
        grantees = [u for u in _group_radiologists(group) if u.pk != user.pk]
        if not grantees:
            raise CollabError("This reading group has no other radiologist to ask.")
    with transaction.atomic():
        consult = Consult.objects.create(
            tenant=item.tenant, work_item=item, study=item.study, requested_by=user,
            consultant=consultant, group=group, question=question, created_at=now,
            expires_at=expires_at,
        )  # fmt: skip
        for grantee in grantees:
            assign_perm(access.PERMISSION, grantee, consult)
        worklist._record(
            AuditAction.CONSULT_REQUEST, item, actor, consult=consult.pk,
            consultant=consultant.pk if consultant else None, group=group.pk if group else None,
            granted=[g.pk for g in grantees],
        )  # fmt: skip
        for grantee in grantees:
            notify(
                user=grantee, tenant=item.tenant, kind=NotificationKind.CONSULT_REQUEST,
                text=f"{user} asks for your opinion on {_study_words(item)}.",
                link=item_link(item), key=f"consult-request:{consult.pk}", now=now,
            )  # fmt: skip
    return consult


def holds_grant(consult: Consult, user: User) -> bool:
    return ConsultUserObjectPermission.objects.filter(
        content_object=consult, user=user, permission__codename=access.PERMISSION
    ).exists()


def accept_consult(
    *, consult: Consult, user: User, actor: audit.Actor, now: datetime | None = None
) -> Consult:
    """The consultant takes the consult. A group's consult goes to the first who accepts; the
    other radiologists of the group lose their access to the study with it."""
    now = now or timezone.now()
    consult = visible_consult(user, consult.pk, now)
    item = consult.work_item
    if not holds_grant(consult, user):
        raise NotAllowed("Only the radiologist asked can accept this consult.")
    if not consult.is_open(now):
        raise Conflict("This consult is closed.")
    with transaction.atomic():
        won = Consult.objects.filter(
            Q(consultant__isnull=True) | Q(consultant=user),
            pk=consult.pk, status=ConsultStatus.REQUESTED,
        ).update(status=ConsultStatus.ACCEPTED, consultant=user, accepted_at=now)  # fmt: skip
        if not won:
            raise Conflict("This consult was already taken.")
        ConsultUserObjectPermission.objects.filter(content_object=consult).exclude(
            user=user
        ).delete()
        worklist._record(AuditAction.CONSULT_ACCEPT, item, actor, consult=consult.pk)
        notify(
            user=consult.requested_by, tenant=consult.tenant, kind=NotificationKind.CONSULT_ACCEPT,
            text=f"{user} accepted your consult on {_study_words(item)}.",
            link=item_link(item), key=f"consult-accept:{consult.pk}", now=now,
        )  # fmt: skip
    consult.refresh_from_db()
    return consult


def may_revoke(user: User, consult: Consult) -> bool:
    """The requester, and the hospital's admins."""
    if consult.requested_by_id == user.pk:
        return True
    return Membership.objects.filter(
        user=user, tenant_id=consult.tenant_id, role=Role.TENANT_ADMIN
    ).exists()


def revoke_consult(
    *, consult: Consult, user: User, actor: audit.Actor, now: datetime | None = None
) -> Consult:
    """End the consult and the access it gave, at once. Revoking a revoked consult changes
    nothing (and says so)."""
    now = now or timezone.now()
    consult = visible_consult(user, consult.pk, now)
    item = consult.work_item
    if not may_revoke(user, consult):
        worklist._record(
            AuditAction.CONSULT_REVOKE, item, actor, Outcome.FAILURE, consult=consult.pk,
            why="not requester or admin",
        )  # fmt: skip
        raise NotAllowed("Only the radiologist who asked, or the hospital's admins, can revoke it.")
    with transaction.atomic():
        holders = list(
            User.objects.filter(
                pk__in=ConsultUserObjectPermission.objects.filter(content_object=consult).values(
                    "user_id"
                )
            )
        )
        ConsultUserObjectPermission.objects.filter(content_object=consult).delete()
        closed = Consult.objects.filter(pk=consult.pk, status__in=OPEN_CONSULT_STATES).update(
            status=ConsultStatus.REVOKED, revoked_at=now, revoked_by=user
        )
        worklist._record(
            AuditAction.CONSULT_REVOKE, item, actor, consult=consult.pk, changed=bool(closed)
        )
        if closed:
            for holder in holders:
                notify(
                    user=holder, tenant=consult.tenant, kind=NotificationKind.CONSULT_REVOKE,
                    text=f"The consult on {_study_words(item)} was withdrawn; "
                    "you no longer have access to the study.",
                    key=f"consult-revoke:{consult.pk}", now=now,
                )  # fmt: skip
    consult.refresh_from_db()
    return consult


def consults_of(item: WorkItem) -> list[Consult]:
    return list(
        Consult.objects.filter(tenant=item.tenant, work_item=item).select_related(
            "consultant", "group", "requested_by"
        )
    )


# ---------------------------------------------------------------------------------------------
# Comments
# ---------------------------------------------------------------------------------------------


def mentioned_names(body: str) -> list[str]:
    seen: dict[str, None] = {}
    for name in MENTION.findall(body):
        seen.setdefault(name, None)
    return list(seen)


def may_see(user: User, item: WorkItem) -> bool:
    try:
        worklist.visible_item(user, item.pk)
    except worklist.NotVisible:
        return False
    return True


def add_comment(
    *,
    item: WorkItem,
    user: User,
    actor: audit.Actor,
    body: str,
    reply_to: Comment | None = None,
    answers: Consult | None = None,
    now: datetime | None = None,
) -> tuple[Comment, list[str]]:
    """Add a comment to the item's thread. Returns it and the mentioned names that were not
    notified (nobody of that name may see this study)."""
    now = now or timezone.now()
    item = worklist.visible_item(user, item.pk)
    body = (body or "").strip()
    if not body:
        raise CollabError("Write something before you send the comment.")
    if len(body) > MAX_COMMENT:
        raise CollabError(f"The comment is longer than {MAX_COMMENT} characters.")
    if reply_to is not None and reply_to.work_item_id != item.pk:
        raise NotFound("No such comment to reply to.")
    if answers is not None:
        if answers.work_item_id != item.pk:
            raise NotFound("No such consult.")
        if answers.consultant_id != user.pk or not access.consults_item(user, item.pk, now):
            raise NotAllowed("Only the consultant who accepted the consult can answer it.")
    names = mentioned_names(body)
    candidates = {u.username: u for u in User.objects.filter(username__in=names, is_active=True)}
    mentioned = [candidates[n] for n in names if n in candidates and may_see(candidates[n], item)]
    unresolved = [n for n in names if n not in {u.username for u in mentioned}]
    with transaction.atomic():
        comment = Comment.objects.create(
            tenant=item.tenant, work_item=item, author=user, body=body, reply_to=reply_to,
            answers=answers, created_at=now,
        )  # fmt: skip
        comment.mentions.set(mentioned)
        worklist._record(
            AuditAction.COMMENT_ADD, item, actor, comment=comment.pk,
            reply_to=reply_to.pk if reply_to else None, mentions=[u.pk for u in mentioned],
        )  # fmt: skip
        if answers is not None:
            Consult.objects.filter(pk=answers.pk).exclude(status=ConsultStatus.REVOKED).update(
                status=ConsultStatus.ANSWERED, answered_at=now
            )
            worklist._record(
                AuditAction.CONSULT_ANSWER, item, actor, consult=answers.pk, comment=comment.pk
            )
            notify(
                user=answers.requested_by, tenant=item.tenant,
                kind=NotificationKind.CONSULT_ANSWER,
                text=f"{user} answered your consult on {_study_words(item)}.",
                link=item_link(item), key=f"consult-answer:{comment.pk}", now=now,
            )  # fmt: skip
        for person in mentioned:
            if person.pk == user.pk:
                continue
            notify(
                user=person, tenant=item.tenant, kind=NotificationKind.MENTION,
                text=f"{user} mentioned you in a comment on {_study_words(item)}.",
                link=item_link(item), key=f"mention:{comment.pk}", now=now,
            )  # fmt: skip
    return comment, unresolved


def thread(item: WorkItem) -> list[tuple[Comment, int]]:
    """The item's comments in reading order, each with its depth (replies under what they
    answer), in one query."""
    comments = list(
        Comment.objects.filter(tenant=item.tenant, work_item=item).select_related(
            "author", "answers"
        )
    )
    children: dict[int | None, list[Comment]] = {}
    for comment in comments:
        children.setdefault(comment.reply_to_id, []).append(comment)
    ordered: list[tuple[Comment, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for comment in children.get(parent, []):
            ordered.append((comment, depth))
            walk(comment.pk, min(depth + 1, 6))

    walk(None, 0)
    return ordered


def mentionable(item: WorkItem, prefix: str, *, limit: int = 10) -> list[User]:
    """Users whose username starts with ``prefix`` and who may see the item (for autocomplete)."""
    candidates = User.objects.filter(is_active=True, username__istartswith=prefix).order_by(
        "username"
    )[:50]
    return [u for u in candidates if may_see(u, item)][:limit]
