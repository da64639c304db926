"""The report lifecycle: draft → preliminary → final → addendum / correction, and nothing else.

Through the service functions (the API comes with the next slice), against the real database:
signed versions are immutable in the database itself, two simultaneous signatures give one signed
version, the work item moves with each signature, and another tenant's user finds nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from tests.reports.conftest import guard
from tests.worklists.test_claims import _radiologist

FINDINGS = {
    "clinical_information": "Abdominal pain.",
    "technique": "CT abdomen with contrast.",
    "comparison": "None.",
    "findings": "No free air. Normal liver.",
    "impression": "No acute abnormality.",
}


def _actor(user: Any) -> Any:
    from tenants import audit

    return audit.Actor.for_user(user)


def _claimed(reading: Any, user: Any = None) -> Any:
    from worklists import services

    user = user or reading.bob
    item = reading.item(reading.people.demo)
    return services.claim(item, user, _actor(user))


def _events(action: str, item: Any) -> list[Any]:
    from tenants.models import AuditEvent

    events = AuditEvent.objects.filter(action=action).order_by("id")
    return [e for e in events if e.detail.get("item") == item.pk]


def _draft(reading: Any, item: Any, user: Any = None, **sections: str) -> Any:
    from reports import services

    user = user or reading.bob
    return services.save_draft(
        item=item, user=user, actor=_actor(user), sections=sections or FINDINGS
    )


def _sign(reading: Any, version: Any, status: str, user: Any = None, password: Any = None) -> Any:
    from reports import services

    user = user or reading.bob
    return services.sign(
        version=version,
        user=user,
        actor=_actor(user),
        status=status,
        password=reading.password if password is None else password,
    )


def _final_report(reading: Any) -> tuple[Any, Any]:
    item = _claimed(reading)
    final = _sign(reading, _draft(reading, item), "final")
    return item, final


# ---------------------------------------------------------------------------------------------
# Status codes for the outside world
# ---------------------------------------------------------------------------------------------


def test_statuses_map_to_hl7_obr25_and_fhir_diagnostic_report_status(reading):
    from reports import services
    from reports.models import FHIR_STATUS, HL7_OBR25, ReportStatus

    item = _claimed(reading)
    draft = _draft(reading, item)
    assert draft.report_status() == ReportStatus.DRAFT
    assert FHIR_STATUS[draft.report_status()] == "partial"
    assert draft.report_status() not in HL7_OBR25  # a draft is never sent
    seen = {}
    preliminary = _sign(reading, draft, "preliminary")
    seen["preliminary"] = preliminary.report_status()
    final = services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password,
    )  # fmt: skip
    seen["final"] = final.report_status()
    for kind in ("addendum", "correction"):
        change = services.start_change(
            report=final.report, user=reading.bob, actor=_actor(reading.bob), kind=kind,
            sections={"impression": f"{kind} text"},
        )  # fmt: skip
        seen[kind] = _sign(reading, change, "final").report_status()
    assert {k: HL7_OBR25[v] for k, v in seen.items()} == {
        "preliminary": "P",
        "final": "F",
        "addendum": "A",
        "correction": "C",
    }
    assert {k: FHIR_STATUS[v] for k, v in seen.items()} == {
        "preliminary": "preliminary",
        "final": "final",
        "addendum": "appended",
        "correction": "corrected",
    }
    # Every value is a code of the FHIR R4 value set diagnostic-report-status.
    r4 = {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
          "cancelled", "entered-in-error", "unknown"}  # fmt: skip
    assert set(FHIR_STATUS.values()) <= r4


# ---------------------------------------------------------------------------------------------
# The legal path, and the work item moving with it
# ---------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_draft_autosaves_then_preliminary_then_final_moves_the_work_item(reading):
    from reports import services
    from tenants.models import AuditAction
    from worklists.models import ItemState, ReadingState

    item = _claimed(reading)
    draft = _draft(reading, item, findings="First words.")
    again = _draft(reading, item, findings="First words. More.", impression="Normal.")
    assert again.pk == draft.pk and again.number == 1
    assert (again.findings, again.impression, again.status) == (
        "First words. More.",
        "Normal.",
        "draft",
    )
    assert len(_events(AuditAction.REPORT_DRAFT_SAVE, item)) == 2

    preliminary = _sign(reading, again, "preliminary")
    assert preliminary.status == "preliminary" and preliminary.signed_by == reading.bob
    assert preliminary.content_sha256 == preliminary.compute_sha256()
    item.refresh_from_db()
    assert item.reading_state == ReadingState.PRELIMINARY
    # Signing the preliminary ends the claim; the item waits, as preliminary, for its final.
    assert item.state == ItemState.SCHEDULED and item.preliminary_at == preliminary.signed_at
    assert item.holder_id is None and item.lease_token is None

    final = services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password, sections={"impression": "Normal study."},
    )  # fmt: skip
    assert (final.number, final.status, final.supersedes_id) == (2, "final", preliminary.pk)
    assert final.findings == "First words. More." and final.impression == "Normal study."
    item.refresh_from_db()
    assert item.reading_state == ReadingState.FINAL
    assert item.state == ItemState.COMPLETED and item.final_at == final.signed_at
    assert item.lease_token is None and item.lease_expires_at is None  # the claim is freed

    report = services.report_for(reading.bob, item.pk, actor=_actor(reading.bob))
    assert [(v.number, v.status) for v in services.history(report)] == [
        (1, "preliminary"),
        (2, "final"),
    ]
    assert services.current(report) == final
    (viewed,) = _events(AuditAction.REPORT_VIEW, item)
    assert (viewed.actor_user_id, viewed.detail["report"]) == (reading.bob.pk, report.pk)
    signs = _events(AuditAction.REPORT_SIGN, item)
    assert [(e.outcome, e.detail["status"], e.actor_user_id) for e in signs] == [
        ("success", "preliminary", reading.bob.pk),
        ("success", "final", reading.bob.pk),
    ]
    assert signs[1].detail["sha256"] == final.content_sha256
    assert all(e.study_instance_uid == item.study.study_instance_uid for e in signs)
    assert all(e.tenant_id == item.tenant_id and e.patient_ref == item.patient_id for e in signs)
    assert all("DOE" not in str(e.detail) for e in signs)


def test_a_draft_signed_final_directly_completes_the_item(reading):
    from worklists.models import ItemState, ReadingState

    item, final = _final_report(reading)
    assert (final.number, final.status, final.kind) == (1, "final", "report")
    item.refresh_from_db()
    assert (item.state, item.reading_state) == (ItemState.COMPLETED, ReadingState.FINAL)


# ---------------------------------------------------------------------------------------------
# Illegal transitions
# ---------------------------------------------------------------------------------------------


def test_no_illegal_transition(reading):
    from reports import services
    from reports.models import ReportVersion
    from worklists import services as worklist

    item = _claimed(reading)
    bob = reading.bob
    draft = _draft(reading, item)
    with pytest.raises(services.ReportError, match="preliminary or as final"):
        _sign(reading, draft, "draft")
    with pytest.raises(services.ReportError, match="preliminary or as final"):
        _sign(reading, draft, "addendum")
    with pytest.raises(services.IllegalTransition, match="final report"):
        services.start_change(report=draft.report, user=bob, actor=_actor(bob), kind="addendum")
    with pytest.raises(services.IllegalTransition, match="Only a preliminary"):
        services.finalise(preliminary=draft, user=bob, actor=_actor(bob), password=reading.password)

    preliminary = _sign(reading, draft, "preliminary")
    with pytest.raises(services.IllegalTransition, match="already signed"):
        _sign(reading, preliminary, "final")  # final comes as a new version, by finalise
    with pytest.raises(services.IllegalTransition, match="signed"):
        _draft(reading, item, findings="Rewritten after signing.")  # no second draft
    with pytest.raises(services.IllegalTransition, match="final report"):
        services.start_change(report=draft.report, user=bob, actor=_actor(bob), kind="correction")

    final = services.finalise(
        preliminary=preliminary, user=bob, actor=_actor(bob), password=reading.password
    )
    with pytest.raises(services.IllegalTransition):
        services.finalise(
            preliminary=preliminary, user=bob, actor=_actor(bob), password=reading.password
        )
    with pytest.raises(services.IllegalTransition, match="already signed"):
        _sign(reading, final, "final")
    with pytest.raises(services.ReportError, match="addendum or a correction"):
        services.start_change(report=final.report, user=bob, actor=_actor(bob), kind="report")

    addendum = services.start_change(
        report=final.report, user=bob, actor=_actor(bob), kind="addendum"
    )
    with pytest.raises(services.IllegalTransition, match="signed as final"):
        _sign(reading, addendum, "preliminary")
    with pytest.raises(services.Conflict, match="unsigned draft"):
        services.start_change(report=final.report, user=bob, actor=_actor(bob), kind="correction")
    # Nothing above changed a signed version, nor the item after its final.
    assert [(v.number, v.status, v.kind) for v in ReportVersion.objects.order_by("number")] == [
        (1, "preliminary", "report"),
        (2, "final", "report"),
        (3, "draft", "addendum"),
    ]
    assert worklist.visible_item(bob, item.pk).reading_state == "final"


def test_only_the_holder_starts_and_signs_and_only_the_author_changes_a_draft(reading):
    from reports import services
    from tenants.models import AuditAction
    from worklists import services as worklist

    item = reading.item(reading.people.demo)
    with pytest.raises(services.NotAllowed, match="Claim this study"):
        _draft(reading, item)  # bob may read it but does not hold it
    worklist.claim(item, reading.bob, _actor(reading.bob))
    draft = _draft(reading, item)
    # ivan may read CT at demo-hospital: he sees the item, but the draft is bob's.
    ivan = _radiologist(reading, "ivan")
    with pytest.raises(services.NotAllowed, match="author"):
        _draft(reading, item, user=ivan, findings="Ivan was here.")
    with pytest.raises(services.NotAllowed, match="author"):
        _sign(reading, draft, "final", user=ivan)
    with pytest.raises(services.NotAllowed, match="author"):
        services.discard_draft(version=draft, user=ivan, actor=_actor(ivan))
    # bob's claim ends: he can neither go on writing nor sign until he claims again.
    worklist.release(item, reading.bob, _actor(reading.bob))
    with pytest.raises(services.NotAllowed, match="Claim this study again"):
        _draft(reading, item, findings="Written after the claim ended.")
    with pytest.raises(services.NotAllowed, match="Claim this study again"):
        _sign(reading, draft, "preliminary")
    draft.refresh_from_db()
    assert (draft.findings, draft.status) == (FINDINGS["findings"], "draft")
    failures = [e for e in _events(AuditAction.REPORT_SIGN, item) if e.outcome == "failure"]
    assert [e.detail["why"] for e in failures] == ["not author", "no claim"]
    assert [e.actor_user_id for e in failures] == [ivan.pk, reading.bob.pk]
    saves = [e for e in _events(AuditAction.REPORT_DRAFT_SAVE, item) if e.outcome == "failure"]
    assert [e.detail["why"] for e in saves] == ["not holder", "not author", "no claim"]


def test_a_wrong_password_signs_nothing_and_is_audited(reading):
    from reports import services
    from tenants.models import AuditAction
    from worklists.models import ReadingState

    item = _claimed(reading)
    draft = _draft(reading, item)
    for password in ("wrong-password", ""):
        with pytest.raises(services.StepUpFailed, match="password is not correct"):
            _sign(reading, draft, "final", password=password)
    draft.refresh_from_db()
    assert (draft.status, draft.signed_at, draft.content_sha256) == ("draft", None, "")
    item.refresh_from_db()
    assert item.reading_state == ReadingState.CLAIMED and item.final_at is None
    failures = _events(AuditAction.REPORT_SIGN, item)
    assert [(e.outcome, e.detail["why"]) for e in failures] == [("failure", "step-up")] * 2
    assert all(reading.password not in str(e.detail) for e in failures)
    # The right password then signs.
    assert _sign(reading, draft, "final").status == "final"


def test_the_mfa_hook_is_asked_after_the_password(reading, monkeypatch):
    from reports import services

    item = _claimed(reading)
    draft = _draft(reading, item)
    asked: list[tuple[Any, Any]] = []

    def second_factor(user: Any, code: Any) -> bool:
        asked.append((user.pk, code))
        return code == "123456"

    monkeypatch.setattr(services, "mfa_step_up_hook", second_factor)
    with pytest.raises(services.StepUpFailed):
        services.sign(
            version=draft, user=reading.bob, actor=_actor(reading.bob), status="final",
            password=reading.password, mfa_code="000000",
        )  # fmt: skip
    with pytest.raises(services.StepUpFailed):
        _sign(reading, draft, "final", password="wrong-password")  # hook not reached
    signed = services.sign(
        version=draft, user=reading.bob, actor=_actor(reading.bob), status="final",
        password=reading.password, mfa_code="123456",
    )  # fmt: skip
    assert signed.status == "final"
    assert asked == [(reading.bob.pk, "000000"), (reading.bob.pk, "123456")]


# ---------------------------------------------------------------------------------------------
# Immutability, in the database
# ---------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_the_database_refuses_to_change_or_delete_a_signed_version(reading):
    from reports.models import ReportVersion

    item = _claimed(reading)
    draft = _draft(reading, item)
    table = ReportVersion._meta.db_table
    with connection.cursor() as cursor:  # a draft is an ordinary row
        cursor.execute(f"UPDATE {table} SET findings = %s WHERE id = %s", ["Edited.", draft.pk])
    final = _sign(reading, draft, "final")
    assert final.findings == "Edited."
    attempts = [
        (f"UPDATE {table} SET findings = %s WHERE id = %s", ["Tampered.", final.pk]),
        (f"UPDATE {table} SET content_sha256 = %s WHERE id = %s", ["0" * 64, final.pk]),
        (f"UPDATE {table} SET status = 'draft', signed_at = NULL WHERE id = %s", [final.pk]),
        (f"DELETE FROM {table} WHERE id = %s", [final.pk]),
    ]
    for sql, params in attempts:
        with pytest.raises(IntegrityError, match="signed report version"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            ReportVersion.objects.filter(pk=final.pk).update(impression="Tampered.")
    final.impression = "Tampered through save()."
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            final.save()
    stored = ReportVersion.objects.get(pk=final.pk)
    assert stored.sections() == {**FINDINGS, "findings": "Edited."}
    assert stored.content_sha256 == stored.compute_sha256()


def test_the_sqlite_guard_refuses_the_same(tmp_path):
    """The embedded mode's SQL, on a SQLite table with the guarded columns."""
    immutability = guard()

    db = sqlite3.connect(tmp_path / "guard.sqlite3")
    db.execute(
        f"CREATE TABLE {immutability.TABLE} (id INTEGER PRIMARY KEY, findings TEXT, signed_at TEXT)"
    )
    for sql in immutability.SQLITE_CREATE:
        db.execute(sql)
    db.execute(f"INSERT INTO {immutability.TABLE} VALUES (1, 'draft', NULL), (2, 'x', NULL)")
    db.execute(f"UPDATE {immutability.TABLE} SET findings = 'edited' WHERE id = 1")
    db.execute(f"UPDATE {immutability.TABLE} SET signed_at = '2026-01-01' WHERE id = 1")  # sign
    db.execute(f"DELETE FROM {immutability.TABLE} WHERE id = 2")  # a draft can be discarded
    with pytest.raises(sqlite3.IntegrityError, match="signed report version"):
        db.execute(f"UPDATE {immutability.TABLE} SET findings = 'tampered' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="signed report version"):
        db.execute(f"DELETE FROM {immutability.TABLE} WHERE id = 1")
    assert db.execute(f"SELECT findings FROM {immutability.TABLE}").fetchall() == [("edited",)]
    db.close()


@pytest.mark.smoke
def test_an_addendum_and_a_correction_keep_the_original(reading):
    from reports import services
    from tenants.models import AuditAction

    item, final = _final_report(reading)
    original = final.sections()
    addendum = services.start_change(
        report=final.report, user=reading.bob, actor=_actor(reading.bob), kind="addendum",
        sections={"findings": "Addendum: the prior CT was found; unchanged."},
    )  # fmt: skip
    assert addendum.sections()["impression"] == ""  # an addendum starts empty
    _draft(reading, item, impression="No change to the impression.")  # autosave of the addendum
    addendum = _sign(reading, addendum, "final")
    # Another eligible radiologist corrects it: a correction starts from the current text.
    ivan = _radiologist(reading, "ivan")
    correction = services.start_change(
        report=final.report, user=ivan, actor=_actor(ivan), kind="correction",
    )  # fmt: skip
    assert correction.sections() == addendum.sections()
    _draft(reading, item, user=ivan, impression="Corrected: small renal cyst.")
    correction = _sign(reading, correction, "final", user=ivan)

    report = services.report_for(reading.bob, item.pk, actor=_actor(reading.bob))
    versions = services.history(report)
    assert [(v.number, v.kind, v.status, v.author_id) for v in versions] == [
        (1, "report", "final", reading.bob.pk),
        (2, "addendum", "final", reading.bob.pk),
        (3, "correction", "final", ivan.pk),
    ]
    assert versions[0].sections() == original
    assert versions[0].content_sha256 == final.content_sha256 == versions[0].compute_sha256()
    assert [v.supersedes_id for v in versions] == [None, versions[0].pk, versions[1].pk]
    assert all(v.content_sha256 == v.compute_sha256() for v in versions)
    assert len({v.content_sha256 for v in versions}) == 3
    assert services.current(report) == correction
    assert versions[2].impression == "Corrected: small renal cyst."
    assert len(_events(AuditAction.REPORT_ADDENDUM, item)) == 1
    assert len(_events(AuditAction.REPORT_CORRECTION, item)) == 1


def test_a_discarded_draft_is_gone_and_a_signed_version_cannot_be_discarded(reading):
    from reports import services
    from reports.models import ReportVersion

    item, final = _final_report(reading)
    with pytest.raises(services.IllegalTransition, match="cannot be discarded"):
        services.discard_draft(version=final, user=reading.bob, actor=_actor(reading.bob))
    addendum = services.start_change(
        report=final.report, user=reading.bob, actor=_actor(reading.bob), kind="addendum"
    )
    services.discard_draft(version=addendum, user=reading.bob, actor=_actor(reading.bob))
    assert list(ReportVersion.objects.values_list("number", "status")) == [(1, "final")]


# ---------------------------------------------------------------------------------------------
# Tenant isolation
# ---------------------------------------------------------------------------------------------


def test_another_tenants_users_find_no_report(reading):
    """charlie administers second-hospital; erin reads only for second-hospital. A demo-hospital
    report does not exist for them: every call answers "not found", and nothing changes."""
    from reports import services
    from reports.models import ReportVersion

    item = _claimed(reading)
    draft = _draft(reading, item)
    for outsider in (reading.people.charlie, reading.erin):
        actor = _actor(outsider)
        calls = [
            lambda who=outsider, by=actor: services.report_for(who, item.pk, actor=by),
            lambda who=outsider, by=actor: services.save_draft(
                item=item, user=who, actor=by, sections={"findings": "x"}
            ),
            lambda who=outsider: _sign(reading, draft, "final", user=who),
            lambda who=outsider, by=actor: services.discard_draft(
                version=draft, user=who, actor=by
            ),
        ]
        for call in calls:
            with pytest.raises(services.NotFound, match="No such report") as missing:
                call()
            assert missing.value.status == 404
    preliminary = _sign(reading, draft, "preliminary")
    final = services.finalise(
        preliminary=preliminary, user=reading.bob, actor=_actor(reading.bob),
        password=reading.password,
    )  # fmt: skip
    for outsider in (reading.people.charlie, reading.erin):
        with pytest.raises(services.NotFound):
            services.start_change(
                report=final.report, user=outsider, actor=_actor(outsider), kind="addendum"
            )
        with pytest.raises(services.NotFound):
            services.finalise(
                preliminary=preliminary, user=outsider, actor=_actor(outsider),
                password=reading.password,
            )  # fmt: skip
    assert list(ReportVersion.objects.values_list("number", "status")) == [
        (1, "preliminary"),
        (2, "final"),
    ]
    assert ReportVersion.objects.get(number=2).findings == FINDINGS["findings"]


# ---------------------------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------------------------


def test_simultaneous_signatures_of_one_draft_give_one_signed_version(reading):
    """Six tabs of the author sign the same draft at once, on six database connections."""
    from reports import services
    from reports.models import ReportVersion
    from tenants.models import AuditAction
    from worklists.models import ReadingState

    item = _claimed(reading)
    draft = _draft(reading, item)
    statuses = ["preliminary", "final"] * 3
    copies = [ReportVersion.objects.get(pk=draft.pk) for _ in statuses]
    start = threading.Barrier(len(copies))

    def sign(version: Any, status: str) -> str:
        try:
            start.wait()
            _sign(reading, version, status)
            return status
        except (services.Conflict, services.IllegalTransition) as refused:
            assert refused.status == 409
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(copies)) as pool:
        outcomes = list(pool.map(sign, copies, statuses))

    won = [o for o in outcomes if o != "refused"]
    assert len(won) == 1, outcomes
    assert list(ReportVersion.objects.values_list("number", "status")) == [(1, won[0])]
    stored = ReportVersion.objects.get(pk=draft.pk)
    assert stored.content_sha256 == stored.compute_sha256()
    item.refresh_from_db()
    expected = ReadingState.FINAL if won[0] == "final" else ReadingState.PRELIMINARY
    assert item.reading_state == expected
    signs = _events(AuditAction.REPORT_SIGN, item)
    assert sorted(e.outcome for e in signs) == ["failure"] * 5 + ["success"]
    assert {e.detail["why"] for e in signs if e.outcome == "failure"} <= {"race", "signed"}


