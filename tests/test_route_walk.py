"""Every URL pattern × every persona × three hospitals: allowed, or not found, never a leak.

The routes come from Django's resolver (tests/security/routes.py), so a route added anywhere
shows up here; a route without a rule in ``RULES`` fails the suite. Each persona asks every route
with the path parameters filled by real objects of two hospitals: one they belong to or read
for under a reading agreement (demo-hospital), and one they have no relation to
(third-hospital). The answer must be the rule's in the first, and "not found" in the second —
never 403 for another hospital's object, never 200 where the rule says no. Every body is also
searched for the patient names and UIDs of the hospitals the persona has no relation to.

GET checks reads. A route marked ``post`` is also POSTed by each persona the rule refuses, and
the database must be unchanged afterwards (audit rows of the refusal aside).

The rule table is the role matrix of docs/security.md, written as code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.test import Client

from tests.reports.conftest import (  # noqa: F401 - fixtures
    _sqlite_flush_may_empty_signed_versions,
    reading,
)
from tests.security.routes import Fill, Route, all_routes, hospital_objects

# Outcomes, within a hospital the persona belongs to or reads for. For another hospital's object
# (a rule with ``tenant_bound``) OK and NO both become NOT FOUND: 404 exactly.
OK = "ok"  # 2xx, or a redirect that is not to the sign-in page
NO = "no"  # refused in the persona's own hospital: 404, or 403 for a role the persona lacks
NF = "nf"  # 404 exactly
LOGIN = "login"  # anonymous: sent to sign in (302 to a login page), 401 or 403
GET_405 = "405"  # a state change asked with GET: "method not allowed" before any lookup
ANY = "any"  # the Django admin for staff: any answer but a server error or the sign-in page

PERSONAS = (
    "platform_admin",
    "tenant_admin",
    "group_admin",
    "radiologist",
    "referring",
    "technologist",
    "anonymous",
)
WRITERS_OF_ITEMS = ("tenant_admin", "group_admin", "radiologist")


@dataclass(frozen=True)
class Rule:
    """The expected GET answer per persona in a related hospital; ``writers`` are the personas
    that may POST (a POST rule is tried by everyone else, and by everyone on another hospital's
    object, and must change nothing)."""

    answers: dict[str, str]
    tenant_bound: bool = True  # the path names a hospital's object, or the hospital itself
    writers: tuple[str, ...] | None = None  # None: not a state change
    method: str = "POST"  # the state change tried by those who may not

    def __call__(self, persona: str, *, related: bool) -> str:
        answer = self.answers[persona]
        if not related and self.tenant_bound and answer in (OK, NO):
            return NF
        return answer


def rule(
    *,
    platform_admin: str = NF,
    tenant_admin: str = NO,
    group_admin: str = NO,
    radiologist: str = NO,
    referring: str = NO,
    technologist: str = NO,
    anonymous: str = LOGIN,
    tenant_bound: bool = True,
    writers: tuple[str, ...] | None = None,
    method: str = "POST",
) -> Rule:
    answers = {
        "platform_admin": platform_admin,
        "tenant_admin": tenant_admin,
        "group_admin": group_admin,
        "radiologist": radiologist,
        "referring": referring,
        "technologist": technologist,
        "anonymous": anonymous,
    }
    return Rule(answers=answers, tenant_bound=tenant_bound, writers=writers, method=method)


def public() -> Rule:
    """Anyone, signed in or not: nothing of a hospital behind it."""
    return rule(**dict.fromkeys(PERSONAS, OK), tenant_bound=False)


def signed_in() -> Rule:
    """Any signed-in user; the page lists only what the user may see (checked for leaks)."""
    return rule(**dict.fromkeys(PERSONAS[:-1], OK), tenant_bound=False)


def reader(*, technologist: str = NO, referring: str = NO, group_admin: str = OK) -> Rule:
    """A work item, its report or its panels: the hospital's admin and the radiologists (and
    group admins) reading for it under an agreement."""
    return rule(
        tenant_admin=OK,
        group_admin=group_admin,
        radiologist=OK,
        technologist=technologist,
        referring=referring,
    )


def images() -> Rule:
    """Images and their metadata (DICOMweb, the studies API): who may read the hospital's
    studies in full. A referring physician reaches their patients' images through the portal,
    not through the hospital-wide search."""
    return reader(technologist=OK)


def images_and_referrer_search() -> Rule:
    return reader(technologist=OK, referring=OK)


def hospital_admin() -> Rule:
    """Settings and pages of the hospital's administration."""
    return rule(tenant_admin=OK)


