"""Bulk index rows for the query benchmarks: a hospital's archive without its files.

    python -m bench.populate --database-url postgres://postgres@127.0.0.1:5432/DB \\
        [--tenant demo-hospital] [--studies 10000] [--instances 1000000] [--seed 1]

Writes Receipt, Patient, Study, Series and Instance rows straight into Skylight's PostgreSQL
tables with ``COPY`` (no Django, no management command: the benchmarks speak SQL and standard
protocols only), laid out as ``studies/services.py`` indexes a real object: every NOT NULL column
filled, the name search columns as ``search_form`` makes them, ``modalities_in_study`` as
``\\CT\\MR\\``, study and series counts and sizes that add up, receipts ``indexed``. Then
``ANALYZE``. No object exists behind these rows: they are for queries, never for retrieves.

The archive looks like a general hospital's over ten years: studies by modality CR 32 %,
US 18 %, CT 22 %, DX 14 %, MR 14 % (3 % of studies add a series of a second modality), about three
series per study (CT: a localizer and reconstructions; MR: several sequences), patients with one
to eight studies (2.6 on average), names with accents, dates spread over ten years. Instance
counts are scaled so that the total is exactly ``--instances``.

Every row is derived from ``--seed`` and ``--prefix``; PatientIDs are ``<prefix>P0000001``…,
accession numbers ``<prefix>A00000001``…. Running it again with the same seed and prefix finds the
rows there and does nothing. ``patient_ids()`` gives the IDs to query for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .common import say

CALLED_AE = "DEMOHOSP"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@dataclass(frozen=True)
class Kind:
    """How a modality's studies and images look."""

    share: float  # of studies
    series: tuple[int, int]  # series per study (inclusive)
    images: tuple[int, int]  # images per series before scaling (inclusive)
    sop_class: str
    rows: int
    columns: int
    bits: tuple[int, int]  # allocated, stored
    photometric: str
    samples: int
    syntaxes: tuple[str, ...]
    descriptions: tuple[str, ...]
    series_names: tuple[str, ...]
    body_parts: tuple[str, ...]
    stations: tuple[str, ...]
    scales: bool  # instance counts scaled to reach the total (cross-sectional series)


KINDS: dict[str, Kind] = {
    "CR": Kind(
        0.32, (1, 3), (1, 2), "1.2.840.10008.5.1.4.1.1.1", 2500, 2048, (16, 12), "MONOCHROME1",
        1, (EXPLICIT_LE, J2K_LOSSLESS), ("CHEST PA AND LATERAL", "KNEE 3 VIEWS", "HAND LEFT",
        "PELVIS AP", "SPINE LUMBAR 2 VIEWS"), ("PA", "LAT", "AP", "OBLIQUE"),
        ("CHEST", "KNEE", "HAND", "PELVIS", "LSPINE"), ("CR01", "CR02", "CRER"), False,
    ),
    "DX": Kind(
        0.14, (1, 3), (1, 2), "1.2.840.10008.5.1.4.1.1.1.1", 3000, 3000, (16, 14), "MONOCHROME2",
        1, (EXPLICIT_LE, JPEG_LS), ("CHEST PA", "FOOT 3 VIEWS", "WRIST 2 VIEWS", "ABDOMEN"),
        ("PA", "LAT", "AP", "OBLIQUE"), ("CHEST", "FOOT", "WRIST", "ABDOMEN"), ("DR01", "DRER"),
        False,
    ),
    "US": Kind(
        0.18, (1, 3), (1, 40), "1.2.840.10008.5.1.4.1.1.6.1", 600, 800, (8, 8), "YBR_FULL_422",
        3, (JPEG_BASELINE,), ("US ABDOMEN COMPLETE", "US THYROID", "US OBSTETRIC", "US RENAL"),
        ("ABDOMEN", "THYROID", "OB", "KIDNEYS"), ("ABDOMEN", "NECK", "PELVIS", "KIDNEY"),
        ("US01", "US02"), False,
    ),
    "CT": Kind(
        0.22, (2, 6), (80, 600), "1.2.840.10008.5.1.4.1.1.2", 512, 512, (16, 12), "MONOCHROME2",
        1, (EXPLICIT_LE, EXPLICIT_LE, JPEG_LS), ("CT HEAD WITHOUT CONTRAST",
        "CT CHEST WITH CONTRAST", "CT ABDOMEN PELVIS WITH CONTRAST", "CT ANGIO CHEST",
        "CT CHEST LOW DOSE SCREENING"), ("AXIAL 5MM", "AXIAL 1.25MM", "CORONAL 3MM",
        "SAGITTAL 3MM", "BONE 1MM"), ("HEAD", "CHEST", "ABDOMEN", "CHEST", "CHEST"),
        ("CT01", "CT02"), True,
    ),
    "MR": Kind(
        0.14, (3, 8), (20, 200), "1.2.840.10008.5.1.4.1.1.4", 256, 256, (16, 12), "MONOCHROME2",
        1, (EXPLICIT_LE,), ("MRI BRAIN WITHOUT CONTRAST", "MRI KNEE RIGHT", "MRI LUMBAR SPINE",
        "MRI PROSTATE"), ("T1 SAG", "T2 AX", "FLAIR AX", "DWI", "T1 POST AX", "PD FS COR"),
        ("BRAIN", "KNEE", "LSPINE", "PROSTATE"), ("MR01",), True,
    ),
}  # fmt: skip
SECOND_MODALITY = 0.03  # share of studies with a series of another modality
STUDIES_PER_PATIENT = ((1, 0.35), (2, 0.25), (3, 0.15), (4, 0.10), (5, 0.06), (6, 0.04),
                       (7, 0.03), (8, 0.02))  # fmt: skip
