"""Derived data of a series, built after indexing on the ``derive`` queue: the series' metadata
document (the DICOM JSON of all its instances, with relative bulk data URIs) and a thumbnail,
stored as objects so that WADO-RS ``/metadata`` of a 600-slice series reads one object; and
the viewer-ready frames of each natively stored instance (``imaging.ready``: JPEG-LS lossless,
one object per instance, recorded on the instance and tied to its stored object's sha256).

Flow: the indexing transaction calls ``note_series_changed``, which bumps the series'
``SeriesDerived.generation`` and, when no rebuild is pending (``dirty_since`` empty), schedules
one on commit. The task waits until the series has been quiet for ``DERIVE_QUIET_SECONDS``, so a
series arriving instance by instance is rebuilt once, not once per instance. A build records the
generation it started from with a conditional UPDATE; if the series changed meanwhile the build
is not marked current and another is scheduled. Embedded mode (tasks in-process) builds at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import imaging
from .dicom.reader import open_stored, read_header
from .models import Instance, Series, SeriesDerived
from .storage import derived_key, object_store

log = logging.getLogger(__name__)

READ_THREADS = 8
# Order of instances in a series everywhere in WADO-RS (metadata, retrieve, representative).
INSTANCE_ORDER = ("instance_number", "id")
LOST_REBUILD_AFTER = timedelta(minutes=15)


def _eager() -> bool:
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


# ---------------------------------------------------------------------------------------------
# Instance documents (shared with WADO-RS's fallback path)
# ---------------------------------------------------------------------------------------------


def instance_document(instance: Instance, study_uid: str, series_uid: str) -> bytes:
    """One instance's DICOM JSON with relative BulkDataURIs, read from its stored header."""
    with open_stored(object_store(), instance.storage_key, instance.size) as fp:
        header = read_header(fp)
    root = imaging.instance_path(study_uid, series_uid, instance.sop_instance_uid)
    return imaging.metadata_json(
        header.dataset, has_pixel_data=header.has_pixel_data, bulk_root=f"{root}/bulkdata/"
    )


def instance_documents(
    instances: list[Instance], study_uid: str, series_uid: str
) -> Iterator[bytes]:
    """Documents of ``instances`` in order, headers read a few at a time in parallel (object
    storage latency)."""
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="derive") as pool:
        for start in range(0, len(instances), READ_THREADS):
            batch = instances[start : start + READ_THREADS]
            yield from pool.map(lambda i: instance_document(i, study_uid, series_uid), batch)


def json_array(documents: Iterator[bytes]) -> Iterator[bytes]:
    yield b"["
    for n, document in enumerate(documents):
        yield (b"," if n else b"") + document
    yield b"]"


# ---------------------------------------------------------------------------------------------
# Change notes and scheduling
# ---------------------------------------------------------------------------------------------


def note_series_changed(*, tenant_id: int, series_ids: set[int] | list[int]) -> None:
    """Inside the indexing transaction: the series' derived data is stale; schedule a rebuild
    (after commit) unless one is pending."""
    ids = list(
        Series.objects.filter(tenant_id=tenant_id, pk__in=list(series_ids)).values_list(
            "pk", flat=True
        )
    )
    if not ids:
        return
    now = timezone.now()
    SeriesDerived.objects.bulk_create(
        [SeriesDerived(tenant_id=tenant_id, series_id=i, changed_at=now) for i in ids],
        ignore_conflicts=True,
    )
    rows = SeriesDerived.objects.filter(tenant_id=tenant_id, series_id__in=ids)
    idle = list(rows.filter(dirty_since__isnull=True).values_list("series_id", flat=True))
    rows.update(generation=F("generation") + 1, changed_at=now)
    rows.filter(series_id__in=idle).update(dirty_since=now)
    if idle:
        quiet = settings.SKYLIGHT["DERIVE_QUIET_SECONDS"]

        def schedule_idle() -> None:
            for series_id in idle:
                schedule(tenant_id=tenant_id, series_id=series_id, countdown=quiet)

        # A broker failure must not fail indexing: readers find the document stale and
        # request the rebuild again.
        transaction.on_commit(schedule_idle, robust=True)


