"""Query latency: QIDO-RS study searches and DIMSE C-FIND, request by request.

Data:

- *1k*: the same 1,000 small studies (one 8×8 instance per series, ~2.9 series per study, the
  distributions of ``bench.populate``: modalities, patients with a few studies each, accented
  names) stored over STOW-RS into every target. Orthanc's index cannot be bulk-filled, so the
  side-by-side comparison is at this size (the issue's Orthanc figures are at 1k studies too).
  Skylight's database is then ``ANALYZE``d (see ``analyze``), when its URL is known.
- *10k*: Skylight only: its PostgreSQL bulk-filled by ``bench.populate`` up to 10,000 studies and
  1,000,000 instances in all (the 1k studies included), then ``ANALYZE``.

Variants (each key of a rotating set of distinct keys, one kept-alive connection per target):

- ``qido-patientid``: ``GET {root}/studies?PatientID=<id>`` (a patient with one to eight studies);
- ``qido-modality``: ``GET {root}/studies?ModalitiesInStudy=<CT|MR|US|CR|DX>&limit=100``, a page
  as a study list asks for it;
- ``qido-modality-all``: the same without ``limit`` (every match the server gives; the number of
  results and any ``Warning`` header are recorded, since a server maximum truncates);
- ``cfind-patientid``: C-FIND, Study Root, STUDY level, by PatientID, over one association kept
  open (pynetdicom SCU), timed from the request to the final response.

Each request is timed from its first byte to the last byte of the answer (HTTP) or the final
C-FIND response (DIMSE); p50, p95 and p99 over ``--repeats`` requests per variant and target.
"""

from __future__ import annotations

import argparse
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from . import populate, stow
from .common import KeptAlive, Sample, connect, run_latency, say, send
from .targets import Target

SMALL_SEED, SMALL_PREFIX = 7, "BQ"  # the 1k studies (bench.populate's layout, other UIDs)
INDEX_SEED, INDEX_PREFIX = 1, "POP"
MODALITIES = ("CT", "MR", "US", "CR", "DX")
CALLING_AE = "BENCHSCU"
STOW_BATCH = 250  # instances per STOW-RS request when loading


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def tiny_instance(
    study: populate.StudyPlan, series: populate.SeriesPlan, patient: populate.PatientPlan
) -> bytes:
    """A Part 10 instance of 8×8 pixels carrying the study's, series' and patient's attributes."""
    import io

    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = UID(populate.KINDS[series.modality].sop_class)
    ds.SOPInstanceUID = populate.uid(
        populate.namespace(SMALL_SEED, SMALL_PREFIX), "instance", study.number, series.number, 0
    )
    ds.StudyDate = study.when.strftime("%Y%m%d")
    ds.StudyTime = study.when.strftime("%H%M%S")
    ds.AccessionNumber = populate.accession(SMALL_PREFIX, study.number)
    ds.Modality = series.modality
    ds.ReferringPhysicianName = study.referrer
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth.strftime("%Y%m%d")
    ds.PatientSex = patient.sex
    ds.BodyPartExamined = series.body_part
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = str(study.number)
    ds.SeriesNumber = series.number
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(128)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def small_studies(count: int) -> list[bytes]:
    """The 1k data: one instance per series (``populate.studies_by_patient(count, SMALL_SEED,
    SMALL_PREFIX)`` has their PatientIDs)."""
    patients, plans = populate.plan(count, 100 * count, SMALL_SEED, SMALL_PREFIX)
    by_id = {p.id: p for p in patients}
    return [tiny_instance(s, x, by_id[s.patient]) for s in plans for x in s.series]


def stow_parts(target: Target, parts: list[bytes], batch: int = STOW_BATCH) -> float:
    """Store Part 10 objects over STOW-RS, ``batch`` per request; return the seconds taken."""
    started = time.perf_counter()
    conn = connect(target.stow_url, timeout=600)
    try:
        for i in range(0, len(parts), batch):
            chunk = parts[i : i + batch]
            boundary = stow.new_boundary()
            delimiter = f"--{boundary}\r\n".encode()
            body = b"".join(delimiter + stow.PART_HEADER + p + b"\r\n" for p in chunk)
            body += f"--{boundary}--\r\n".encode()
            reply = send(conn, "POST", target.stow_url, stow.stow_headers(target, boundary), body)
            stow.check_reply(reply, len(chunk), target)
    finally:
        conn.close()
    return time.perf_counter() - started