def action(
    writers: tuple[str, ...] = WRITERS_OF_ITEMS, *, anonymous: str = LOGIN, method: str = "POST"
) -> Rule:
    """A state change (no GET): GET is 405 for everyone signed in."""
    answers = dict.fromkeys(PERSONAS[:-1], GET_405)
    return rule(**answers, anonymous=anonymous, writers=writers, method=method)


def admin_site() -> Rule:
    """The Django admin: platform staff only; everyone else is sent to its sign-in page."""
    return rule(platform_admin=ANY, **dict.fromkeys(PERSONAS[1:-1], LOGIN), tenant_bound=False)


ITEM_ACTIONS = ("claim", "heartbeat", "release", "reassign", "decline", "pause", "resume")
ITEM_ACTIONS += ("priority", "cancel")

RULES: dict[str, Rule] = {
    # The front door
    "home": signed_in(),
    "healthz": public(),
    "login": public(),
    "logout": rule(**dict.fromkeys(PERSONAS, GET_405), tenant_bound=False),  # POST only
    "api-schema": public(),
    "api-me": signed_in(),
    # Studies API and DICOMweb (tenant in the path)
    "api-studies": images(),
    "api-study": images(),
    "api-receipts": hospital_admin(),
    **{
        name: images()
        for name in (
            "dicomweb-study-series",
            "dicomweb-study-instances",
            "dicomweb-series-instances",
            "dicomweb-study",
            "dicomweb-study-metadata",
            "dicomweb-study-rendered",
            "dicomweb-study-thumbnail",
            "dicomweb-series",
            "dicomweb-series-metadata",
            "dicomweb-series-rendered",
            "dicomweb-series-thumbnail",
            "dicomweb-instance",
            "dicomweb-instance-metadata",
            "dicomweb-instance-rendered",
            "dicomweb-instance-thumbnail",
            "dicomweb-instance-bulkdata",
            "dicomweb-frames",
            "dicomweb-frames-rendered",
            "dicomweb-frames-thumbnail",
        )
    },  # fmt: skip
    # Searches answer a referring physician with their own patients' studies only.
    **{
        name: images_and_referrer_search()
        for name in ("dicomweb-studies", "dicomweb-series-search", "dicomweb-instances-search")
    },
    "dicomweb-not-found": rule(**dict.fromkeys(PERSONAS[:-1], NF)),
    # Worklist API
    "worklist-api-items": signed_in(),
    "worklist-api-item": reader(),
    **{f"api/worklist/items/<int:item_id>/{a}/": action() for a in ITEM_ACTIONS},
    "worklist-api-views": signed_in(),
    "api/worklist/views/counts/": signed_in(),
    # A saved view is its owner's (bob's, the radiologist's) alone.
    "api/worklist/views/<int:view_id>/": action(("radiologist",), method="DELETE"),
    "worklist-api-metrics": signed_in(),
    "worklist-licence-list": signed_in(),
    # Licences belong to people, not hospitals: bob's is seen by bob and his group's admin.
    "worklist-licence-detail": rule(
        group_admin=OK, radiologist=OK, writers=("group_admin",), method="DELETE"
    ),
    "worklist-privilege-detail": rule(
        tenant_admin=OK,
        group_admin=OK,
        radiologist=OK,
        writers=("group_admin", "tenant_admin"),
        method="DELETE",
    ),
    "worklist-privilege-list": signed_in(),
    # Reports API
    "reports-api:item": reader(),
    **{
        f"reports-api:{n}": action()
        for n in (
            "draft",
            "sign",
            "finalise",
            "change",
            "revise",
            "review",
        )
    },  # fmt: skip
    "reports-api:review:queue": signed_in(),
    # A review request: the reviewer (bob here: any radiologist of the hospital may validate).
    "reports-api:review:request": rule(radiologist=OK),
    "reports-api:review:validate": action(("radiologist",)),
    "reports-api:review:return": action(("radiologist",)),
    "reports-api:review:cancel": action(("radiologist", "tenant_admin")),
    "reports-api:review:policy": rule(tenant_admin=OK, writers=("tenant_admin",), method="PUT"),
    "reports-api:templating:item": reader(),
    "reports-api:templating:detail": reader(technologist=OK),
    "reports-api:templating:fill": action((*WRITERS_OF_ITEMS, "technologist")),
    "reports-api:templating:export": reader(technologist=OK),
    # A signed report goes to its referring physician too.
    "reports-api:delivery:version-deliveries": reader(referring=OK),
    "reports-api:delivery:hl7": reader(referring=OK),
    "reports-api:delivery:retry": action(WRITERS_OF_ITEMS),
    "reports-api:delivery:fhir": reader(referring=OK),
    "reports-api:delivery:fhir-version": reader(referring=OK),
    "reports-api:collab:consults": reader(),
    "reports-api:collab:comments": reader(),
    "reports-api:collab:accept": action(("radiologist",)),
    "reports-api:collab:revoke": action(("radiologist", "tenant_admin", "group_admin")),
    "reports-api:collab:notifications": signed_in(),
    "reports-api:collab:notifications-read": rule(
        **dict.fromkeys(PERSONAS[:-1], GET_405), tenant_bound=False
    ),
    "reports-api:critical:open": signed_in(),
    "reports-api:critical:item": reader(),
    "reports-api:critical:communicate": action(),
    # The acknowledgement link's token is the capability; an unknown token is 404 (page) or
    # refused for GET (API).
    "reports-api:critical:ack": rule(**dict.fromkeys(PERSONAS, GET_405), tenant_bound=False),
    "reports-api:critical:settings": reader(technologist=OK),
    "reports-api:evidence:item": reader(),
    # Worklist pages
    "worklists:list": signed_in(),
    "worklists:save-view": rule(**dict.fromkeys(PERSONAS[:-1], GET_405), tenant_bound=False),
    "worklists:delete-view": action(("radiologist",)),
    "worklists:dashboard": signed_in(),
    "worklists:item": reader(),
    "worklists:heartbeat": action(),
    "worklists:item-action": action(),
    # Report pages
    "reports:results": signed_in(),
    # A final report: the hospital's admin and the referring physician of the study (readers
    # use the reading room, where the report is part of the item).
    "reports:result": rule(tenant_admin=OK, referring=OK),
    "reports:review:queue": signed_in(),
    "reports:review:policy": rule(tenant_admin=OK, tenant_bound=False),
    "reports:review:detail": rule(radiologist=OK),
    "reports:review:decide": action(("radiologist",)),
    "reports:templating:panel": reader(),
    "reports:templating:manage": signed_in(),
    "reports:templating:template-new": hospital_admin(),
    "reports:templating:template-import": action(("tenant_admin",)),
    "reports:templating:block-new": hospital_admin(),
    "reports:templating:template-edit": hospital_admin(),
    "reports:templating:template-active": action(("tenant_admin",)),
    "reports:templating:template-export": hospital_admin(),
    "reports:templating:block-edit": hospital_admin(),
    "reports:templating:block-active": action(("tenant_admin",)),
    "reports:delivery:panel": reader(),
    "reports:delivery:pdf": reader(referring=OK),
    "reports:delivery:retry": action(WRITERS_OF_ITEMS),
    "reports:delivery:settings-index": rule(tenant_admin=OK, tenant_bound=False),
    "reports:delivery:settings": hospital_admin(),
    "reports:collab:panel": reader(),
    "reports:collab:ask": action(),
    "reports:collab:comment": action(),
    "reports:collab:mentionable": reader(),
    "reports:collab:consult-action": action(("radiologist", "tenant_admin", "group_admin")),
    "reports:collab:notifications": signed_in(),
    "reports:collab:badge": signed_in(),
    "reports:collab:read": rule(**dict.fromkeys(PERSONAS[:-1], GET_405), tenant_bound=False),
    "reports:critical:dashboard": signed_in(),
    "reports:critical:panel": reader(),
    "reports:critical:flag": action(),
    "reports:critical:communicate": action(),
    "reports:critical:ack": rule(**dict.fromkeys(PERSONAS, NF), tenant_bound=False),
    "reports:evidence:panel": reader(),
    # The viewer: its shell is static; what it shows comes through DICOMweb above.
    "viewer:app-config": signed_in(),
    "viewer:init-service-worker": public(),
    "viewer:service-worker": public(),
    # The referring physician has the viewer read-only, for their own patients' studies.
    **{
        name: rule(**dict.fromkeys(PERSONAS[1:-1], OK), tenant_bound=False)
        for name in ("viewer:home", "viewer:page")
    },
    # Authentication (engineer auth): the signed-in user's own settings and tokens.
    "mfa-verify": signed_in(),
    "mfa-enrol": signed_in(),
    "password-change": signed_in(),
    "security-policy": hospital_admin(),
    "tokens": signed_in(),
    "api-tokens": signed_in(),
    # A token is its owner's (bob's) alone.
    "token-revoke": action(("radiologist",)),
    "api-token-revoke": action(("radiologist",)),
    # Audit (engineer audit): the hospital's admin reads and exports its own log.
    "audit-api:events": rule(platform_admin=NO, tenant_admin=OK, tenant_bound=False),
    "audit-api:export": rule(platform_admin=NO, tenant_admin=OK, tenant_bound=False),
    # "Which patients did U access": without a user or token and a period it is a 400.
    "audit-api:patients": rule(platform_admin=NO, tenant_admin="400", tenant_bound=False),
    "audit:log": rule(platform_admin=NO, tenant_admin=OK, tenant_bound=False),
    "audit:export": rule(**dict.fromkeys(PERSONAS[:-1], GET_405), tenant_bound=False),
    "audit:break-glass": rule(tenant_admin=OK, writers=("tenant_admin",)),
    # The referring physician acknowledges a critical result of their patient.
    "reports:acknowledge-critical": action(("referring",)),
    # Share links (engineer share): managed by the hospital's admin; opened by the token alone.
    # Walked here with a token and a link id that do not exist (404 for everyone); real links
    # are tested in tests/sharing.
    # Whoever reads the hospital's images may share them.
    "sharing:links": images(),
    "sharing:new": images(),
    "sharing:grants": hospital_admin(),
    "sharing:revoke": action(("tenant_admin",)),
    **{
        name: rule(**dict.fromkeys(PERSONAS, NF), tenant_bound=False)
        for name in ("sharing:open", "sharing:app-config", "sharing:download")
    },
    # -- Onboarding (tenants/onboarding): platform, invitations, the wizard, users --
    # The platform console: staff only; for everyone else signed in it does not exist.
    "onboarding:platform": rule(
        platform_admin=OK,
        **dict.fromkeys(PERSONAS[1:-1], NF),
        tenant_bound=False,
        writers=("platform_admin",),
    ),
    # Walked with a token nobody was sent: 404 for everyone (real invitations are tested in
    # tests/tenants/onboarding).
    "onboarding:invite-accept": rule(**dict.fromkeys(PERSONAS, NF), tenant_bound=False),
    "onboarding:overview": hospital_admin(),
    "onboarding:details": rule(tenant_admin=OK, writers=("tenant_admin",)),
    "onboarding:users": rule(tenant_admin=OK, writers=("tenant_admin",)),
    # The logo is shown to the hospital's own staff (both hospitals have one in the walk).
    "onboarding:logo": rule(tenant_admin=OK, referring=OK, technologist=OK),
    "onboarding:group-members": rule(group_admin=OK, writers=("group_admin",)),
    # -- end onboarding --
    # -- DICOM set-up (tenants/dicomconfig) --
    # The hospital's admin alone; changes are POSTs of the same pages.
    "dicomconfig:dicom": rule(tenant_admin=OK, writers=("tenant_admin",)),
    "dicomconfig:dicom-status": hospital_admin(),
    "dicomconfig:destinations": rule(tenant_admin=OK, writers=("tenant_admin",)),
    # The connection test C-ECHOes a registered node (walked with a port nothing listens on).
    "dicomconfig:echo": action(("tenant_admin",)),
    # -- end dicomconfig --
    # -- Group administration and agreements (worklists/groupadmin), retention --
    # The hospital contracts reading groups and sets its retention: its admins only.
    "groupadmin:hospital-agreements": rule(tenant_admin=OK, writers=("tenant_admin",)),
    "retention:settings": rule(tenant_admin=OK, writers=("tenant_admin",)),
    # A reading group's pages: its group admins only (grace of demo-readers; third-readers is
    # zoe's, so grace gets 404 there). The hospitals' admins see their own agreements page.
    "groupadmin:home": rule(group_admin=OK),
    "groupadmin:credentials": rule(group_admin=OK, writers=("group_admin",)),
    "groupadmin:shifts": rule(group_admin=OK, writers=("group_admin",)),
    "groupadmin:agreements": rule(group_admin=OK),
    # -- end groupadmin --
    # -- De-identification (studies/deid) and share-link settings --
    "deid:settings": hospital_admin(),
    # -- end deid --
    # -- Usage, health and metrics (tenants/usage) --
    "usage:tenant": hospital_admin(),
    # A group's admin, for the group they administer (the walk's third-readers is not grace's).
    "usage:group": rule(group_admin=OK),
    "usage:platform": rule(platform_admin=OK, tenant_bound=False),
    # Operators' metrics: no token is set in tests and the test client calls from loopback;
    # tests/tenants/usage/test_metrics.py checks the refusals. Slugs only, no patient data.
    "usage:metrics": public(),
    # -- end usage --
    # -- Row-level security and scoped tokens --
    # -- end rls --
}


