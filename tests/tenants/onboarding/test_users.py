"""Users and roles of a hospital, and members of a reading group: invite, change a role,
deactivate and reactivate, import a CSV."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from tenants import services as tenant_services
from tenants.models import AuditAction, AuditEvent, Membership, Role, User
from tenants.onboarding.models import DeactivatedMembership, Invitation
from tests.tenants.onboarding.conftest import login

USERS = "/t/demo-hospital/setup/users/"


def state() -> tuple[list[Any], list[Any], list[Any]]:
    return (
        sorted(Membership.objects.values_list("user_id", "tenant_id", "group_id", "role")),
        sorted(Invitation.objects.values_list("email", "role", "token_hash")),
        sorted(DeactivatedMembership.objects.values_list("user_id", "role")),
    )


def test_an_admin_invites_a_referring_physician_with_their_dicom_name(people, mailoutbox):
    response = login(people.alice).post(
        USERS,
        {
            "action": "invite",
            "invite-email": "welby@demo.example",
            "invite-role": Role.REFERRING_PHYSICIAN,
            "invite-person_name": "WELBY^MARCUS",
        },
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="welby@demo.example")
    assert invitation.person_name == "WELBY^MARCUS" and invitation.tenant == people.demo
    assert mailoutbox[0].to == ["welby@demo.example"]
    assert AuditEvent.objects.filter(
        tenant=people.demo, actor_user=people.alice, action=AuditAction.INVITE_SEND
    ).exists()
    page = login(people.alice).get(USERS).content.decode()
    assert "welby@demo.example" in page and "pending" in page


def test_a_bad_email_or_a_group_role_is_a_form_error_and_changes_nothing(people, mailoutbox):
    before = state()
    for data in (
        {"invite-email": "welby@", "invite-role": Role.RADIOLOGIST},
        {"invite-email": "welby@demo.example", "invite-role": Role.GROUP_ADMIN},
    ):
        response = login(people.alice).post(USERS, {"action": "invite", **data})
        assert response.status_code == 400
        body = response.content.decode()
        assert "Enter a valid email address." in body or "Select a valid choice" in body
    assert state() == before and not mailoutbox


def test_role_change_is_audited_and_the_last_admin_cannot_go(people):
    tom = User.objects.create_user("tom", password=people.password)
    membership = tenant_services.add_membership(
        user=tom, tenant=people.demo, role=Role.TECHNOLOGIST
    )
    client = login(people.alice)
    response = client.post(USERS, {"action": "role", "id": membership.pk, "role": "radiologist"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.RADIOLOGIST
    event = AuditEvent.objects.get(tenant=people.demo, action=AuditAction.ROLE_CHANGE)
    assert event.detail["previous_role"] == "technologist" and event.detail["role"] == "radiologist"

    alice_admin = Membership.objects.get(user=people.alice, tenant=people.demo)
    before = state()
    for data in ({"action": "deactivate"}, {"action": "role", "role": "radiologist"}):
        response = client.post(USERS, {**data, "id": alice_admin.pk})
        assert response.status_code == 400
        assert "last admin" in response.content.decode()
    assert state() == before


def test_deactivating_removes_access_at_once_but_not_to_other_hospitals(people, token_for):
    tom = User.objects.create_user("tom", password=people.password)
    here = tenant_services.add_membership(user=tom, tenant=people.demo, role=Role.TECHNOLOGIST)
    tenant_services.add_membership(user=tom, tenant=people.second, role=Role.TECHNOLOGIST)
    toms = login(tom)  # a session opened before the deactivation
    assert toms.get("/t/demo-hospital/dicomweb/studies").status_code in (200, 204)

    response = login(people.alice).post(USERS, {"action": "deactivate", "id": here.pk})
    assert response.status_code == 302
    assert toms.get("/t/demo-hospital/dicomweb/studies").status_code == 404
    assert toms.get("/t/second-hospital/dicomweb/studies").status_code in (200, 204)
    assert AuditEvent.objects.filter(
        tenant=people.demo, action=AuditAction.USER_DEACTIVATE, detail__member=tom.pk
    ).exists()
    page = login(people.alice).get(USERS).content.decode()
    assert "deactivated" in page

    record = DeactivatedMembership.objects.get(user=tom)
    response = login(people.alice).post(USERS, {"action": "reactivate", "id": record.pk})
    assert response.status_code == 302
    assert toms.get("/t/demo-hospital/dicomweb/studies").status_code in (200, 204)
    assert AuditEvent.objects.filter(
        tenant=people.demo, action=AuditAction.USER_REACTIVATE, detail__member=tom.pk
    ).exists()


def test_another_hospitals_admin_gets_not_found_for_our_rows(people):
    tom = User.objects.create_user("tom", password=people.password)
    membership = tenant_services.add_membership(
        user=tom, tenant=people.demo, role=Role.TECHNOLOGIST
    )
    before = state()
    charlie = login(people.charlie)
    assert charlie.get(USERS).status_code == 404
    assert charlie.post(USERS, {"action": "deactivate", "id": membership.pk}).status_code == 404
    # Nor through his own hospital's page, naming our membership's id.
    response = charlie.post(
        "/t/second-hospital/setup/users/", {"action": "deactivate", "id": membership.pk}
    )
    assert response.status_code == 404
    assert state() == before


def csv_file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("users.csv", text.encode(), content_type="text/csv")


def test_a_csv_is_imported_whole_and_importing_it_again_sends_nothing(people, mailoutbox):
    text = (
        "email,role,person_name\n"
        "tech@demo.example,technologist,\n"
        "welby@demo.example,Referring physician,WELBY^MARCUS\n"
    )
    client = login(people.alice)
    response = client.post(USERS, {"action": "import", "import-file": csv_file(text)})
    assert response.status_code == 302
    assert sorted(Invitation.objects.values_list("email", "role")) == [
        ("tech@demo.example", "technologist"),
        ("welby@demo.example", "referring_physician"),
    ]
    assert len(mailoutbox) == 2
    event = AuditEvent.objects.get(action=AuditAction.USERS_IMPORT)
    assert event.detail["invited"] == 2 and event.tenant_id == people.demo.pk
    client.post(USERS, {"action": "import", "import-file": csv_file(text)})
    assert Invitation.objects.count() == 2 and len(mailoutbox) == 2


def test_a_csv_with_a_bad_row_imports_nothing_and_names_the_lines(people, mailoutbox):
    text = (
        "email,role,person_name\n"
        "tech@demo.example,technologist,\n"
        "not-an-email,radiologist,\n"
        "x@demo.example,janitor,\n"
    )
    before = state()
    response = login(people.alice).post(USERS, {"action": "import", "import-file": csv_file(text)})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Line 3: email: enter a valid e-mail address." in body
    assert "Line 4: role: janitor is not one of" in body
    assert state() == before and not mailoutbox


def test_a_csv_without_its_columns_or_too_big_is_refused(people):
    client = login(people.alice)
    response = client.post(USERS, {"action": "import", "import-file": csv_file("a,b\n1,2\n")})
    assert response.status_code == 400
    assert "the columns email, role are missing" in response.content.decode()
    big = "email,role\n" + "x@demo.example,technologist\n" * 30000
    response = client.post(USERS, {"action": "import", "import-file": csv_file(big)})
    assert response.status_code == 400 and "larger than 512 KB" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_group_admin_manages_the_groups_members_only(people, mailoutbox):
    grace = User.objects.create_user("grace", password=people.password)
    tenant_services.add_membership(user=grace, group=people.group, role=Role.GROUP_ADMIN)
    client = login(grace)
    members = "/g/demo-readers/members/"
    page = client.get(members).content.decode()
    assert "bob" in page
    response = client.post(
        members,
        {"action": "invite", "invite-email": "rad@readers.example", "invite-role": "radiologist"},
    )
    assert response.status_code == 302
    assert Invitation.objects.get().group == people.group
    bad = client.post(
        members,
        {"action": "invite", "invite-email": "a@readers.example", "invite-role": "technologist"},
    )
    assert bad.status_code == 400 and Invitation.objects.count() == 1
    bob = Membership.objects.get(user=people.bob, group=people.group)
    assert client.post(members, {"action": "deactivate", "id": bob.pk}).status_code == 302
    assert not Membership.objects.filter(user=people.bob).exists()
    # The deactivation is written into the logs of the hospitals the group reads for.
    assert AuditEvent.objects.filter(
        action=AuditAction.USER_DEACTIVATE, tenant=people.demo, detail__member=people.bob.pk
    ).exists()
    for outsider in (people.alice, people.bob, people.charlie):
        assert login(outsider).get(members).status_code == 404


def test_the_users_page_costs_the_same_queries_for_many_users(
    people: Any, django_assert_max_num_queries: Any
) -> None:
    from tenants.onboarding import services

    for n in range(15):
        user = User.objects.create_user(f"user{n}", email=f"user{n}@demo.example")
        tenant_services.add_membership(user=user, tenant=people.demo, role=Role.TECHNOLOGIST)
        services.invite(
            target=people.demo, email=f"new{n}@demo.example", role=Role.RADIOLOGIST, actor=None
        )
    client = login(people.alice)
    with django_assert_max_num_queries(15):
        response = client.get(USERS)
    assert response.status_code == 200 and "user14" in response.content.decode()
