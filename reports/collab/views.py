"""Pages of collaboration: the reading room's panel (consults and the comment thread) and the
notifications. The panel's forms post with htmx and get the panel back; without htmx they
redirect to the item page. An item the user may not see is 404, whoever's it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from tenants import audit
from tenants.models import AuditAction, ReadingGroup, User
from worklists import eligibility
from worklists import services as worklist
from worklists.models import WorkItem

from . import access, services
from .models import Comment, ConsultStatus, Notification


def _me(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _actor(request: HttpRequest) -> audit.Actor:
    return audit.Actor.for_user(_me(request), address=request.META.get("REMOTE_ADDR"))


def _item(user: User, item_id: int) -> WorkItem:
    try:
        return worklist.visible_item(user, item_id)
    except worklist.NotVisible:
        raise Http404("No such work item.") from None


def _panel(
    request: HttpRequest, item: WorkItem, *, errors: list[str] | None = None, note: str = ""
) -> HttpResponse:
    user = _me(request)
    now = timezone.now()
    consults = services.consults_of(item)
    rows = []
    for consult in consults:
        is_mine = consult.consultant_id == user.pk or (
            consult.status == ConsultStatus.REQUESTED and services.holds_grant(consult, user)
        )
        rows.append(
            {
                "consult": consult,
                "open": consult.is_open(now),
                "can_revoke": consult.is_open(now) and services.may_revoke(user, consult),
                "can_accept": consult.status == ConsultStatus.REQUESTED
                and consult.is_open(now)
                and is_mine,
                "can_answer": consult.consultant_id == user.pk
                and consult.status in (ConsultStatus.ACCEPTED, ConsultStatus.ANSWERED)
                and consult.is_open(now),
            }
        )
    reads = eligibility.may_read(user, item, now.date())
    worklist._record(AuditAction.ITEM_VIEW, item, _actor(request), page="collab-panel")
    context = {
        "item": item,
        "consults": rows,
        "thread": services.thread(item),
        "can_ask": reads,
        "consultant_view": not reads and access.consults_item(user, item.pk, now),
        "groups": ReadingGroup.objects.filter(is_active=True).order_by("name") if reads else [],
        "errors": errors or [],
        "note": note,
    }
    return render(request, "reports/collab/panel.html", context)


def _done(
    request: HttpRequest, item: WorkItem, *, errors: list[str] | None = None, note: str = ""
) -> HttpResponse:
    """The panel again for htmx; a redirect to the reading room otherwise."""
    if request.headers.get("HX-Request"):
        # 200 even with errors (htmx swaps 2xx only): the errors are shown in the panel.
        return _panel(request, item, errors=errors, note=note)
    for error in errors or []:
        messages.error(request, error)
    if note:
        messages.success(request, note)
    return redirect(services.item_link(item))


@login_required
@require_GET
def panel(request: HttpRequest, item_id: int) -> HttpResponse:
    return _panel(request, _item(_me(request), item_id))


def _consultant(value: str) -> User | None:
    value = value.strip().lstrip("@")
    if not value:
        return None
    return User.objects.filter(services.radiologists(), username=value).first()


@login_required
@require_POST
def ask(request: HttpRequest, item_id: int) -> HttpResponse:
    user = _me(request)
    item = _item(user, item_id)
    post = request.POST
    target = post.get("consultant", "").strip()
    group_slug = post.get("group", "").strip()
    consultant = _consultant(target) if target else None
    group = ReadingGroup.objects.filter(slug=group_slug).first() if group_slug else None
    if target and consultant is None:
        return _done(request, item, errors=[f"No active radiologist is called “{target}”."])
    if group_slug and group is None:
        return _done(request, item, errors=["No such reading group."])
    expires_at: datetime | None = None
    if post.get("expires_at"):
        expires_at = parse_datetime(post["expires_at"])
        if expires_at is None:
            return _done(
                request, item, errors=["The expiry is a date and time, e.g. 2030-01-31 18:00."]
            )
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
    try:
        consult = services.request_consult(
            item=item, user=user, actor=_actor(request), question=post.get("question", ""),
            consultant=consultant, group=group, expires_at=expires_at,
        )  # fmt: skip
    except services.CollabError as error:
        if isinstance(error, services.NotFound):
            raise Http404(str(error)) from None
        return _done(request, item, errors=[str(error)])
    return _done(request, item, note=f"Consult asked of {consult.asked_of()}.")


@login_required
@require_POST
def consult_action(request: HttpRequest, consult_id: int, action: str) -> HttpResponse:
    user = _me(request)
    try:
        consult = services.visible_consult(user, consult_id)
    except services.NotFound:
        raise Http404("No such consult.") from None
    try:
        if action == "accept":
            services.accept_consult(consult=consult, user=user, actor=_actor(request))
            note = "You accepted the consult."
        elif action == "revoke":
            services.revoke_consult(consult=consult, user=user, actor=_actor(request))
            note = "The consult is revoked; its access ended."
        else:
            raise Http404("No such action.")
    except services.CollabError as error:
        return _done(request, consult.work_item, errors=[str(error)])
    return _done(request, consult.work_item, note=note)


@login_required
@require_POST
def comment(request: HttpRequest, item_id: int) -> HttpResponse:
    user = _me(request)
    item = _item(user, item_id)
    post = request.POST
    reply_to = None
    if post.get("reply_to", "").isdigit():
        reply_to = Comment.objects.filter(pk=int(post["reply_to"]), work_item=item).first()
        if reply_to is None:
            return _done(request, item, errors=["The comment you reply to is not in this thread."])
    answers = None
    if post.get("answers", "").isdigit():
        answers = item.consults.filter(pk=int(post["answers"])).first()
        if answers is None:
            return _done(request, item, errors=["No such consult on this study."])
    try:
        _, unresolved = services.add_comment(
            item=item, user=user, actor=_actor(request), body=post.get("body", ""),
            reply_to=reply_to, answers=answers,
        )  # fmt: skip
    except services.CollabError as error:
        return _done(request, item, errors=[str(error)])
    note = "Answer sent." if answers else "Comment added."
    if unresolved:
        names = ", ".join(f"@{n}" for n in unresolved)
        note += f" Not notified (nobody of that name may see this study): {names}."
    return _done(request, item, note=note)


@login_required
@require_GET
def mentionable(request: HttpRequest, item_id: int) -> JsonResponse:
    """Usernames for @mention autocomplete: only people who may see the item."""
    item = _item(_me(request), item_id)
    prefix = request.GET.get("q", "").strip().lstrip("@")[:150]
    users = services.mentionable(item, prefix) if prefix else []
    return JsonResponse({"users": [{"username": u.username, "name": str(u)} for u in users]})


# ---------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    user = _me(request)
    notes = list(Notification.objects.filter(user=user)[:200])
    context: dict[str, Any] = {"notes": notes, "unread": services.unread_count(user)}
    return render(request, "reports/collab/notifications.html", context)


@login_required
@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    """The unread count, as a small fragment for the page header (htmx polls it)."""
    return render(
        request, "reports/collab/badge.html", {"unread": services.unread_count(_me(request))}
    )


@login_required
@require_POST
def read(request: HttpRequest) -> HttpResponse:
    """Mark notifications read: ``id`` (repeatable), or all of them without one."""
    ids = [int(v) for v in request.POST.getlist("id") if v.isdigit()]
    services.mark_read(_me(request), ids=ids or None)
    note = request.POST.get("open", "")
    if note.isdigit():
        found = Notification.objects.filter(user=_me(request), pk=int(note)).first()
        if found is not None and found.link.startswith("/"):
            return redirect(found.link)
    return redirect("reports:collab:notifications")