def rule_for(route: Route) -> Rule | None:
    if route.key.startswith("sharing:dicomweb:"):
        # DICOMweb under a share token: an unknown token is 404 for everyone.
        return rule(**dict.fromkeys(PERSONAS, NF), tenant_bound=False)
    if route.key in ("admin:login", "admin:logout"):
        return rule(**dict.fromkeys(PERSONAS, ANY), tenant_bound=False)
    if route.template.startswith("admin/"):
        return admin_site()
    return RULES.get(route.key)


# ---------------------------------------------------------------------------------------------
# The world: three hospitals, a persona of each kind, real objects to name
# ---------------------------------------------------------------------------------------------

ACTIONS = {
    "worklists:item-action": "release",
    "reports:review:decide": "validate",
    "reports:collab:consult-action": "accept",
}
ADMIN_VALUES = {"object_id": "1", "app_label": "tenants", "id": "1", "content_type_id": "1"}
# Per admin app: ids of real objects the world makes (filled by the ``world`` fixture).
ADMIN_OBJECTS: dict[str, dict[str, str]] = {}


@dataclass
class World:
    clients: dict[str, Client]
    missing: Fill  # ids and UIDs of nothing, in a hospital that does not exist
    related: Fill  # demo-hospital: own hospital, or read under an agreement
    unrelated: Fill  # third-hospital: nobody here but its own staff
    per_user: dict[str, dict[str, str]]  # objects that belong to a user, by fill name