# ---------------------------------------------------------------------------------------------
# Every (state, action) pair
# ---------------------------------------------------------------------------------------------

ACTIONS = (
    "save", "sign_preliminary", "sign_final", "finalise", "addendum", "correction", "revise",
    "discard", "request_review",
)  # fmt: skip
OK, ILLEGAL, CONFLICT = "ok", "IllegalTransition", "Conflict"
# What each action does in each state of the report: allowed, or refused with which error.
TRANSITIONS = {
    "no report": dict.fromkeys(ACTIONS, "n/a") | {"save": OK},
    "draft": {
        "save": OK, "sign_preliminary": OK, "sign_final": OK, "finalise": ILLEGAL,
        "addendum": ILLEGAL, "correction": ILLEGAL, "revise": ILLEGAL, "discard": OK,
        "request_review": ILLEGAL,
    },
    "preliminary": {
        "save": ILLEGAL, "sign_preliminary": ILLEGAL, "sign_final": ILLEGAL, "finalise": OK,
        "addendum": ILLEGAL, "correction": ILLEGAL, "revise": OK, "discard": ILLEGAL,
        "request_review": OK,
    },
    "preliminary in review": {
        "save": ILLEGAL, "sign_preliminary": ILLEGAL, "sign_final": ILLEGAL, "finalise": CONFLICT,
        "addendum": ILLEGAL, "correction": ILLEGAL, "revise": CONFLICT, "discard": ILLEGAL,
        "request_review": CONFLICT,
    },
    "revision draft": {
        "save": OK, "sign_preliminary": OK, "sign_final": OK, "finalise": CONFLICT,
        "addendum": ILLEGAL, "correction": ILLEGAL, "revise": CONFLICT, "discard": OK,
        "request_review": CONFLICT,
    },
    "final": {
        "save": ILLEGAL, "sign_preliminary": ILLEGAL, "sign_final": ILLEGAL, "finalise": ILLEGAL,
        "addendum": OK, "correction": OK, "revise": ILLEGAL, "discard": ILLEGAL,
        "request_review": ILLEGAL,
    },
    "addendum draft": {
        "save": OK, "sign_preliminary": ILLEGAL, "sign_final": OK, "finalise": ILLEGAL,
        "addendum": CONFLICT, "correction": CONFLICT, "revise": ILLEGAL, "discard": OK,
        "request_review": ILLEGAL,
    },
}  # fmt: skip


