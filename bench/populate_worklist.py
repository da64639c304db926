"""Bulk rows for the worklist benchmark: a teleradiology platform's reading backlog.

    python -m bench.populate_worklist --database-url postgres://postgres@127.0.0.1:5432/DB \\
        [--items 100000] [--seed 4] [--tokens]

Writes straight into Skylight's PostgreSQL with ``COPY`` (no Django: the benchmarks speak SQL and
standard protocols only), laid out as ``worklists/services.py`` makes the rows:

- 20 tenants ``wl-hospital-01``… with jurisdictions (eight jurisdictions, some shared), sizes
  1× to 5× (1,700 to 8,300 items each at 100k);
- per item one ready Study of a Patient (2.5 items per patient on average) and a
  StudyLink, so the housekeeping's "every ready study has an item" finds nothing to do;
- items CT 30 %, MR 20 %, CR 35 %, US 15 %; priorities STAT 5 %, urgent 15 %, routine 80 % (the
  built-in classes); subspecialty ``neuro`` for CT/MR of head, brain and spine, ``msk`` for MR of
  the knee, general otherwise; 80 % scheduled, 5 % in progress (held by one of the radiologists
  under a lease that outlives the benchmark), 15 % completed. Open items arrived over the last
  three days, so most STAT and many routine items are overdue; those are marked escalated
  already, as the housekeeping would have done, so that it does not rewrite thousands of rows
  during the measurement;
- three reading groups with agreements: ``wl-teleread`` reads everything of tenants 1–12,
  ``wl-nighthawk`` CT/MR/CR of STAT and urgent items of tenants 7–20, ``wl-subspecialty`` CT/MR
  neuro and msk items of every tenant;
- 50 radiologists ``wlrad01``…``wlrad50``: 1–20 in teleread, 21–35 nighthawk, 36–50
  subspecialty, every fifth also in a second group, every tenth also a staff radiologist of one
  tenant; valid licences for five of the eight jurisdictions and an expired one for a sixth,
  privileges at three quarters of the tenants they could read for, with two to four modalities.
  Each sees 1,400 to 28,000 open items, median 9,900 (the benchmark records how many from the
  API's ``count``).

Every row derives from ``--seed``; running it again finds the tenants there and does nothing.
Then ``ANALYZE``. ``issue_tokens`` adds a fresh bearer token per radiologist (a token's secret is
shown once, so tokens are new on every run), as ``tenants.services.issue_token`` makes them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .common import say
from .populate import FAMILY, GIVEN, KINDS, PATIENT, STUDY, search_form

TENANTS = 20
RADIOLOGISTS = 50
JURISDICTIONS = ("US-CA", "US-NY", "US-TX", "US-FL", "US-WA", "GB", "DE-BY", "NL")
MODALITIES = {"CT": 0.30, "MR": 0.20, "CR": 0.35, "US": 0.15}
PRIORITIES = {"stat": 0.05, "urgent": 0.15, "routine": 0.80}
STATES = {"scheduled": 0.80, "in_progress": 0.05, "completed": 0.15}
BUILTIN = (("stat", "STAT", 60, 10), ("urgent", "Urgent", 240, 20),
           ("routine", "Routine", 24 * 60, 30))  # fmt: skip  # as worklists/services.py
NEURO_PARTS = {"HEAD", "BRAIN", "LSPINE"}
OPEN_SPAN = dt.timedelta(days=3)  # open items arrived within this
DONE_SPAN = dt.timedelta(days=30)  # completed items within this
LEASE_LEFT = dt.timedelta(hours=12)  # in-progress leases outlive any run (heartbeats renew them)
PREFIX = "wl-"
USER_PREFIX = "wlrad"
QUESTIONS = ("r/o PE", "follow-up known lesion", "trauma, r/o fracture", "staging", "pain",
             "r/o stroke", "post-op control", "")  # fmt: skip


@dataclass(frozen=True)
class Group:
    slug: str
    name: str
    tenants: tuple[int, ...]  # tenant numbers 1..20
    modalities: tuple[str, ...]  # empty: all
    subspecialties: tuple[str, ...]
    priority_codes: tuple[str, ...]


GROUPS = (
    Group("wl-teleread", "Teleread Partners", tuple(range(1, 13)), (), (), ()),
    Group("wl-nighthawk", "Nighthawk Radiology", tuple(range(7, 21)), ("CT", "MR", "CR"), (),
          ("stat", "urgent")),
    Group("wl-subspecialty", "Subspecialty Reads", tuple(range(1, 21)), ("CT", "MR"),
          ("neuro", "msk"), ()),
)  # fmt: skip


def tenant_slug(n: int) -> str:
    return f"{PREFIX}hospital-{n:02d}"


def username(n: int) -> str:
    return f"{USER_PREFIX}{n:02d}"


def usernames(count: int = RADIOLOGISTS) -> list[str]:
    return [username(n) for n in range(1, count + 1)]


# ---------------------------------------------------------------------------------------------
# The people: groups, radiologists, memberships, licences, privileges
# ---------------------------------------------------------------------------------------------


@dataclass
class Radiologist:
    n: int
    groups: list[int]  # indexes into GROUPS
    staff_of: int | None  # tenant number
    licences: list[tuple[str, dt.date | None]]  # jurisdiction, valid_to
    privileges: dict[int, tuple[list[str], list[str]]]  # tenant → (modalities, subspecialties)


def jurisdiction(tenant: int) -> str:
    return JURISDICTIONS[(tenant - 1) % len(JURISDICTIONS)]


def radiologists(rng: random.Random, today: dt.date) -> list[Radiologist]:
    people = []
    for n in range(1, RADIOLOGISTS + 1):
        groups = [0 if n <= 20 else 1 if n <= 35 else 2]
        if n % 5 == 0:
            groups.append((groups[0] + 1) % len(GROUPS))
        staff_of = (n % TENANTS) + 1 if n % 10 == 1 else None
        held = rng.sample(JURISDICTIONS, 5)
        licences: list[tuple[str, dt.date | None]] = [(j, None) for j in held]
        licences.append((rng.choice([j for j in JURISDICTIONS if j not in held]),
                         today - dt.timedelta(days=rng.randint(1, 300))))  # fmt: skip  # expired
        candidates = sorted({t for g in groups for t in GROUPS[g].tenants} | {staff_of or 1})
        privileges = {}
        for tenant in rng.sample(candidates, max(1, round(0.75 * len(candidates)))):
            modalities = sorted(rng.sample(list(MODALITIES), rng.randint(2, 4)))
            if 2 in groups:
                modalities = sorted({*modalities, "CT", "MR"})
                subs = ["neuro", "msk"]
            else:
                subs = ["neuro"] if rng.random() < 0.3 else []
            privileges[tenant] = (modalities, subs)
        people.append(Radiologist(n, groups, staff_of, licences, privileges))
    return people


# ---------------------------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------------------------


@dataclass
class ItemPlan:
    tenant: int  # number
    number: int  # within the tenant
    patient: int  # index into the tenant's patients (from 0)
    modality: str
    description: str
    body_part: str
    subspecialty: str
    priority: str
    state: str
    arrived: dt.datetime
    holder: int | None  # radiologist number
    question: str


def tenant_sizes(items: int) -> list[int]:
    weights = [1 + (t * 7) % 5 for t in range(TENANTS)]  # 1× to 5×, interleaved
    sizes = [items * w // sum(weights) for w in weights]
    sizes[0] += items - sum(sizes)
    return sizes


def subspecialty_of(modality: str, body_part: str) -> str:
    if modality in ("CT", "MR") and body_part in NEURO_PARTS:
        return "neuro"
    if modality == "MR" and body_part == "KNEE":
        return "msk"
    return ""


def plan_items(
    items: int, rng: random.Random, now: dt.datetime
) -> tuple[list[ItemPlan], list[int]]:
    """The items, and each tenant's number of patients."""
    plans: list[ItemPlan] = []
    patients: list[int] = []
    modalities, m_weights = zip(*MODALITIES.items(), strict=True)
    priorities, p_weights = zip(*PRIORITIES.items(), strict=True)
    states, s_weights = zip(*STATES.items(), strict=True)
    for t, size in enumerate(tenant_sizes(items), start=1):
        count = max(1, size * 2 // 5)  # 2.5 items per patient on average
        patients.append(count)
        for n in range(1, size + 1):
            modality = rng.choices(modalities, m_weights)[0]
            kind = KINDS[modality]
            which = rng.randrange(len(kind.descriptions))
            body_part = kind.body_parts[which % len(kind.body_parts)]
            state = rng.choices(states, s_weights)[0]
            span = DONE_SPAN if state == "completed" else OPEN_SPAN
            plans.append(
                ItemPlan(
                    tenant=t, number=n, patient=rng.randrange(count), modality=modality,
                    description=kind.descriptions[which], body_part=body_part,
                    subspecialty=subspecialty_of(modality, body_part),
                    priority=rng.choices(priorities, p_weights)[0], state=state,
                    arrived=now - span * rng.random(),
                    holder=rng.randint(1, RADIOLOGISTS) if state == "in_progress" else None,
                    question=rng.choice(QUESTIONS),
                )
            )  # fmt: skip
    return plans, patients


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

TENANT = ("id", "slug", "name", "is_active", "quiet_period_seconds", "jurisdiction", "created_at")
USER = ("id", "password", "is_superuser", "username", "first_name", "last_name", "email",
        "is_staff", "is_active", "date_joined", "display_name")  # fmt: skip
GROUP = ("id", "slug", "name", "is_active", "created_at")
MEMBERSHIP = ("id", "user_id", "tenant_id", "group_id", "role", "created_at")
AGREEMENT = ("id", "tenant_id", "group_id", "is_active", "modalities", "subspecialties",
             "priority_codes", "created_at")  # fmt: skip
LICENCE = ("id", "user_id", "jurisdiction", "number", "valid_from", "valid_to", "created_at")
PRIVILEGE = ("id", "user_id", "tenant_id", "modalities", "subspecialties", "valid_from",
             "valid_to", "granted_by_id", "created_at")  # fmt: skip
WORKITEM = ("id", "tenant_id", "key", "study_id", "patient_id", "accession_number",
            "patient_name", "patient_name_search", "patient_identifier", "study_description",
            "modality", "modalities", "body_part", "subspecialty", "clinical_question",
            "priority_id", "priority_rank", "arrived_at", "sla_due_at", "sla_paused_at",
            "sla_pause_reason", "escalated_at", "state", "reading_state", "holder_id",
            "lease_token", "lease_expires_at", "claimed_at", "assigned_to_id", "assigned_at",
            "preliminary_at", "final_at", "version", "created_at", "updated_at")  # fmt: skip
STUDYLINK = ("id", "item_id", "study_id")
TOKEN = ("user_id", "name", "prefix", "secret_hash", "created_at", "expires_at")
TABLES = {
    "tenants_tenant": TENANT, "tenants_user": USER, "tenants_readinggroup": GROUP,
    "tenants_membership": MEMBERSHIP, "tenants_readingagreement": AGREEMENT,
    "worklists_licence": LICENCE, "worklists_privilege": PRIVILEGE, "studies_patient": PATIENT,
    "studies_study": STUDY, "worklists_workitem": WORKITEM, "worklists_studylink": STUDYLINK,
    "tenants_apitoken": TOKEN,
}  # fmt: skip


def check_schema(conn: Any) -> None:
    """Fail clearly when the models gained a NOT NULL column without a default that is not filled
    here, or lost one that is (this file must follow the models)."""
    for table, columns in TABLES.items():
        rows = conn.execute(
            "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL "
            "AND is_identity = 'NO' FROM information_schema.columns WHERE table_name = %s",
            (table,),
        ).fetchall()
        if not rows:
            raise SystemExit(f"table {table} does not exist: run manage.py migrate first")
        if missing := {n for n, needed in rows if needed} - set(columns) - {"id"}:
            raise SystemExit(f"{table} has NOT NULL columns this file does not fill: {missing}")
        if gone := set(columns) - {n for n, _ in rows}:
            raise SystemExit(f"{table} no longer has columns {gone}: update this file")


def reserve(conn: Any, table: str, count: int) -> int:
    """Move the table's id sequence past a block of ``count`` ids; return the id before it."""
    conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
    top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    last, called = conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
    offset = max(top, last if called else last - 1)
    conn.execute("SELECT setval(%s, %s, true)", (sequence, offset + max(count, 1)))
    return int(offset)


def copy(conn: Any, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
    n = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def numbered(table: str, conn: Any, rows: list[tuple[Any, ...]]) -> list[int]:
    """COPY rows that lack their id (first column), ids from a reserved block; return the ids."""
    first = reserve(conn, table, len(rows)) + 1
    ids = list(range(first, first + len(rows)))
    copy(conn, table, ((i, *row) for i, row in zip(ids, rows, strict=True)))
    return ids


def builtin_priorities(conn: Any) -> dict[str, tuple[int, int, int]]:
    """code → (id, rank, SLA minutes) of the built-in classes, made if missing."""
    for code, name, minutes, rank in BUILTIN:
        conn.execute(
            "INSERT INTO worklists_priorityclass (tenant_id, code, name, sla_minutes, rank) "
            "SELECT NULL, %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM worklists_priorityclass "
            "WHERE tenant_id IS NULL AND code = %s)",
            (code, name, minutes, rank, code),
        )
    rows = conn.execute(
        "SELECT code, id, rank, sla_minutes FROM worklists_priorityclass WHERE tenant_id IS NULL"
    ).fetchall()
    return {code: (i, rank, minutes) for code, i, rank, minutes in rows}


def people_rows(conn: Any, rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    today = now.date()
    start = dt.date(2020, 1, 1)
    tenants = numbered(
        "tenants_tenant",
        conn,
        [
            (tenant_slug(t), f"Worklist Hospital {t:02d}", True, 120, jurisdiction(t), now)
            for t in range(1, TENANTS + 1)
        ],
    )
    groups = numbered("tenants_readinggroup", conn, [(g.slug, g.name, True, now) for g in GROUPS])
    numbered(
        "tenants_readingagreement",
        conn,
        [
            (tenants[t - 1], groups[g], True, json.dumps(list(group.modalities)),
             json.dumps(list(group.subspecialties)), json.dumps(list(group.priority_codes)), now)
            for g, group in enumerate(GROUPS)
            for t in group.tenants
        ],
    )  # fmt: skip
    people = radiologists(rng, today)
    users = numbered(
        "tenants_user",
        conn,
        [
            ("!bench-no-password", False, username(p.n), "Reader", f"{p.n:02d}",
             f"{username(p.n)}@example.org", False, True, now, f"Dr Reader {p.n:02d}")
            for p in people
        ],
    )  # fmt: skip
    memberships: list[tuple[Any, ...]] = []
    licences: list[tuple[Any, ...]] = []
    privileges: list[tuple[Any, ...]] = []
    for p, user in zip(people, users, strict=True):
        memberships += [(user, None, groups[g], "radiologist", now) for g in p.groups]
        if p.staff_of:
            memberships.append((user, tenants[p.staff_of - 1], None, "radiologist", now))
        licences += [
            (user, j, f"{j}-{p.n:04d}", start, valid_to, now) for j, valid_to in p.licences
        ]
        privileges += [
            (user, tenants[t - 1], json.dumps(mods), json.dumps(subs), start, None, None, now)
            for t, (mods, subs) in sorted(p.privileges.items())
        ]
    numbered("tenants_membership", conn, memberships)
    numbered("worklists_licence", conn, licences)
    numbered("worklists_privilege", conn, privileges)
    return {"tenants": tenants, "users": users}


def item_rows(
    conn: Any,
    plans: list[ItemPlan],
    patients: list[int],
    tenants: list[int],
    users: list[int],
    rng: random.Random,
    now: dt.datetime,
    seed: int,
) -> None:
    priorities = builtin_priorities(conn)
    patient_first = reserve(conn, "studies_patient", sum(patients)) + 1
    first_patient_of, names, patient_rows = {}, {}, []
    n = patient_first
    for t, count in enumerate(patients, start=1):
        first_patient_of[t] = n
        for k in range(count):
            name = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
            birth = now.date() - dt.timedelta(days=rng.randrange(365, 95 * 365))
            names[n] = (name, f"WL{t:02d}P{k + 1:07d}")
            patient_rows.append((n, tenants[t - 1], names[n][1], "", name, search_form(name),
                                 birth, rng.choice("FM"), now, now))  # fmt: skip
            n += 1
    copy(conn, "studies_patient", patient_rows)
    study_first = reserve(conn, "studies_study", len(plans)) + 1
    item_first = reserve(conn, "worklists_workitem", len(plans)) + 1
    link_first = reserve(conn, "worklists_studylink", len(plans)) + 1
    studies, items = [], []
    for i, p in enumerate(plans):
        tenant = tenants[p.tenant - 1]
        patient = first_patient_of[p.tenant] + p.patient
        name, patient_identifier = names[patient]
        accession = f"WL{p.tenant:02d}A{p.number:07d}"
        study_uid = (
            f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'skylight-bench-wl/{seed}/{accession}').int}"
        )
        received = p.arrived - dt.timedelta(minutes=3)
        studies.append((
            study_first + i, tenant, patient, study_uid, received.date(),
            received.time().replace(tzinfo=None), accession, "", str(p.number), p.description,
            "", "", f"\\{p.modality}\\", p.body_part, 1, 1, 500_000, "ready", p.arrived,
            p.arrived, received, received, received, p.arrived,
        ))  # fmt: skip
        priority_id, rank, minutes = priorities[p.priority]
        due = p.arrived + dt.timedelta(minutes=minutes)
        holder = users[p.holder - 1] if p.holder else None
        claimed = now - dt.timedelta(minutes=rng.randint(1, 20)) if holder else None
        done = p.state == "completed"
        final = min(due, now) - dt.timedelta(minutes=rng.randint(0, 30)) if done else None
        escalated = due + dt.timedelta(minutes=1) if not done and due < now else None
        items.append((
            item_first + i, tenant, f"acc:{accession}", study_first + i, patient, accession, name,
            search_form(name), patient_identifier, p.description, p.modality, p.modality,
            p.body_part, p.subspecialty, p.question, priority_id, rank, p.arrived, due, None, "",
            escalated, p.state, "final" if done else "claimed" if holder else "unread", holder,
            uuid.UUID(int=rng.getrandbits(128), version=4) if holder else None,
            now + LEASE_LEFT if holder else None, claimed, None, None, final, final,
            3 if done else 2 if holder else 1, p.arrived, final or claimed or p.arrived,
        ))  # fmt: skip
    copy(conn, "studies_study", studies)
    copy(conn, "worklists_workitem", items)
    copy(
        conn,
        "worklists_studylink",
        ((link_first + i, item_first + i, study_first + i) for i in range(len(plans))),
    )


def populate(database_url: str, items: int = 100_000, seed: int = 4) -> dict[str, Any]:
    """Write the rows unless the tenants are there already; ``ANALYZE``; return what was done."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        check_schema(conn)
        found = conn.execute(
            "SELECT count(*) FROM worklists_workitem w JOIN tenants_tenant t ON t.id = w.tenant_id "
            "WHERE t.slug LIKE %s",
            (f"{PREFIX}%",),
        ).fetchone()
        there = found[0] if found else 0
        if there:
            if there != items:
                raise SystemExit(
                    f"{there} worklist items of {PREFIX}* tenants are there already, not {items}:"
                    " use a fresh database"
                )
            say(f"{items} worklist items are there already")
            return {"items": items, "loaded": False, "seconds": 0.0, **sizes(conn)}
        rng = random.Random(f"skylight-bench-worklist/{seed}")
        now = dt.datetime.now(dt.UTC)
        plans, patients = plan_items(items, rng, now)
        say(f"populating {TENANTS} tenants, {RADIOLOGISTS} radiologists, {sum(patients)} "
            f"patients, {len(plans)} studies and work items")  # fmt: skip
        with conn.transaction():
            made = people_rows(conn, rng, now)
            item_rows(conn, plans, patients, made["tenants"], made["users"], rng, now, seed)
        for table in TABLES:
            conn.execute(f"ANALYZE {table}")
        result = {"items": items, "loaded": True, **sizes(conn)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    say(f"populated in {result['seconds']:.0f}s, analysed")
    return result


def sizes(conn: Any) -> dict[str, Any]:
    """What the benchmark's tenants hold, by state, modality and priority."""

    def counted(column: str) -> dict[str, int]:
        rows = conn.execute(
            f"SELECT {column}, count(*) FROM worklists_workitem w JOIN tenants_tenant t "
            "ON t.id = w.tenant_id JOIN worklists_priorityclass p ON p.id = w.priority_id "
            "WHERE t.slug LIKE %s GROUP BY 1 ORDER BY 1",
            (f"{PREFIX}%",),
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    per_tenant = counted("t.slug")
    return {
        "tenants": len(per_tenant),
        "items_per_tenant": {"min": min(per_tenant.values(), default=0),
                             "max": max(per_tenant.values(), default=0)},
        "by_state": counted("w.state"),
        "by_modality": counted("w.modality"),
        "by_priority": counted("p.code"),
        "by_subspecialty": counted("w.subspecialty"),
        "all_items_in_database": conn.execute(
            "SELECT count(*) FROM worklists_workitem"
        ).fetchone()[0],
    }  # fmt: skip


def execute(database_url: str, statements: list[str]) -> None:
    """Run statements (a candidate index, a setting) on the filled database, then ``ANALYZE``;
    ``{database}`` in a statement is the database's name (``ALTER DATABASE {database} SET …``)."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.replace("{database}", f'"{name}"'))
        conn.execute("ANALYZE")


def issue_tokens(database_url: str, names: list[str], days: int = 2) -> dict[str, str]:
    """A new bearer token for each user: ``sky_<prefix>_<secret>``, SHA-256 of the secret
    stored, as ``tenants.services.issue_token`` does (no audit row: this is set-up)."""
    import psycopg

    now = dt.datetime.now(dt.UTC)
    tokens: dict[str, str] = {}
    rows: list[tuple[Any, ...]] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids: dict[str, int] = dict(
            conn.execute(
                "SELECT username, id FROM tenants_user WHERE username = ANY(%s)", (names,)
            ).fetchall()
        )
        if missing := set(names) - set(ids):
            raise SystemExit(f"no users {sorted(missing)} in {database_url}")
        for name in names:
            prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            digest = hashlib.sha256(secret.encode()).hexdigest()
            rows.append((ids[name], "bench-worklist", prefix, digest, now,
                         now + dt.timedelta(days=days)))  # fmt: skip
            tokens[name] = f"sky_{prefix}_{secret}"
        copy(conn, "tenants_apitoken", rows)
    return tokens


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.populate_worklist",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--database-url", required=True, help="Skylight's PostgreSQL, migrated")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--tokens", action="store_true", help="print a fresh token per radiologist")
    args = p.parse_args(argv)
    print(json.dumps(populate(args.database_url, args.items, args.seed), indent=2))
    if args.tokens:
        for name, token in issue_tokens(args.database_url, usernames()).items():
            print(name, token)


if __name__ == "__main__":
    main()