@pytest.fixture
def world(reading: Any) -> World:  # noqa: F811 - the fixture imported above
    from tenants import services
    from tenants.models import Role, User
    from worklists.models import Licence, Privilege, SavedView

    people = reading.people
    start = date(2020, 1, 1)
    third = services.create_tenant(slug="third-hospital", name="Third Hospital")
    zoe = User.objects.create_user("zoe", password=reading.password)
    services.add_membership(user=zoe, tenant=third, role=Role.TENANT_ADMIN)
    root = User.objects.create_superuser("root", password=reading.password)
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for app, device_model in (("otp_totp", TOTPDevice), ("otp_static", StaticDevice)):
        device = device_model.objects.create(user=root, name="walk", confirmed=False)
        ADMIN_OBJECTS[app] = dict.fromkeys(("object_id", "id", "pk"), str(device.pk))
    rita = User.objects.create_user("rita", password=reading.password, person_name="REFERRER^RITA")
    services.add_membership(user=rita, tenant=people.demo, role=Role.REFERRING_PHYSICIAN)
    tom = User.objects.create_user("tom", password=reading.password)
    services.add_membership(user=tom, tenant=people.demo, role=Role.TECHNOLOGIST)

    related = hospital_objects(
        people.demo, dicom_file="CT_small.dcm", reader=reading.bob, marker="DEMO"
    )
    unrelated = hospital_objects(third, dicom_file="MR_small.dcm", reader=zoe, marker="THIRD")
    related.values["view_id"] = str(SavedView.objects.create(owner=reading.bob, name="Mine").pk)
    unrelated.values["view_id"] = str(SavedView.objects.create(owner=zoe, name="Hers").pk)
    # Licences belong to people and privileges to (person, hospital): bob's, and zoe's.
    related.values["licence"] = str(Licence.objects.filter(user=reading.bob).first().pk)
    related.values["privilege"] = str(
        Privilege.objects.filter(user=reading.bob, tenant=people.demo).first().pk
    )
    unrelated.values["licence"] = str(
        Licence.objects.create(user=zoe, jurisdiction="US-TX", number="TX-9", valid_from=start).pk
    )
    unrelated.values["privilege"] = str(
        Privilege.objects.create(user=zoe, tenant=third, modalities=["CT"], valid_from=start).pk
    )
    users = {
        "platform_admin": root,
        "tenant_admin": people.alice,
        "group_admin": reading.grace,
        "radiologist": reading.bob,
        "referring": rita,
        "technologist": tom,
    }
    clients = {}
    for persona, user in users.items():
        client = Client()
        client.force_login(user)
        clients[persona] = client
    clients["anonymous"] = Client()
    from tenants.services import issue_token

    related.values["token_id"] = str(issue_token(user=reading.bob, name="walk")[0].pk)
    unrelated.values["token_id"] = str(issue_token(user=zoe, name="walk")[0].pk)
    for fill in (related, unrelated):
        fill.values.update(fmt="csv", link_id="999999999", share_token="no-such-share-token")
    # Reading groups: demo-readers reads for demo-hospital (grace is its admin, bob a member);
    # third-readers belongs to the third hospital's world, where nobody of ours is.
    from tenants.models import ReadingGroup

    third_readers = ReadingGroup.objects.create(slug="third-readers", name="Third Readers")
    services.add_membership(user=zoe, group=third_readers, role=Role.GROUP_ADMIN)
    related.values["group_slug"] = "demo-readers"
    unrelated.values["group_slug"] = third_readers.slug
    # -- fills of onboarding --
    from tests.tenants.onboarding.helpers import give_logo

    give_logo(people.demo)
    give_logo(third)
    # -- fills of dicomconfig --
    from tests.conftest import free_port

    for fill, hospital in ((related, people.demo), (unrelated, third)):
        node = services.register_destination(
            tenant=hospital, ae_title="WALKPACS", host="127.0.0.1", port=free_port()
        )
        fill.values["destination_id"] = str(node.pk)
    # -- fills of groupadmin --
    # -- fills of deid --
    # -- fills of usage --
    nothing = {k: ("999999999" if v.isdigit() else v) for k, v in related.values.items()}
    nothing.update(tenant_slug="no-such-hospital", slug="no-such-hospital", owner="t-999999999")
    nothing.update(group_slug="no-such-group")
    nothing.update(study_uid="2.25.9", series_uid="2.25.99", instance_uid="2.25.999")
    missing = Fill(tenant=None, values=nothing)
    return World(
        clients=clients, missing=missing, related=related, unrelated=unrelated, per_user={}
    )