def _in_state(reading: Any, state: str) -> Any:
    """A claimed item whose report is in ``state``, built through the services."""
    from reports import services
    from reports.review import services as review

    bob, actor = reading.bob, _actor(reading.bob)
    item = _claimed(reading)
    if state == "no report":
        return item
    draft = _draft(reading, item)
    if state == "draft":
        return item
    preliminary = _sign(reading, draft, "preliminary")
    if state == "preliminary":
        return item
    if state == "preliminary in review":
        review.request_review(version=preliminary, user=bob, actor=actor)
    elif state == "revision draft":
        services.start_revision(report=preliminary.report, user=bob, actor=actor)
    else:
        final = services.finalise(
            preliminary=preliminary, user=bob, actor=actor, password=reading.password
        )
        if state == "addendum draft":
            services.start_change(report=final.report, user=bob, actor=actor, kind="addendum")
    return item


def _act(reading: Any, item: Any, action: str) -> None:
    from reports import services
    from reports.models import Report
    from reports.review import services as review

    bob, actor, password = reading.bob, _actor(reading.bob), reading.password
    if action == "save":
        _draft(reading, item, findings=f"Saved by {action}.")
        return
    report = Report.objects.get(work_item=item)
    draft = report.versions.filter(status="draft").first()
    latest = services.current(report)
    target = draft or latest
    assert target is not None
    if action in ("sign_preliminary", "sign_final"):
        _sign(reading, target, action.removeprefix("sign_"))
    elif action == "finalise":
        services.finalise(preliminary=latest or draft, user=bob, actor=actor, password=password)
    elif action in ("addendum", "correction"):
        services.start_change(report=report, user=bob, actor=actor, kind=action)
    elif action == "revise":
        services.start_revision(report=report, user=bob, actor=actor)
    elif action == "discard":
        services.discard_draft(version=target, user=bob, actor=actor)
    elif action == "request_review":
        review.request_review(version=latest or draft, user=bob, actor=actor)