def keys(studies: dict[str, int], count: int, seed: int) -> dict[str, int]:
    """``count`` PatientIDs drawn from ``studies`` (PatientID → studies), with their counts."""
    drawn = random.Random(seed).sample(sorted(studies), min(count, len(studies)))
    return {patient_id: studies[patient_id] for patient_id in drawn}


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def qido(
    client: KeptAlive,
    paths: list[str],
    counts: dict[str, Any],
    expected: dict[str, int] | None = None,
) -> Callable[[int], Sample]:
    """A call timing ``GET paths[i % len(paths)]``. After the clock, the first answer to each
    path is parsed and its result count and Warning header kept in ``counts``; when ``expected``
    gives a path's number of results, every answer is counted and a wrong one is a failure."""

    def call(i: int) -> Sample:
        path = paths[i % len(paths)]
        seconds, reply = client.get(path, {"Accept": "application/dicom+json"})
        if reply.status != 200:
            counts.setdefault(path, {"status": reply.status})
            return Sample(seconds, reply.status, False, reply.body[:160].decode("utf-8", "replace"))
        want = (expected or {}).get(path)
        if path in counts and want is None:
            return Sample(seconds, reply.status, True)
        found = len(reply.json() or [])
        counts.setdefault(path, {"results": found, "warning": reply.headers.get("warning")})
        if want is not None and found != want:
            return Sample(seconds, reply.status, False, f"{found} results, expected {want}")
        return Sample(seconds, reply.status, True)

    return call


class FindSCU:
    """One association (Study Root Query/Retrieve - FIND) kept open; each C-FIND timed from the
    request to the final response.

    The association is requested at the first C-FIND (servers release idle ones: Orthanc after
    30 s) and again, untimed, if the server released it; ``associations`` counts them.
    pynetdicom's DUL thread sleeps 1 ms between polls of the socket; the SCU's is set to ``poll``
    seconds (0.1 ms by default) once associated, so the client adds at most about that per PDU
    received (the same client for every target).
    """

    def __init__(self, host: str, port: int, called_ae: str, poll: float = 0.0001):
        from pynetdicom import AE
        from pynetdicom.sop_class import (  # type: ignore[attr-defined]
            StudyRootQueryRetrieveInformationModelFind,
        )

        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        self.model = StudyRootQueryRetrieveInformationModelFind
        self.ae = AE(ae_title=CALLING_AE)
        self.ae.add_requested_context(self.model)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 60
        self.address, self.called_ae, self.poll = (host, port), called_ae, poll
        self.assoc: Any = None
        self.associations = 0
        self.matches = 0

    def _associate(self) -> str:
        """'' when an association with an accepted C-FIND context is open, else the problem."""
        if self.assoc is not None and self.assoc.is_established:
            return ""
        host, port = self.address
        self.assoc = self.ae.associate(host, port, ae_title=self.called_ae)
        self.associations += 1
        if not self.assoc.is_established:
            return f"association to {self.called_ae} at {host}:{port} not established"
        if not any(c.abstract_syntax == self.model for c in self.assoc.accepted_contexts):
            self.assoc.release()
            return "Study Root C-FIND presentation context not accepted"
        self.assoc.dul._run_loop_delay = self.poll
        # Request/response: without TCP_NODELAY, Nagle's algorithm and the peer's delayed ACK
        # hold each multi-segment message ~40 ms (as storescu gets TCP_NODELAY=1 in bench.cstore).
        self.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ""

    def find(self, patient_id: str) -> Sample:
        from pydicom.dataset import Dataset

        if problem := self._associate():
            return Sample(0.0, -1, False, problem, "DIMSE")
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.PatientID = patient_id
        for keyword in ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                        "PatientName", "PatientBirthDate", "StudyDescription",
                        "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                        "NumberOfStudyRelatedInstances"):  # fmt: skip
            setattr(ds, keyword, "")
        matches, status = 0, -1
        started = time.perf_counter()
        for result, identifier in self.assoc.send_c_find(ds, self.model):
            status = int(getattr(result, "Status", -1))
            if status in (0xFF00, 0xFF01):
                matches += identifier is not None
                continue
            break
        seconds = time.perf_counter() - started
        self.matches = matches
        ok = status == 0
        return Sample(seconds, status, ok, f"{matches} matches" if ok else "C-FIND failed", "DIMSE")

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