def url_of(route: Route, fill: Fill) -> str:
    from django.urls import NoReverseMatch, reverse

    if route.template.startswith("admin/"):
        # Admin pages name objects by id; a device's own pages (django-otp's QR code) need a
        # device that exists, whatever ids earlier tests used.
        values = {**ADMIN_VALUES, **ADMIN_OBJECTS.get(route.template.split("/")[1], {})}
        if not route.key.startswith("admin:"):
            return "/" + route.template.replace("<path:object_id>", values["object_id"])
        try:
            return reverse(route.key, kwargs={p: values.get(p, "1") for p in route.parameters})
        except NoReverseMatch:
            return ""
    overrides = {"action": ACTIONS[route.key]} if route.key in ACTIONS else {}
    if route.key == "worklist-licence-detail":
        overrides["pk"] = fill.values["licence"]
    if route.key == "worklist-privilege-detail":
        overrides["pk"] = fill.values["privilege"]
    return fill.path(route, overrides)


def outcome(response: Any) -> str:
    code = response.status_code
    if code in (301, 302, 303, 307, 308):
        location = response.get("Location", "")
        return "login" if "login" in location else "ok"
    if code < 300:
        return "ok"
    return str(code)


def matches(expected: str, got: str) -> bool:
    if expected == ANY:
        return got != "login" and not got.startswith("5")
    allowed = {OK: {"ok"}, NO: {"404", "403"}, NF: {"404"}, LOGIN: {"login", "401", "403"}}
    return got in allowed.get(expected, {expected})