def test_every_state_and_action_pair_is_allowed_or_refused_as_the_table_says(reading):
    """No illegal transition: each of 7 states × 9 actions, on a fresh report each time; a
    refusal changes nothing that was signed."""
    from reports import services
    from reports.models import ReportVersion

    seen: dict[tuple[str, str], str] = {}
    for state, expected in TRANSITIONS.items():
        for action in ACTIONS:
            if expected[action] == "n/a":
                continue
            item = _in_state(reading, state)
            signed_before = list(
                ReportVersion.objects.filter(report__work_item=item, signed_at__isnull=False)
                .order_by("number")
                .values_list("pk", "content_sha256")
            )
            try:
                _act(reading, item, action)
                seen[(state, action)] = OK
            except services.ReportError as refused:
                seen[(state, action)] = type(refused).__name__
                assert refused.status == 409, (state, action, str(refused))
            signed_after = list(
                ReportVersion.objects.filter(
                    report__work_item=item, pk__in=[p for p, _ in signed_before]
                )
                .order_by("number")
                .values_list("pk", "content_sha256")
            )
            assert signed_after == signed_before, (state, action)
    wanted = {
        (state, action): outcome
        for state, row in TRANSITIONS.items()
        for action, outcome in row.items()
        if outcome != "n/a"
    }
    assert seen == wanted