def request_rebuild(*, tenant_id: int, series_id: int) -> None:
    """A reader found the document missing or stale: schedule a rebuild unless one is pending.

    Not in embedded mode, where the task would run inside the request; there every indexing
    change rebuilds at once, so only series indexed before derivation existed lack a document.
    """
    if _eager():
        return
    now = timezone.now()
    SeriesDerived.objects.get_or_create(
        tenant_id=tenant_id, series_id=series_id, defaults={"changed_at": now}
    )
    # A rebuild pending for long may have been lost with the broker's queue: claim it again
    # (a second task is harmless: the build is idempotent).
    claimed = (
        SeriesDerived.objects.filter(tenant_id=tenant_id, series_id=series_id)
        .filter(Q(dirty_since__isnull=True) | Q(dirty_since__lt=now - LOST_REBUILD_AFTER))
        .update(dirty_since=now)
    )
    if claimed:
        schedule(tenant_id=tenant_id, series_id=series_id, countdown=0)


def schedule(*, tenant_id: int, series_id: int, countdown: float) -> None:
    from .tasks import derive_series

    derive_series.apply_async((tenant_id, series_id), countdown=countdown, queue="derive")


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _representative(instances: list[Instance]) -> Instance:
    return instances[len(instances) // 2]


def _thumbnail(instance: Instance) -> bytes | None:
    options = imaging.RenderOptions(viewport=imaging.THUMBNAIL_SIZE)
    try:
        with open_stored(object_store(), instance.storage_key, instance.size) as fp:
            return imaging.render(fp, 1, options, "image/jpeg")
    except (imaging.FrameOutOfRange, imaging.CannotDecode):
        return None  # no pixel data, or none we can decode: the series has no stored thumbnail


def build_series(*, tenant_id: int, series_id: int, now: datetime | None = None) -> str:
    """Build and store the series' metadata document and thumbnail if they are stale. Safe to
    run twice or concurrently. Returns what happened (gone, current, waiting, built, changed)."""
    row = (
        SeriesDerived.objects.filter(tenant_id=tenant_id, series_id=series_id)
        .select_related("series__study")
        .first()
    )
    if row is None:
        return "gone"  # the series was deleted (its last instance moved elsewhere)
    series = row.series
    if row.is_current(series.number_of_series_related_instances):
        if row.dirty_since is not None:
            SeriesDerived.objects.filter(pk=row.pk, generation=row.generation).update(
                dirty_since=None
            )
        # A retry after a storage error while making ready frames finishes them here.
        make_ready_frames(
            tenant_id=tenant_id,
            instances=list(Instance.objects.filter(tenant_id=tenant_id, series_id=series_id)),
        )
        return "current"
    now = now or timezone.now()
    quiet = settings.SKYLIGHT["DERIVE_QUIET_SECONDS"]
    waited = (now - row.changed_at).total_seconds()
    if not _eager() and waited < quiet:
        schedule(tenant_id=tenant_id, series_id=series_id, countdown=quiet - waited)
        return "waiting"
    generation = row.generation
    instances = list(
        Instance.objects.filter(tenant_id=tenant_id, series_id=series_id).order_by(*INSTANCE_ORDER)
    )
    if not instances:
        return "gone"
    study_uid = series.study.study_instance_uid
    document = b"".join(
        json_array(instance_documents(instances, study_uid, series.series_instance_uid))
    )
    store = object_store()
    # Keys name the generation, so a slower, older build never overwrites a newer document.
    metadata_key = derived_key(tenant_id, "series", f"{series_id}/metadata-{generation}.json")
    store.put(metadata_key, document, len(document))
    thumbnail_key = ""
    thumbnail = _thumbnail(_representative(instances))
    if thumbnail is not None:
        thumbnail_key = derived_key(tenant_id, "series", f"{series_id}/thumbnail-{generation}.jpg")
        store.put(thumbnail_key, thumbnail, len(thumbnail))
    updated = SeriesDerived.objects.filter(pk=row.pk, generation=generation).update(
        built_generation=generation,
        built_instance_count=len(instances),
        built_at=timezone.now(),
        metadata_key=metadata_key,
        metadata_etag=hashlib.sha256(document).hexdigest()[:32],
        thumbnail_key=thumbnail_key,
        dirty_since=None,
    )
    if not updated:
        # Changed while building: this document is already stale; the row is still dirty, so
        # nobody else scheduled a rebuild.
        for key in (metadata_key, thumbnail_key):
            _delete_quietly(key)
        schedule(tenant_id=tenant_id, series_id=series_id, countdown=quiet)
        return "changed"
    for key in (row.metadata_key, row.thumbnail_key):
        if key and key not in (metadata_key, thumbnail_key):
            _delete_quietly(key)
    # After the metadata is current: the viewer needs it first, and frames are sent natively
    # until theirs are ready.
    made = make_ready_frames(tenant_id=tenant_id, instances=instances)
    log.debug(
        "derived data of series %s built (generation %s, %s ready)", series_id, generation, made
    )
    return "built"


# ---------------------------------------------------------------------------------------------
# Viewer-ready frames
# ---------------------------------------------------------------------------------------------


def make_ready_frames(*, tenant_id: int, instances: list[Instance]) -> int:
    """Make the ready frames of the instances that lack current ones; returns how many were made.

    Idempotent and safe concurrently: the object key names the stored object's sha256, so two
    builds write the same bytes, and the row is updated only while the instance is still stored
    as the object that was encoded. An instance that cannot have them is marked as tried, so a
    series rebuilt as its slices arrive reads each object once.
    """
    todo = [
        i for i in instances if not imaging.ready.attempted(i) and imaging.ready.is_candidate(i)
    ]
    if not todo:
        return 0
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="ready") as pool:
        return sum(pool.map(lambda i: _ready_instance(tenant_id, i), todo))