def body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def test_every_route_has_a_rule() -> None:
    routes = all_routes()
    assert len(routes) > 100, "the resolver walk found too few routes"
    missing = [f"new route without a rule: {r.key}" for r in routes if rule_for(r) is None]
    known = {r.key for r in routes}
    stale = [f"rule for a route that no longer exists: {k}" for k in RULES if k not in known]
    assert not missing + stale, "\n".join(missing + stale)


def test_every_route_for_every_persona_in_three_hospitals(world: World) -> None:
    """GET every route as every persona, naming objects of a hospital the persona belongs to
    (or reads for) and of one they have no relation to."""
    failures = []
    asked = 0
    for route in all_routes():
        expected_rule = rule_for(route)
        assert expected_rule is not None, f"new route without a rule: {route.key}"
        fills = [(True, world.related)]
        if route.parameters and expected_rule.tenant_bound:
            fills.append((False, world.unrelated))
        for related, fill in fills:
            url = url_of(route, fill)
            assert url, f"cannot make a URL for {route.key}"
            for persona in PERSONAS:
                response = world.clients[persona].get(url)
                asked += 1
                got = outcome(response)
                expected = expected_rule(persona, related=related)
                where = "own/agreement" if related else "another hospital's"
                if not matches(expected, got):
                    failures.append(f"{route.key} as {persona}, {where}: {got}, want {expected}")
                body = body_of(response)
                leaked = [m for m in world.unrelated.markers if m.encode() in body]
                if leaked:
                    failures.append(f"{route.key} as {persona}: third-hospital data in the body")
    assert asked > 1000
    assert not failures, "\n".join(failures)


