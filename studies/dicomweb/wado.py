"""WADO-RS: retrieve instances, metadata, frames, bulk data and rendered images (PS3.18 10.4).

Every route first finds the instances in the tenant's index (404 when the tenant has none of
them), then reads the stored objects. Decoding and rendering are in ``studies/pixels.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from pydicom.uid import ExplicitVRLittleEndian

from tenants import audit
from tenants.models import AuditAction, Tenant

from .. import pixels as imaging
from ..dicom.reader import Header, open_stored, read_header
from ..models import Instance
from ..storage import object_store
from .media import MediaType, negotiate, parse_accept
from .responses import DICOM_JSON, error_response
from .views import base_url, dicomweb_endpoint, is_uid

READ_THREADS = 8


# ---------------------------------------------------------------------------------------------
# Finding what was asked for
# ---------------------------------------------------------------------------------------------


class NotFound(Exception):
    pass


def _instances(tenant: Tenant, kwargs: dict[str, str]) -> list[Instance]:
    for name in ("study_uid", "series_uid", "instance_uid"):
        if name in kwargs and not is_uid(kwargs[name]):
            raise NotFound
    queryset: QuerySet[Instance] = Instance.objects.filter(
        tenant=tenant, study__study_instance_uid=kwargs["study_uid"]
    )
    if "series_uid" in kwargs:
        queryset = queryset.filter(series__series_instance_uid=kwargs["series_uid"])
    if "instance_uid" in kwargs:
        queryset = queryset.filter(sop_instance_uid=kwargs["instance_uid"])
    rows = list(
        queryset.select_related("series", "study").order_by(
            "series__series_number", "series_id", "instance_number", "id"
        )
    )
    if not rows:
        raise NotFound
    return rows


def _read(instance: Instance) -> bytes:
    with object_store().open(instance.storage_key, "rb") as f:
        return f.read()


T = TypeVar("T")


def _in_parallel(
    read: Callable[[Instance], T], instances: list[Instance]
) -> Iterator[tuple[Instance, T]]:
    """``read`` of each instance in order, a few at a time in parallel (storage latency)."""
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="wado") as pool:
        for start in range(0, len(instances), READ_THREADS):
            batch = instances[start : start + READ_THREADS]
            yield from zip(batch, pool.map(read, batch), strict=True)


def _header(instance: Instance) -> Header:
    """The data set up to its pixel data, reading no more of the object than that."""
    with open_stored(object_store(), instance.storage_key, instance.size) as fp:
        return read_header(fp)


def _audit(
    request_kind: str,
    tenant: Tenant,
    actor: audit.Actor,
    instances: list[Instance],
    **detail: Any,
) -> None:
    first = instances[0]
    audit.record(
        action=AuditAction.WADO_RETRIEVE,
        actor=actor,
        tenant=tenant,
        patient_ref=first.study.patient_id,
        study_instance_uid=first.study.study_instance_uid,
        series_instance_uid=first.series.series_instance_uid
        if len({i.series_id for i in instances}) == 1
        else "",
        sop_instance_uid=first.sop_instance_uid if len(instances) == 1 else "",
        detail={"kind": request_kind, "instances": len(instances), **detail},
    )


def _not_found() -> HttpResponse:
    return error_response(404, "No such study, series or instance in this hospital.")


def _multipart(parts: Iterator[tuple[str, bytes]], media_type: str) -> StreamingHttpResponse:
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for content_type, payload in parts:
            yield (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            yield payload
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingHttpResponse(
        body(), content_type=f'multipart/related; type="{media_type}"; boundary={boundary}'
    )


# ---------------------------------------------------------------------------------------------
# Retrieve instances (application/dicom)
# ---------------------------------------------------------------------------------------------


def _wanted_syntax(accept: list[MediaType], part_type: str) -> str | None:
    """The transfer syntax asked for parts of ``part_type``: "*", a UID, or None (not asked)."""
    for media in accept:
        inner, syntax = media.type, media.params.get("transfer-syntax")
        if media.type == "multipart/related":
            inner = media.params.get("type", part_type).lower()
        if inner in (part_type, "*/*", "multipart/*", "application/*"):
            return syntax or ExplicitVRLittleEndian
    return None


def _retrieve(request: HttpRequest, tenant: Tenant, actor: audit.Actor, kwargs: Any) -> Any:
    try:
        instances = _instances(tenant, kwargs)
    except NotFound:
        return _not_found()
    wanted = _wanted_syntax(parse_accept(request.META.get("HTTP_ACCEPT")), "application/dicom")
    if wanted is None:
        return error_response(
            406, 'Instances are sent as multipart/related; type="application/dicom".'
        )
    stored = sorted({i.transfer_syntax_uid for i in instances})
    if wanted != "*" and wanted != ExplicitVRLittleEndian and any(s != wanted for s in stored):
        return error_response(
            406,
            f"Transfer syntax {wanted} cannot be produced. Available: "
            f"{', '.join(stored)} (as stored, transfer-syntax=*) or {ExplicitVRLittleEndian}.",
        )
    _audit("instances", tenant, actor, instances, transfer_syntax=wanted)

    def parts() -> Iterator[tuple[str, bytes]]:
        for instance, data in _in_parallel(_read, instances):
            if wanted in ("*", instance.transfer_syntax_uid):
                syntax, payload = instance.transfer_syntax_uid, data
            else:
                syntax, payload = ExplicitVRLittleEndian, imaging.to_explicit_le(data)
            yield f"application/dicom; transfer-syntax={syntax}", payload

    return _multipart(parts(), "application/dicom")


@dicomweb_endpoint(write=False)
def retrieve_study(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
    return _retrieve(request, tenant, actor, kw)


@dicomweb_endpoint(write=False)
def retrieve_series(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
    return _retrieve(request, tenant, actor, kw)


@dicomweb_endpoint(write=False)
def retrieve_instance(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str
) -> Any:
    return _retrieve(request, tenant, actor, kw)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def _metadata(request: HttpRequest, tenant: Tenant, actor: audit.Actor, kwargs: Any) -> Any:
    try:
        instances = _instances(tenant, kwargs)
    except NotFound:
        return _not_found()
    if negotiate(request.META.get("HTTP_ACCEPT"), [DICOM_JSON, "application/json"]) is None:
        return error_response(406, "Metadata is sent as application/dicom+json.")
    base = base_url(request, tenant)
    _audit("metadata", tenant, actor, instances)

    def documents() -> Iterator[bytes]:
        yield b"["
        for n, (instance, header) in enumerate(_in_parallel(_header, instances)):
            root = (
                f"{base}/studies/{instance.study.study_instance_uid}/series/"
                f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
            )
            yield (b"," if n else b"") + imaging.metadata_json(
                header.dataset, has_pixel_data=header.has_pixel_data, bulk_root=f"{root}/bulkdata/"
            )
        yield b"]"

    return StreamingHttpResponse(documents(), content_type=DICOM_JSON)


@dicomweb_endpoint(write=False)
def study_metadata(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
    return _metadata(request, tenant, actor, kw)


@dicomweb_endpoint(write=False)
def series_metadata(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
    return _metadata(request, tenant, actor, kw)


@dicomweb_endpoint(write=False)
def instance_metadata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str
) -> Any:
    return _metadata(request, tenant, actor, kw)


# ---------------------------------------------------------------------------------------------
# Frames and bulk data
# ---------------------------------------------------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise ValueError("Frame numbers are positive integers separated by commas.") from None
    if not numbers or any(n < 1 for n in numbers):
        raise ValueError("Frame numbers are positive integers separated by commas.")
    return numbers


@dicomweb_endpoint(write=False)
def retrieve_frames(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, frames: str, **kw: str
) -> Any:
    try:
        [instance] = _instances(tenant, kw)
    except NotFound:
        return _not_found()
    try:
        numbers = _frame_numbers(frames)
    except ValueError as exc:
        return error_response(400, str(exc))
    accept = parse_accept(request.META.get("HTTP_ACCEPT"))
    wanted = _wanted_syntax(accept, "application/octet-stream")
    stored = instance.transfer_syntax_uid
    media = "application/octet-stream"
    if wanted is None:
        # A compressed frame may be asked for by its own media type (image/jls, image/jp2, ...).
        media_of_stored = imaging.FRAME_MEDIA_TYPES.get(stored)
        if media_of_stored and negotiate(request.META.get("HTTP_ACCEPT"), [media_of_stored]):
            wanted, media = stored, media_of_stored
        else:
            return error_response(
                406,
                'Frames are sent as multipart/related; type="application/octet-stream" '
                f"(transfer-syntax=* for {stored} as stored, or {ExplicitVRLittleEndian}).",
            )
    if wanted not in ("*", stored, ExplicitVRLittleEndian):
        return error_response(
            406,
            f"Frames of this instance are available as {stored} (transfer-syntax=*) "
            f"or decoded as {ExplicitVRLittleEndian}.",
        )
    try:
        decoded = wanted == ExplicitVRLittleEndian and stored != ExplicitVRLittleEndian
        payloads = imaging.frames(_read(instance), numbers, decoded=decoded)
    except imaging.FrameOutOfRange as exc:
        return error_response(404, str(exc))
    except imaging.CannotDecode as exc:
        return error_response(406, str(exc))
    syntax = ExplicitVRLittleEndian if decoded else stored
    _audit("frames", tenant, actor, [instance], frames=numbers[:50])
    return _multipart(
        iter([(f"{media}; transfer-syntax={syntax}", p) for p in payloads]),
        "application/octet-stream" if media == "application/octet-stream" else media,
    )


@dicomweb_endpoint(write=False)
def instance_bulkdata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, bulk_path: str, **kw: str
) -> Any:
    try:
        [instance] = _instances(tenant, kw)
    except NotFound:
        return _not_found()
    value = imaging.bulk_value(_read(instance), bulk_path)
    if value is None:
        return error_response(404, "This instance has no such bulk data element.")
    _audit("bulkdata", tenant, actor, [instance], element=bulk_path[:40])
    return _multipart(iter([("application/octet-stream", value)]), "application/octet-stream")


# ---------------------------------------------------------------------------------------------
# Rendered images and thumbnails
# ---------------------------------------------------------------------------------------------


def _rendered(
    request: HttpRequest,
    tenant: Tenant,
    actor: audit.Actor,
    kwargs: dict[str, str],
    *,
    thumbnail: bool,
) -> HttpResponse:
    frames = kwargs.pop("frames", None)
    try:
        instances = _instances(tenant, kwargs)
    except NotFound:
        return _not_found()
    media = negotiate(request.META.get("HTTP_ACCEPT"), ["image/jpeg", "image/png"])
    if media is None:
        return error_response(406, "Rendered images are image/jpeg or image/png.")
    try:
        frame = _frame_numbers(frames)[0] if frames else 1
        options = imaging.RenderOptions.from_query(request.GET, thumbnail=thumbnail)
    except ValueError as exc:
        return error_response(400, str(exc))
    # A study or series is represented by the middle instance of its first series.
    first_series = [i for i in instances if i.series_id == instances[0].series_id]
    instance = first_series[len(first_series) // 2]
    try:
        image = imaging.render(_read(instance), frame, options, media)
    except imaging.FrameOutOfRange as exc:
        return error_response(404, str(exc))
    except imaging.CannotDecode as exc:
        return error_response(406, str(exc))
    _audit("thumbnail" if thumbnail else "rendered", tenant, actor, [instance], frame=frame)
    return HttpResponse(image, content_type=media)


def _rendered_view(thumbnail: bool) -> Any:
    @dicomweb_endpoint(write=False)
    def view(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
        return _rendered(request, tenant, actor, dict(kw), thumbnail=thumbnail)

    return view


study_rendered = series_rendered = instance_rendered = frames_rendered = _rendered_view(False)
study_thumbnail = series_thumbnail = instance_thumbnail = frames_thumbnail = _rendered_view(True)