FAMILY = ("SMITH", "JOHNSON", "MÜLLER", "GARCÍA", "NGUYEN", "KOWALSKI", "ROSSI", "DUBOIS",
          "SCHMIDT", "LÓPEZ", "MARTIN", "BERNARD", "JANSEN", "NOVÁK", "ANDERSSON", "OKAFOR",
          "TANAKA", "O'BRIEN", "FERREIRA", "YILMAZ", "PETROV", "HANSEN", "BROWN", "WILSON",
          "MOREAU", "WEBER", "KELLY", "SILVA", "COSTA", "BJÖRK")  # fmt: skip
GIVEN = ("ANNA", "JOSÉ", "MARIA", "JOHN", "ZOË", "RENÉE", "PETER", "LUCÍA", "AHMED", "EMMA",
         "LIAM", "SØREN", "CHLOÉ", "DAVID", "SARAH", "MICHAEL", "FRANÇOIS", "OLGA", "HANNAH",
         "LUKAS", "NOAH", "ELENA", "JAMES", "ÅSA", "IVAN")  # fmt: skip
REFERRERS = ("HOUSE^GREGORY^^DR", "GREY^MEREDITH^^DR", "KILDARE^JAMES^^DR", "QUINN^MICHAELA^^DR",
             "ZHIVAGO^YURI^^DR", "WELBY^MARCUS^^DR", "CAREY^JOHN^^DR", "")  # fmt: skip
YEARS = 10


# ---------------------------------------------------------------------------------------------
# The plan: patients, studies and series in memory; instances generated per batch
# ---------------------------------------------------------------------------------------------


@dataclass
class SeriesPlan:
    id: int
    uid: str
    modality: str
    number: int
    description: str
    body_part: str
    images: int
    image_size: int


@dataclass
class StudyPlan:
    id: int
    number: int
    uid: str
    patient: int  # row id
    when: dt.datetime
    kind: str
    description: str
    body_part: str
    referrer: str
    series: list[SeriesPlan] = field(default_factory=list)


@dataclass
class PatientPlan:
    id: int
    patient_id: str
    name: str
    birth: dt.date
    sex: str