def database_fingerprint() -> list[tuple[str, list[str]]]:
    """Every row of every table but the audit trail and sessions (a refusal is audited) and
    what background derivation writes."""
    from django.apps import apps

    skip = {"tenants.auditevent", "sessions.session", "admin.logentry"}
    # Derivation (series metadata, thumbnails) of the ingested instances runs in the Celery
    # worker meanwhile and writes these; no state change walked here touches them.
    skip |= {"studies.instance", "studies.seriesderived"}
    state = []
    for model in apps.get_models():
        if model._meta.label_lower in skip or model._meta.proxy or not model._meta.managed:
            continue
        rows = sorted(repr(row) for row in model._default_manager.values_list())
        state.append((model._meta.label_lower, rows))
    return state


def test_a_state_change_without_permission_is_refused_and_changes_nothing(world: World) -> None:
    """POST (or PUT, DELETE) every state change: another hospital's object is 404 for everyone;
    in the persona's own hospital a persona without the right is refused (403 or 404). A body
    refused before any lookup (400 for an empty body) is accepted when the answer is the same
    as for an object that does not exist: it then says nothing about the object."""
    before = database_fingerprint()
    failures = []
    for route in all_routes():
        expected_rule = rule_for(route)
        if expected_rule is None or expected_rule.writers is None:
            continue
        for related, fill in ((True, world.related), (False, world.unrelated)):
            url = url_of(route, fill)
            for persona in PERSONAS:
                if related and persona in expected_rule.writers:
                    continue
                client = world.clients[persona]
                response = client.generic(
                    expected_rule.method, url, b"{}", content_type="application/json"
                )
                got = outcome(response)
                if got not in ("403", "404", "login"):
                    nothing = client.generic(
                        expected_rule.method,
                        url_of(route, world.missing),
                        b"{}",
                        content_type="application/json",
                    )
                    if outcome(nothing) == got:
                        continue
                if persona == "anonymous":
                    expected = LOGIN
                else:
                    expected = NO if related else NF
                if not matches(expected, got):
                    where = "own/agreement" if related else "another hospital's"
                    failures.append(f"POST {route.key} as {persona}, {where}: {got}")
    assert not failures, "\n".join(failures)
    after = database_fingerprint()
    changed = [
        name
        for (name, rows), (_, rows_after) in zip(before, after, strict=True)
        if rows != rows_after
    ]
    assert not changed, f"refused POSTs changed these tables: {changed}"
