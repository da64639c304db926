"""STOW-RS: store instances from a multipart/related body, read as a stream.

Memory stays bounded whatever the body size: each part is spooled (in memory up to
``STOW_SPOOL_BYTES``, then to a temporary file) while its SHA-256 is computed, checked once
complete, and uploaded to object storage by a small thread pool while the next parts arrive. At
most ``2 × STOW_UPLOAD_THREADS`` parts wait at once; the reader blocks when that many are in
flight. Receipts for everything uploaded are committed in one transaction at the end, and only
then does the client get its answer.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from tenants.models import Tenant

from ..dicom.part10 import data_set_offset
from ..dicom.reader import UnreadableObject, read_header
from ..services import StoredObject, store_stream
from ..storage import object_store

log = logging.getLogger(__name__)

# Failure Reason (0008,1197) values, PS3.18 Table I.2-2, plus one implementation-specific code in
# the "Cannot understand" range (documented in docs/conformance.md).
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
STUDY_UID_MISMATCH = 0xC409
PROCESSING_FAILURE = 0x0110

READ_CHUNK = 256 * 1024
ACCEPTED_PART_TYPES = {"application/dicom", "application/octet-stream", ""}


class RelatedParser(PushMultipartParser):
    """multipart/related: parts carry a Content-Type and no Content-Disposition (RFC 2387).

    The library parses multipart/form-data by default and documents this method as the place to
    support other multipart types.
    """

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> MultipartSegment:
        return MultipartSegment(headerlist)


class BodyTooLarge(Exception):
    pass


class MalformedBody(Exception):
    """The multipart framing itself is broken. The message is safe to show."""


@dataclass
class PartResult:
    number: int
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    failure_reason: int | None = None
    message: str = ""
    stored: StoredObject | None = None


@dataclass
class StowOutcome:
    parts: list[PartResult] = field(default_factory=list)

    @property
    def stored(self) -> list[PartResult]:
        return [p for p in self.parts if p.stored is not None and p.failure_reason is None]

    @property
    def failed(self) -> list[PartResult]:
        return [p for p in self.parts if p.failure_reason is not None]


PREAMBLE_BYTES = 128
# How executables start: Windows PE ("MZ"), ELF, Mach-O (both byte orders, 32/64-bit and fat),
# and scripts ("#!"). The preamble is free for applications (PS3.10 7.1) and a TIFF header
# there is a legitimate dual-personality file, so only these are neutralised.
EXECUTABLE_MAGIC = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"#!",
)


def neutralised_preamble(preamble: bytes) -> bytes:
    """The preamble as stored: zeros if it starts like an executable (a downloaded .dcm file
    must not run as a program), else exactly as sent."""
    if preamble.startswith(EXECUTABLE_MAGIC):
        return bytes(len(preamble))
    return preamble


class _Part:
    def __init__(self, number: int, content_type: str, spool_bytes: int, max_bytes: int):
        self.number = number
        self.content_type = content_type
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_bytes)
        self.sha = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes
        self.too_large = False
        self.preamble = b""  # held back until all 128 bytes are in, then judged

    def write(self, chunk: bytes | bytearray) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.too_large = True
            return
        if len(self.preamble) < PREAMBLE_BYTES:
            wanted = PREAMBLE_BYTES - len(self.preamble)
            self.preamble += bytes(chunk[:wanted])
            chunk = chunk[wanted:]
            if len(self.preamble) < PREAMBLE_BYTES:
                return
            head = neutralised_preamble(self.preamble)
            self.file.write(head)
            self.sha.update(head)
        self.file.write(chunk)
        self.sha.update(chunk)


def _check_and_store(part: _Part, tenant: Tenant, target_study_uid: str | None) -> PartResult:
    result = PartResult(number=part.number)
    try:
        if part.too_large:
            result.failure_reason = OUT_OF_RESOURCES
            result.message = (
                f"part {part.number} is larger than this server accepts ({part.max_bytes} bytes)"
            )
            return result
        if part.content_type not in ACCEPTED_PART_TYPES:
            result.failure_reason = CANNOT_UNDERSTAND
            result.message = f"part {part.number} is {part.content_type}, not application/dicom"
            return result
        part.file.seek(0)
        prefix = part.file.read(132)
        if len(prefix) < 132 or prefix[128:132] != b"DICM":
            result.failure_reason = CANNOT_UNDERSTAND
            result.message = f"part {part.number} is not a DICOM Part 10 file (no DICM prefix)"
            return result
        part.file.seek(0)
        try:
            header = read_header(part.file, size=part.size)
        except UnreadableObject:
            result.failure_reason = CANNOT_UNDERSTAND
            result.message = f"part {part.number} cannot be parsed as DICOM"
            return result
        ds = header.dataset
        result.sop_class_uid = str(ds.get("SOPClassUID", "") or "")[:64]
        result.sop_instance_uid = str(ds.get("SOPInstanceUID", "") or "")[:64]
        result.study_instance_uid = str(ds.get("StudyInstanceUID", "") or "")[:64]
        result.series_instance_uid = str(ds.get("SeriesInstanceUID", "") or "")[:64]
        missing = [
            name
            for name, value in (
                ("SOPClassUID", result.sop_class_uid),
                ("SOPInstanceUID", result.sop_instance_uid),
                ("StudyInstanceUID", result.study_instance_uid),
                ("SeriesInstanceUID", result.series_instance_uid),
            )
            if not value
        ]
        if missing:
            result.failure_reason = DATA_SET_DOES_NOT_MATCH_SOP_CLASS
            result.message = f"part {part.number} has no {', '.join(missing)}"
            return result
        if header.truncated:
            result.failure_reason = CANNOT_UNDERSTAND
            result.message = (
                f"part {part.number} is truncated (an element runs past the end of the part)"
            )
            return result
        if target_study_uid and result.study_instance_uid != target_study_uid:
            result.failure_reason = STUDY_UID_MISMATCH
            result.message = f"part {part.number} belongs to another study than the one in the URL"
            return result
        part.file.seek(0)
        head = part.file.read(64 * 1024)
        content = hashlib.sha256(head[data_set_offset(head) :])
        while chunk := part.file.read(1024 * 1024):
            content.update(chunk)
        part.file.seek(0)
        try:
            stored = store_stream(
                tenant=tenant,
                stream=part.file,
                size=part.size,
                sha256=part.sha.hexdigest(),
                dataset_sha256=content.hexdigest(),
                head=head,
            )
        except Exception:  # noqa: BLE001 - object storage refused or is unreachable
            log.exception("STOW part %d for tenant %s not stored", part.number, tenant.pk)
            result.failure_reason = OUT_OF_RESOURCES
            result.message = f"part {part.number} could not be stored now; send it again later"
            return result
        stored.sop_class_uid = result.sop_class_uid
        stored.sop_instance_uid = result.sop_instance_uid
        stored.study_instance_uid = result.study_instance_uid
        stored.transfer_syntax_uid = header.transfer_syntax_uid[:64]
        result.stored = stored
        return result
    except Exception:  # noqa: BLE001 - one bad part must not sink the others
        log.exception("STOW part %d for tenant %s failed unexpectedly", part.number, tenant.pk)
        result.failure_reason = PROCESSING_FAILURE
        result.message = f"part {part.number} could not be processed"
        return result
    finally:
        part.file.close()


def discard(parts: list[PartResult]) -> None:
    """Delete the objects of parts that will never get a receipt. Best effort: an object left
    behind costs space, never correctness, since nothing refers to it."""
    store = object_store()
    for part in parts:
        if part.stored is not None:
            try:
                store.delete(part.stored.storage_key)
            except Exception:  # noqa: BLE001
                log.warning("could not delete an unrecorded STOW object")


def _abandon(futures: list[Future[PartResult]]) -> None:
    """The request failed: stop what has not started, and remove what was already stored."""
    for future in futures:
        future.cancel()
    discard([f.result() for f in futures if not f.cancelled()])


def read_chunks(read: Callable[[int], bytes], limit: int) -> Iterator[bytes]:
    total = 0
    while chunk := read(READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        yield chunk


def receive(
    *,
    chunks: Iterator[bytes],
    boundary: str,
    content_length: int,
    tenant: Tenant,
    target_study_uid: str | None,
) -> StowOutcome:
    cfg = settings.SKYLIGHT
    threads = cfg["STOW_UPLOAD_THREADS"]
    in_flight = threading.BoundedSemaphore(threads * 2)
    futures: list[Future[PartResult]] = []
    outcome = StowOutcome()

    def work(part: _Part) -> PartResult:
        try:
            return _check_and_store(part, tenant, target_study_uid)
        finally:
            in_flight.release()

    try:
        parser = RelatedParser(
            boundary, content_length=content_length, max_header_count=32, max_header_size=16 * 1024
        )
    except MultipartError:
        raise MalformedBody("the multipart boundary is not valid") from None
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stow") as pool:
        current: _Part | None = None
        number = 0
        try:
            for chunk in chunks:
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        number += 1
                        current = _Part(
                            number,
                            event.content_type or "",
                            cfg["STOW_SPOOL_BYTES"],
                            cfg["STOW_MAX_PART_BYTES"],
                        )
                    elif event is None:
                        assert current is not None
                        in_flight.acquire()
                        futures.append(pool.submit(work, current))
                        current = None
                    else:
                        assert current is not None
                        current.write(event)
            parser.close()
        except MultipartError as exc:
            _abandon(futures)
            raise MalformedBody(f"the multipart body is malformed ({exc})") from None
        except BaseException:
            _abandon(futures)
            raise
        finally:
            if current is not None:
                current.file.close()
        outcome.parts = [f.result() for f in futures]
    if not outcome.parts:
        raise MalformedBody("the multipart body has no parts")
    return outcome
