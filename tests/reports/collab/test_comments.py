"""Comments at the edge: threaded replies, @mentions that notify only people who may see the
study, the notification list, its unread badge and e-mails without patient data."""

from __future__ import annotations

from typing import Any

from django.core import mail

from tests.reports.collab.test_consults import client_for


def _comment(client: Any, item: Any, **data: Any) -> Any:
    response = client.post(
        f"/reports/collab/items/{item.pk}/comments/", data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    return response


def test_mentions_notify_only_people_who_may_see_the_study(reading):
    from reports.models import Comment, Notification
    from tenants.models import AuditAction, AuditEvent

    item = reading.item(reading.people.demo, patient_name="DOE^JANE")
    reading.people.alice.email = "alice@example.org"
    reading.people.alice.save()
    bob = client_for(reading.bob)
    response = _comment(bob, item, body="@alice please check the history. @charlie @erin @ghost")
    text = response.content.decode()
    assert "Comment added." in text
    assert "Not notified (nobody of that name may see this study): @charlie, @erin, @ghost." in text
    comment = Comment.objects.get(work_item=item)
    assert list(comment.mentions.all()) == [reading.people.alice]
    assert Notification.objects.filter(kind="mention").count() == 1
    note = Notification.objects.get(kind="mention")
    assert note.user == reading.people.alice and "DOE" not in note.text
    assert mail.outbox[-1].to == ["alice@example.org"] and "DOE" not in mail.outbox[-1].body
    assert AuditEvent.objects.filter(action=AuditAction.COMMENT_ADD).count() == 1

    # A reply sits under its comment in the thread.
    alice = client_for(reading.people.alice)
    _comment(alice, item, body="Prior CT in 2019 was normal.", reply_to=comment.pk)
    _comment(bob, item, body="Thanks.")
    panel = bob.get(f"/reports/collab/items/{item.pk}/panel/").content.decode()
    assert panel.index("please check") < panel.index("Prior CT") < panel.index("Thanks.")
    assert 'class="comment depth-1' in panel

    # Alice's notifications page, its badge, and reading it.
    assert "1" in alice.get("/reports/collab/notifications/badge/").content.decode()
    page = alice.get("/reports/collab/notifications/")
    assert page.status_code == 200 and "mentioned you" in page.content.decode()
    opened = alice.post("/reports/collab/notifications/read/", {"id": note.pk, "open": note.pk})
    assert opened.status_code == 302 and opened["Location"] == f"/worklist/items/{item.pk}/"
    assert 'class="count"' not in alice.get("/reports/collab/notifications/badge/").content.decode()


def test_autocomplete_lists_only_people_who_may_see_the_study(reading):
    item = reading.item(reading.people.demo)
    bob = client_for(reading.bob)
    names = {
        u["username"]
        for u in bob.get(f"/reports/collab/items/{item.pk}/mentionable/?q=").json()["users"]
    }
    assert names == set()
    found = bob.get(f"/reports/collab/items/{item.pk}/mentionable/?q=a").json()["users"]
    assert [u["username"] for u in found] == ["alice"]
    assert bob.get(f"/reports/collab/items/{item.pk}/mentionable/?q=c").json()["users"] == []


def test_a_comment_needs_words_and_a_reply_needs_a_comment_of_this_thread(reading):
    item = reading.item(reading.people.demo)
    other = reading.item(reading.people.demo)
    bob = client_for(reading.bob)
    assert b"Write something" in _comment(bob, item, body="  ").content
    _comment(bob, other, body="elsewhere")
    from reports.models import Comment

    elsewhere = Comment.objects.get(work_item=other)
    assert b"not in this thread" in _comment(bob, item, body="x", reply_to=elsewhere.pk).content


def test_the_api_asks_answers_and_lists_with_404_for_another_hospital(reading):
    item = reading.item(reading.people.demo)
    bob, erin = client_for(reading.bob), client_for(reading.erin)
    base = f"/api/reports/collab/items/{item.pk}"
    asked = bob.post(
        f"{base}/consults/",
        {"question": "Agree?", "consultant": "erin"},
        content_type="application/json",
    )
    assert asked.status_code == 201, asked.content
    consult = asked.json()
    assert consult["status"] == "requested" and consult["consultant"] == "erin"
    bad = bob.post(
        f"{base}/consults/",
        {"question": "?", "consultant": "nobody"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "No active radiologist" in bad.json()["detail"]
    assert (
        erin.post(f"/api/reports/collab/consults/{consult['id']}/accept/").json()["status"]
        == "accepted"
    )
    answered = erin.post(
        f"{base}/comments/",
        {"body": "Agreed, @bob.", "answers": consult["id"]},
        content_type="application/json",
    )
    assert answered.status_code == 201 and answered.json()["mentions"] == ["bob"]
    reply = bob.post(
        f"{base}/comments/",
        {"body": "Thanks", "reply_to": answered.json()["id"]},
        content_type="application/json",
    )
    assert reply.status_code == 201
    thread = bob.get(f"{base}/comments/").json()
    assert [(c["body"], c["depth"]) for c in thread] == [("Agreed, @bob.", 0), ("Thanks", 1)]
    notes = bob.get("/api/reports/collab/notifications/").json()
    assert notes["unread"] >= 2
    assert (
        bob.post(
            "/api/reports/collab/notifications/read/", {}, content_type="application/json"
        ).json()["marked"]
        == notes["unread"]
    )
    assert bob.get("/api/reports/collab/notifications/").json()["unread"] == 0

    charlie = client_for(reading.people.charlie)
    assert charlie.get(f"{base}/consults/").status_code == 404
    assert charlie.get(f"{base}/comments/").status_code == 404
    assert (
        charlie.post(
            f"{base}/comments/", {"body": "x"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert charlie.post(f"/api/reports/collab/consults/{consult['id']}/revoke/").status_code == 404
    assert charlie.get("/api/reports/collab/notifications/").json()["results"] == []
    revoked = bob.post(f"/api/reports/collab/consults/{consult['id']}/revoke/")
    assert revoked.json()["status"] == "revoked"
    assert erin.get(f"{base}/comments/").status_code == 404