def variants(
    target: Target, patients: dict[str, int], clients: list[Any], counts: dict[str, Any]
) -> dict[str, Callable[[int], Sample]]:
    client = KeptAlive(target.dicomweb_root, target.headers)
    finder = FindSCU(target.dicom_host, target.dicom_port, target.called_ae)
    clients += [client, finder]
    paths = {f"/studies?PatientID={quote(p)}": n for p, n in patients.items()}
    page = [f"/studies?ModalitiesInStudy={m}&limit=100" for m in MODALITIES]
    every = [f"/studies?ModalitiesInStudy={m}" for m in MODALITIES]
    return {
        "qido-patientid": qido(
            client, list(paths), counts.setdefault("qido-patientid", {}), expected=paths
        ),
        "qido-modality": qido(client, page, counts.setdefault("qido-modality", {})),
        "qido-modality-all": qido(client, every, counts.setdefault("qido-modality-all", {})),
        "cfind-patientid": cfind(finder, patients, counts.setdefault("cfind-patientid", {})),
    }


def cfind(
    finder: FindSCU, patients: dict[str, int], counts: dict[str, Any]
) -> Callable[[int], Sample]:
    """A call timing a C-FIND for ``patients``' i-th PatientID; a final success after a wrong
    number of matches is a failure."""
    order = list(patients)

    def call(i: int) -> Sample:
        patient_id = order[i % len(order)]
        sample = finder.find(patient_id)
        if not sample.ok:
            return sample
        counts.setdefault(patient_id, {"results": finder.matches})
        if finder.matches != patients[patient_id]:
            note = f"{finder.matches} matches, expected {patients[patient_id]}"
            return Sample(sample.seconds, sample.status, False, note, "DIMSE")
        return sample

    return call


def measure(
    args: argparse.Namespace, targets: list[Target], patients: dict[str, int], label: str
) -> dict[str, dict[str, Any]]:
    """Every variant on every target; results keyed ``variant/target-name<label>``."""
    clients: list[Any] = []
    counts: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    try:
        calls = {t.name: variants(t, patients, clients, counts[t.name]) for t in targets}
        out: dict[str, dict[str, Any]] = {}
        for variant in ("qido-patientid", "qido-modality", "qido-modality-all", "cfind-patientid"):
            say(f"{variant}{label}: {args.repeats} requests per target")
            results = run_latency(
                {t.name: calls[t.name][variant] for t in targets}, args.repeats,
                rounds=args.rounds, warmup=args.warmup, max_busy=args.max_busy,
                max_steal=args.max_steal, steal_retries=args.steal_retries,
            )  # fmt: skip
            for name, result in results.items():
                result["answers"] = counts[name].get(variant, {})
                out[f"{variant}/{name}{label}"] = result
        return out
    finally:
        for c in clients:
            c.close()