def uid(space: str, *parts: object) -> str:
    """A UID of the rows of one prefix and seed (``space``, as ``namespace()`` makes it)."""
    name = "/".join(["skylight-bench-populate", space, *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def namespace(seed: int, prefix: str) -> str:
    return f"{prefix}/{seed}"


def patient_id(prefix: str, n: int) -> str:
    return f"{prefix}P{n:07d}"


def accession(prefix: str, n: int) -> str:
    return f"{prefix}A{n:08d}"


def image_size(kind: Kind) -> int:
    """Bytes of one stored image: pixels (halved for compressed syntaxes) and a header."""
    pixels = kind.rows * kind.columns * kind.samples * kind.bits[0] // 8
    return pixels // (2 if kind.syntaxes[0] != EXPLICIT_LE else 1) + 2400


def patient_sizes(studies: int, rng: random.Random) -> list[int]:
    sizes, left = [], studies
    counts, weights = zip(*STUDIES_PER_PATIENT, strict=True)
    while left > 0:
        n = min(left, rng.choices(counts, weights)[0])
        sizes.append(n)
        left -= n
    return sizes


def plan(studies: int, instances: int, seed: int, prefix: str) -> tuple[
    list[PatientPlan], list[StudyPlan]
]:  # fmt: skip
    """Everything but the instances, with ids from 1 (offset when written)."""
    if instances < studies:
        raise SystemExit(f"--instances ({instances}) must be at least --studies ({studies})")
    rng = random.Random(seed)
    space = namespace(seed, prefix)
    today = dt.date.today()
    patients: list[PatientPlan] = []
    owners: list[int] = []
    for n, size in enumerate(patient_sizes(studies, rng), start=1):
        name = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
        if rng.random() < 0.3:
            name += f"^{rng.choice('ABCDEFGHJKLMNPRSTW')}"
        birth = today - dt.timedelta(days=rng.randrange(365, 95 * 365))
        patients.append(
            PatientPlan(n, patient_id(prefix, n), name, birth, rng.choice("FFFFFMMMMMO"))
        )
        owners += [n] * size
    names, weights = zip(*((m, k.share) for m, k in KINDS.items()), strict=True)
    start = dt.datetime.combine(today - dt.timedelta(days=365 * YEARS), dt.time(), dt.UTC)
    span = (dt.datetime.combine(today, dt.time(), dt.UTC) - start).total_seconds()
    plans: list[StudyPlan] = []
    series_id = 0
    for n in range(1, studies + 1):
        modality = rng.choices(names, weights)[0]
        kind = KINDS[modality]
        which = rng.randrange(len(kind.descriptions))
        when = start + dt.timedelta(seconds=rng.uniform(0, span))
        when = when.replace(hour=rng.choice((7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 20, 2)))
        study = StudyPlan(
            id=n, number=n, uid=uid(space, "study", n), patient=owners[n - 1], when=when,
            kind=modality, description=kind.descriptions[which],
            body_part=kind.body_parts[which % len(kind.body_parts)], referrer=rng.choice(REFERRERS),
        )  # fmt: skip
        modalities = [modality] * rng.randint(*kind.series)
        if rng.random() < SECOND_MODALITY:
            modalities.append(rng.choice([m for m in KINDS if m != modality]))
        for k, m in enumerate(modalities):
            series_id += 1
            sk = KINDS[m]
            localizer = m == "CT" and k == 0
            images = rng.randint(1, 3) if localizer else rng.randint(*sk.images)
            study.series.append(
                SeriesPlan(
                    id=series_id, uid=uid(space, "series", n, k), modality=m, number=k + 1,
                    description="LOCALIZER" if localizer else rng.choice(sk.series_names),
                    body_part=study.body_part if m == modality else rng.choice(sk.body_parts),
                    images=images, image_size=image_size(sk),
                )
            )  # fmt: skip
        plans.append(study)
    scale_to(plans, instances)
    return patients, plans


def scale_to(plans: list[StudyPlan], total: int) -> None:
    """Scale the cross-sectional series (CT, MR) so that the instances add up to ``total``."""
    every = [s for p in plans for s in p.series]
    scaled = [s for s in every if KINDS[s.modality].scales and s.description != "LOCALIZER"]
    fixed = sum(s.images for s in every) - sum(s.images for s in scaled)
    if not scaled or fixed + len(scaled) > total:
        scaled, fixed = every, 0  # a tiny total: scale everything
    factor = (total - fixed) / sum(s.images for s in scaled)
    for s in scaled:
        s.images = max(1, round(s.images * factor))
    difference = total - sum(s.images for s in every)
    for s in sorted(scaled, key=lambda s: -s.images):
        if difference == 0:
            break
        step = max(-(s.images - 1), min(difference, s.images))
        s.images += step
        difference -= step
    if difference:
        raise RuntimeError(f"could not reach {total} instances ({difference} left)")


def studies_by_patient(studies: int = 10_000, seed: int = 1, prefix: str = "POP") -> dict[str, int]:
    """PatientID → number of studies, in the rows of these arguments (whatever the instances)."""
    patients, plans = plan(studies, 100 * studies, seed, prefix)  # patients are drawn first
    ids = {p.id: p.patient_id for p in patients}
    found: dict[str, int] = {}
    for s in plans:
        found[ids[s.patient]] = found.get(ids[s.patient], 0) + 1
    return found


# ---------------------------------------------------------------------------------------------
# Rows (column order as in the COPY statements below)
# ---------------------------------------------------------------------------------------------

PATIENT = (
    "id",
    "tenant_id",
    "patient_id",
    "issuer_of_patient_id",
    "patient_name",
    "patient_name_search",
    "patient_birth_date",
    "patient_sex",
    "created_at",
    "updated_at",
)
STUDY = (
    "id",
    "tenant_id",
    "patient_id",
    "study_instance_uid",
    "study_date",
    "study_time",
    "accession_number",
    "issuer_of_accession_number",
    "study_id",
    "study_description",
    "referring_physician_name",
    "referring_physician_name_search",
    "modalities_in_study",
    "body_parts_examined",
    "number_of_study_related_series",
    "number_of_study_related_instances",
    "total_size",
    "state",
    "state_changed_at",
    "first_ready_at",
    "first_received_at",
    "last_instance_at",
    "created_at",
    "updated_at",
)
SERIES = (
    "id",
    "tenant_id",
    "study_id",
    "series_instance_uid",
    "modality",
    "series_number",
    "series_description",
    "body_part_examined",
    "series_date",
    "series_time",
    "protocol_name",
    "manufacturer",
    "station_name",
    "institution_name",
    "frame_of_reference_uid",
    "performed_procedure_step_start_date",
    "performed_procedure_step_start_time",
    "number_of_series_related_instances",
    "total_size",
    "created_at",
    "updated_at",
)
RECEIPT = (
    "id",
    "tenant_id",
    "object_id",
    "storage_key",
    "size",
    "sha256",
    "dataset_sha256",
    "source",
    "received_at",
    "sop_class_uid",
    "sop_instance_uid",
    "transfer_syntax_uid",
    "calling_ae_title",
    "called_ae_title",
    "source_address",
    "status",
    "problem",
    "processed_at",
    "attempts",
    "object_deleted",
)
INSTANCE = ("id", "tenant_id", "study_id", "series_id", "receipt_id", "sop_instance_uid",
            "sop_class_uid", "instance_number", "transfer_syntax_uid", "storage_key", "size",
            "sha256", "dataset_sha256", "content_date", "content_time", "acquisition_number",
            "image_type", "rows", "columns", "number_of_frames", "samples_per_pixel",
            "photometric_interpretation", "bits_allocated", "bits_stored",
            "pixel_representation", "pixel_spacing", "slice_thickness", "slice_location",
            "image_position_patient", "image_orientation_patient", "window_center",
            "window_width", "rescale_intercept", "rescale_slope", "has_pixel_data", "warnings",
            "indexed_at")  # fmt: skip
TABLES = {
    "studies_patient": PATIENT,
    "studies_study": STUDY,
    "studies_series": SERIES,
    "studies_receipt": RECEIPT,
    "studies_instance": INSTANCE,
}
MANUFACTURER = {"CT": "SIEMENS", "MR": "GE MEDICAL SYSTEMS", "CR": "FUJIFILM", "DX": "CARESTREAM",
                "US": "PHILIPS"}  # fmt: skip
INSTITUTION = "DEMO HOSPITAL"


def search_form(name: str) -> str:
    from studies.dicom.attributes import search_form as skylight_search_form  # free of Django

    return skylight_search_form(name)


def patient_rows(tenant: int, patients: list[PatientPlan], offset: int) -> Iterator[tuple]:
    now = dt.datetime.now(dt.UTC)
    for p in patients:
        yield (p.id + offset, tenant, p.patient_id, "", p.name, search_form(p.name), p.birth,
               p.sex, now, now)  # fmt: skip


def study_rows(
    tenant: int, studies: list[StudyPlan], offsets: dict[str, int], prefix: str
) -> Iterator[tuple]:
    for s in studies:
        modalities = sorted({x.modality for x in s.series})
        body_parts = sorted({x.body_part for x in s.series if x.body_part})
        done = s.when + dt.timedelta(minutes=20)
        ready = done + dt.timedelta(minutes=2)
        yield (
            s.id + offsets["study"], tenant, s.patient + offsets["patient"], s.uid, s.when.date(),
            s.when.time().replace(tzinfo=None), accession(prefix, s.number), "",
            str(s.number % 100000), s.description, s.referrer, search_form(s.referrer),
            "\\" + "\\".join(modalities) + "\\", "\\".join(body_parts)[:200], len(s.series),
            sum(x.images for x in s.series), sum(x.images * x.image_size for x in s.series),
            "ready", ready, ready, s.when, done, s.when, ready,
        )  # fmt: skip


def series_rows(
    tenant: int, studies: list[StudyPlan], offsets: dict[str, int], space: str
) -> Iterator[tuple]:
    for s in studies:
        for x in s.series:
            when = s.when + dt.timedelta(minutes=2 * x.number)
            yield (
                x.id + offsets["series"], tenant, s.id + offsets["study"], x.uid, x.modality,
                x.number, x.description, x.body_part, when.date(), when.time().replace(tzinfo=None),
                s.description, MANUFACTURER[x.modality], KINDS[x.modality].stations[0],
                INSTITUTION, uid(space, "frame", s.number), s.when.date(),
                s.when.time().replace(tzinfo=None), x.images, x.images * x.image_size, s.when,
                s.when + dt.timedelta(minutes=20),
            )  # fmt: skip


def instance_rows(
    tenant: int,
    studies: Sequence[StudyPlan],
    offsets: dict[str, int],
    first_instance: int,
    space: str,
    rng: random.Random,
) -> Iterator[tuple[tuple, tuple]]:
    """(receipt row, instance row) for every image of these studies; ids from first_instance."""
    n = first_instance
    for s in studies:
        for x in s.series:
            kind = KINDS[x.modality]
            syntax = rng.choice(kind.syntaxes)
            when = s.when + dt.timedelta(minutes=2 * x.number)
            thickness = 1.25 if "1" in x.description else 5.0 if x.modality == "CT" else None
            for i in range(x.images):
                n += 1
                object_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                key = f"tenants/{tenant}/objects/{object_id.hex[:2]}/{object_id.hex}.dcm"
                sop_uid = uid(space, "instance", s.number, x.number, i)
                received = when + dt.timedelta(seconds=0.2 * i)
                sha, data_sha = rng.randbytes(32).hex(), rng.randbytes(32).hex()
                size = x.image_size + rng.randrange(0, 512)
                ae = kind.stations[0]
                receipt = (
                    n + offsets["receipt"], tenant, object_id, key, size, sha, data_sha,
                    "dimse" if x.modality != "US" else "stow", received, kind.sop_class, sop_uid,
                    syntax, ae, CALLED_AE, "10.20.0.17", "indexed", "",
                    received + dt.timedelta(seconds=1), 1, False,
                )  # fmt: skip
                cross = kind.scales
                z = -0.5 * i * (thickness or 1) if cross else None
                instance = (
                    n + offsets["instance"], tenant, s.id + offsets["study"],
                    x.id + offsets["series"], n + offsets["receipt"], sop_uid, kind.sop_class,
                    i + 1, syntax, key, size, sha, data_sha, when.date(),
                    when.time().replace(tzinfo=None), 1,
                    "ORIGINAL\\PRIMARY\\AXIAL" if cross else "ORIGINAL\\PRIMARY", kind.rows,
                    kind.columns, None, kind.samples, kind.photometric, kind.bits[0], kind.bits[1],
                    0, "0.703125\\0.703125" if cross else "0.139\\0.139", thickness, z,
                    f"-180\\-180\\{z}" if cross else "", "1\\0\\0\\0\\1\\0" if cross else "",
                    "40" if x.modality == "CT" else "", "400" if x.modality == "CT" else "",
                    -1024.0 if x.modality == "CT" else None, 1.0 if x.modality == "CT" else None,
                    True, "[]", received + dt.timedelta(seconds=1),
                )  # fmt: skip
                yield receipt, instance


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def check_schema(conn: Any) -> None:
    """Fail clearly if the tables gained a NOT NULL column without a default that is not filled
    here (the models changed: this file must follow), or lost one that is."""
    for table, columns in TABLES.items():
        rows = conn.execute(
            "SELECT column_name, is_nullable = 'NO' AND column_default IS NULL "
            "AND is_identity = 'NO' FROM information_schema.columns WHERE table_name = %s",
            (table,),
        ).fetchall()
        if not rows:
            raise SystemExit(f"table {table} does not exist: run manage.py migrate first")
        existing = {name for name, _ in rows}
        required = {name for name, needed in rows if needed}
        if missing := required - set(columns) - {"id"}:
            raise SystemExit(
                f"{table} has NOT NULL columns bench.populate does not fill: {missing}"
            )
        if gone := set(columns) - existing:
            raise SystemExit(f"{table} no longer has columns {gone}: update bench.populate")


def reserve_ids(conn: Any, counts: dict[str, int]) -> dict[str, int]:
    """Move each table's id sequence past a block of ``counts`` ids; return the offsets (the id
    before each block)."""
    offsets = {}
    for name, count in counts.items():
        table = f"studies_{name}"
        conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
        top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        last = conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
        offset = max(top, last[0] if last[1] else last[0] - 1)
        conn.execute("SELECT setval(%s, %s, true)", (sequence, offset + count))
        offsets[name] = offset
    return offsets


def copy(conn: Any, table: str, rows: Iterator[tuple]) -> int:
    n = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def populate(
    database_url: str,
    tenant_slug: str = "demo-hospital",
    studies: int = 10_000,
    instances: int = 1_000_000,
    seed: int = 1,
    prefix: str = "POP",
    batch: int = 100_000,
) -> dict[str, Any]:
    """Write the rows (unless they are there already); return what was done."""
    import psycopg

    started = time.perf_counter()
    patients, plans = plan(studies, instances, seed, prefix)
    series_count = sum(len(p.series) for p in plans)
    with psycopg.connect(database_url, autocommit=True) as conn:
        check_schema(conn)
        found = conn.execute("SELECT id FROM tenants_tenant WHERE slug = %s", (tenant_slug,))
        tenant_row = found.fetchone()
        if tenant_row is None:
            raise SystemExit(f"no tenant {tenant_slug!r} in {database_url}")
        tenant = tenant_row[0]
        there = conn.execute(
            "SELECT count(*), coalesce(sum(number_of_study_related_instances), 0) "
            "FROM studies_study WHERE tenant_id = %s AND accession_number LIKE %s",
            (tenant, f"{prefix}A%"),
        ).fetchone()
        if there[0]:
            last = plans[-1]
            complete = conn.execute(
                "SELECT count(*) FROM studies_instance WHERE tenant_id = %s "
                "AND sop_instance_uid = %s",
                (tenant, uid(namespace(seed, prefix), "instance", last.number,
                             last.series[-1].number, last.series[-1].images - 1)),
            ).fetchone()[0]  # fmt: skip
            if there != (studies, instances) or not complete:
                raise SystemExit(
                    f"{there[0]} studies with accession prefix {prefix}A are there already "
                    f"({there[1]} instances{'' if complete else ', not all written'}), not "
                    f"{studies} / {instances}: use another --prefix or a fresh database"
                )
            say(f"{studies} studies / {instances} instances are there already")
            return {"studies": studies, "instances": instances, "loaded": False, "seconds": 0.0}
        with conn.transaction():
            offsets = reserve_ids(conn, {"patient": len(patients), "study": len(plans),
                                         "series": series_count, "receipt": instances,
                                         "instance": instances})  # fmt: skip
        say(f"populating {len(patients)} patients, {len(plans)} studies, {series_count} series")
        with conn.transaction():
            copy(conn, "studies_patient", patient_rows(tenant, patients, offsets["patient"]))
            copy(conn, "studies_study", study_rows(tenant, plans, offsets, prefix))
            copy(
                conn, "studies_series", series_rows(tenant, plans, offsets, namespace(seed, prefix))
            )
        rng = random.Random(f"{namespace(seed, prefix)}/instances")
        done, i = 0, 0
        while i < len(plans):
            group, size = [], 0
            while i < len(plans) and (not group or size < batch):
                group.append(plans[i])
                size += sum(x.images for x in plans[i].series)
                i += 1
            pairs = list(instance_rows(tenant, group, offsets, done, namespace(seed, prefix), rng))
            with conn.transaction():
                copy(conn, "studies_receipt", (r for r, _ in pairs))
                copy(conn, "studies_instance", (x for _, x in pairs))
            done += len(pairs)
            say(f"  {done}/{instances} instances ({time.perf_counter() - started:.0f}s)")
        for table in TABLES:
            conn.execute(f"ANALYZE {table}")
    seconds = time.perf_counter() - started
    say(f"populated in {seconds:.0f}s, analysed")
    return {"studies": studies, "instances": instances, "loaded": True, "seconds": seconds}


def counts(database_url: str, tenant_slug: str, prefix: str) -> dict[str, int]:
    import psycopg

    like = f"{prefix}A%"
    with psycopg.connect(database_url) as conn:
        tenant = conn.execute("SELECT id FROM tenants_tenant WHERE slug = %s", (tenant_slug,))
        t = tenant.fetchone()[0]
        q = {
            "patients": "SELECT count(DISTINCT patient_id) FROM studies_study "
            "WHERE tenant_id = %s AND accession_number LIKE %s",
            "studies": "SELECT count(*) FROM studies_study WHERE tenant_id = %s "
            "AND accession_number LIKE %s",
            "series": "SELECT count(*) FROM studies_series se JOIN studies_study st "
            "ON st.id = se.study_id WHERE st.tenant_id = %s AND st.accession_number LIKE %s",
            "instances": "SELECT count(*) FROM studies_instance i JOIN studies_study st "
            "ON st.id = i.study_id WHERE st.tenant_id = %s AND st.accession_number LIKE %s",
            "instances (study counts)": "SELECT sum(number_of_study_related_instances) FROM "
            "studies_study WHERE tenant_id = %s AND accession_number LIKE %s",
            "receipts indexed": "SELECT count(*) FROM studies_receipt r JOIN studies_instance i "
            "ON i.receipt_id = r.id JOIN studies_study st ON st.id = i.study_id "
            "WHERE st.tenant_id = %s AND st.accession_number LIKE %s AND r.status = 'indexed'",
        }
        return {
            name: int(conn.execute(sql, (t, like)).fetchone()[0] or 0) for name, sql in q.items()
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.populate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--database-url", required=True, help="Skylight's PostgreSQL, migrated")
    p.add_argument("--tenant", default="demo-hospital")
    p.add_argument("--studies", type=int, default=10_000)
    p.add_argument("--instances", type=int, default=0, help="default: 100 per study")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default="POP", help="of PatientIDs and accession numbers")
    args = p.parse_args(argv)
    instances = args.instances or 100 * args.studies
    populate(args.database_url, args.tenant, args.studies, instances, args.seed, args.prefix)
    for name, value in counts(args.database_url, args.tenant, args.prefix).items():
        print(f"{name:>26}: {value}")


if __name__ == "__main__":
    main()