def _ready_instance(tenant_id: int, instance: Instance) -> int:
    # A storage error propagates: the task is retried and finishes what is missing.
    data = read_object(instance.storage_key)
    try:
        ready = imaging.ready.encode(data)
    except Exception as exc:  # noqa: BLE001 - these bytes never will: frames are sent as stored
        # The exception's type only: a codec's message may quote the object's values.
        log.warning(
            "could not make ready frames of instance %s (%s)", instance.pk, type(exc).__name__
        )
        ready = None
    key = ""
    if ready is not None:
        key = derived_key(tenant_id, "frames", f"{instance.pk}/{instance.sha256}.jls")
        object_store().put(key, ready.data, len(ready.data))
    updated = Instance.objects.filter(
        tenant_id=tenant_id, pk=instance.pk, sha256=instance.sha256
    ).update(
        ready_syntax=ready.syntax if ready else "",
        ready_key=key,
        ready_sha256=instance.sha256,
        ready_offsets=ready.offsets if ready else [],
    )
    # Replaced meanwhile: the object (if any) is left for a build of the same bytes to reuse.
    if updated and instance.ready_key and instance.ready_key != key:
        _delete_quietly(instance.ready_key)
    return 1 if updated and ready is not None else 0


def _delete_quietly(key: str) -> None:
    if not key:
        return
    try:
        object_store().delete(key)
    except Exception:  # noqa: BLE001 - an old derived object left behind costs space only
        log.warning("could not delete an old derived object", exc_info=True)


def read_object(key: str) -> bytes:
    with object_store().open(key, "rb") as f:
        data: bytes = f.read()
    return data