def index_size(database_url: str, tenant: str, like: str = "%") -> dict[str, int]:
    """Studies and instances of the tenant (those whose accession number is ``LIKE like``)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(s.number_of_study_related_instances), 0) "
            "FROM studies_study s JOIN tenants_tenant t ON t.id = s.tenant_id "
            "WHERE t.slug = %s AND s.accession_number LIKE %s",
            (tenant, like),
        ).fetchone()
    return {"studies": int(row[0]), "instances": int(row[1])}


def skylight_database(args: argparse.Namespace, targets: list[Target]) -> str:
    """The PostgreSQL URL of the Skylight under test, when known ('' otherwise)."""
    for target in targets:
        if target.kind == "skylight":
            return str(target.notes.get("database_url") or args.populate_database_url or "")
    return ""


def analyze(database_url: str) -> bool:
    """``ANALYZE`` Skylight's database after loading, as autovacuum would within a minute or so
    in service: on tables filled moments ago without statistics the planner's choices are not
    the ones a running archive gets (QIDO by PatientID at 1k studies: 34 ms before, 10 ms after,
    on this machine). Returns whether it was done."""
    if not database_url:
        return False
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return True


def run(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    """Load the 1k studies everywhere, measure; bulk-fill Skylight to 10k/1M, measure it again."""
    started = time.perf_counter()
    instances = small_studies(args.small_studies)
    say(f"made {len(instances)} small instances of {args.small_studies} studies "
        f"({time.perf_counter() - started:.0f}s)")  # fmt: skip
    loading: dict[str, Any] = {}
    for target in targets:
        seconds = stow_parts(target, instances)
        waited = target.wait_indexed()
        loading[target.name] = {"instances": len(instances), "stow_s": round(seconds, 1),
                                "indexed_after_s": round(waited, 1)}  # fmt: skip
        say(f"{target.name}: {len(instances)} instances stored in {seconds:.0f}s, "
            f"indexed {waited:.0f}s later")  # fmt: skip
    patients = populate.studies_by_patient(args.small_studies, SMALL_SEED, SMALL_PREFIX)
    small_keys = keys(patients, args.keys, seed=11)
    skylight = [t for t in targets if t.kind == "skylight"]
    database_url = skylight_database(args, targets)
    payload: dict[str, Any] = {
        "loading": loading,
        "small_studies": args.small_studies,
        "keys": {"1k": small_keys},
        "analyzed": analyze(database_url),
    }
    results = measure(args, targets, small_keys, "")
    if not skylight or not args.index_studies:
        return {"results": results, **payload}
    if not database_url:
        say("no database to bulk-fill (Skylight not started here; see --populate-database-url):"
            " skipping the 10k variant")  # fmt: skip
        return {"results": results, **payload}
    tenant = args.tenant
    # Up to the totals with the rows already there (the 1k studies; earlier bulk rows excepted).
    total, mine = (
        index_size(database_url, tenant),
        index_size(database_url, tenant, f"{INDEX_PREFIX}A%"),
    )
    studies = args.index_studies - (total["studies"] - mine["studies"])
    count = args.index_instances - (total["instances"] - mine["instances"])
    if studies <= 0 or count < studies:
        say(f"Skylight already holds {total}: skipping the 10k variant")
        return {"results": results, **payload}
    payload["populate"] = populate.populate(
        database_url, tenant, studies, count, INDEX_SEED, INDEX_PREFIX
    )
    payload["index"] = size = index_size(database_url, tenant)
    say(f"Skylight's index: {size['studies']} studies, {size['instances']} instances")
    big_keys = keys(populate.studies_by_patient(studies, INDEX_SEED, INDEX_PREFIX), args.keys, 12)
    payload["keys"]["10k"] = big_keys
    label = f" ({size['studies'] // 1000}k studies, {size['instances'] / 1e6:.1f}M instances)"
    results.update(measure(args, skylight, big_keys, label))
    return {"results": results, **payload}


def add_arguments(p: argparse.ArgumentParser) -> None:
    q = p.add_argument_group("query and retrieve latency (bench.query, bench.retrieve)")
    q.add_argument("--repeats", type=int, default=200, help="timed requests per variant/target")
    q.add_argument("--rounds", type=int, default=4, help="blocks the repeats are taken in")
    q.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    q.add_argument("--keys", type=int, default=10, help="distinct PatientIDs queried in turn")
    q.add_argument("--small-studies", type=int, default=1000, help="loaded into every target")
    q.add_argument("--index-studies", type=int, default=10_000, help="Skylight, 0 skips")
    q.add_argument("--index-instances", type=int, default=1_000_000)
    q.add_argument(
        "--populate-database-url",
        default="",
        help="bulk-fill this database for an already-running Skylight (default: only a "
        "Skylight started here with --start-skylight is filled)",
    )
