"""WADO-RS: retrieve instances, metadata, frames, bulk data and rendered images (PS3.18 10.4).

Every route first finds what was asked for in the tenant's index (404 when the tenant has none of
it), then reads stored objects. Series metadata and thumbnails come from the derived objects
built on the ``derive`` queue (``studies/derive.py``) when they are current; pixel work is in
``studies/imaging``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from pydicom.uid import ExplicitVRLittleEndian

from tenants import audit
from tenants.models import AuditAction, Outcome, Tenant

from .. import derive, imaging
from ..dicom.reader import open_stored
from ..models import Instance, Series, SeriesDerived, Study
from ..storage import object_store
from .media import MediaType, negotiate, parse_accept
from .responses import DICOM_JSON, error_response
from .views import base_url, dicomweb_endpoint, is_uid

ELE = str(ExplicitVRLittleEndian)
OCTETS = "application/octet-stream"
DICOM = "application/dicom"
READ_THREADS = 8
# Objects up to this size are read whole, several in parallel; larger ones are streamed.
WHOLE_READ_LIMIT = 16 * 1024 * 1024
STREAM_CHUNK = 1024 * 1024

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Finding what was asked for
# ---------------------------------------------------------------------------------------------


class NotFound(Exception):
    pass


def _check_uids(kwargs: dict[str, str]) -> None:
    for name in ("study_uid", "series_uid", "instance_uid"):
        if name in kwargs and not is_uid(kwargs[name]):
            raise NotFound


def _instances(tenant: Tenant, kwargs: dict[str, str]) -> list[Instance]:
    """The tenant's instances under the URL's UIDs, in series then instance order."""
    _check_uids(kwargs)
    queryset: QuerySet[Instance] = Instance.objects.filter(
        tenant=tenant, study__study_instance_uid=kwargs["study_uid"]
    )
    if "series_uid" in kwargs:
        queryset = queryset.filter(series__series_instance_uid=kwargs["series_uid"])
    if "instance_uid" in kwargs:
        queryset = queryset.filter(sop_instance_uid=kwargs["instance_uid"])
    rows = list(
        queryset.select_related("series", "study").order_by(
            "series__series_number", "series_id", *derive.INSTANCE_ORDER
        )
    )
    if not rows:
        raise NotFound
    return rows


def _one_instance(tenant: Tenant, kwargs: dict[str, str]) -> Instance:
    """The tenant's instance under the URL's three UIDs, in one raw statement: the frame route is
    the hottest in a viewer, and building the ORM query would cost more than running it. The study
    and series come back as the few fields the caller reads (UIDs, patient), not whole rows."""
    _check_uids(kwargs)
    rows = list(
        Instance.objects.raw(
            _ONE_INSTANCE_SQL,
            [tenant.pk, kwargs["study_uid"], kwargs["series_uid"], kwargs["instance_uid"]],
        )
    )
    if not rows:
        raise NotFound
    instance = rows[0]
    instance.study = Study(
        id=instance.study_id,
        tenant_id=tenant.pk,
        patient_id=instance.x_patient_id,  # type: ignore[attr-defined]
        study_instance_uid=kwargs["study_uid"],
    )
    instance.series = Series(
        id=instance.series_id,
        tenant_id=tenant.pk,
        study_id=instance.study_id,
        series_instance_uid=kwargs["series_uid"],
    )
    return instance


_I, _SE, _ST = Instance._meta.db_table, Series._meta.db_table, Study._meta.db_table
_ONE_INSTANCE_SQL = (
    f"SELECT i.*, st.patient_id AS x_patient_id FROM {_I} i"
    f" JOIN {_SE} se ON se.id = i.series_id JOIN {_ST} st ON st.id = i.study_id"
    " WHERE i.tenant_id = %s AND st.study_instance_uid = %s AND se.series_instance_uid = %s"
    " AND i.sop_instance_uid = %s"
)


def _series_rows(tenant: Tenant, kwargs: dict[str, str]) -> list[Series]:
    """The tenant's series under the URL's study (and series) UID, with study and derived row:
    one query whatever their size."""
    _check_uids(kwargs)
    queryset = Series.objects.filter(tenant=tenant, study__study_instance_uid=kwargs["study_uid"])
    if "series_uid" in kwargs:
        queryset = queryset.filter(series_instance_uid=kwargs["series_uid"])
    rows = list(queryset.select_related("study", "derived").order_by("series_number", "id"))
    if not rows:
        raise NotFound
    return rows


def _derived(series: Series) -> SeriesDerived | None:
    try:
        return series.derived
    except SeriesDerived.DoesNotExist:
        return None


def _current(series: Series) -> SeriesDerived | None:
    row = _derived(series)
    if row is not None and row.is_current(series.number_of_series_related_instances):
        return row
    return None


def _in_parallel(read: Callable[[Instance], T], instances: list[Instance]) -> Iterator[T]:
    """``read`` of each instance in order, a few at a time in parallel (storage latency)."""
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="wado") as pool:
        for start in range(0, len(instances), READ_THREADS):
            yield from pool.map(read, instances[start : start + READ_THREADS])


def _read(instance: Instance) -> bytes:
    with object_store().open(instance.storage_key, "rb") as f:
        data: bytes = f.read()
    return data


def _audit(
    kind: str,
    tenant: Tenant,
    actor: audit.Actor,
    study: Study,
    *,
    series_uid: str = "",
    sop_uid: str = "",
    instances: int,
    outcome: str = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    audit.record(
        action=AuditAction.WADO_RETRIEVE,
        actor=actor,
        tenant=tenant,
        outcome=outcome,
        patient_ref=study.patient_id,
        study_instance_uid=study.study_instance_uid,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        detail={"kind": kind, "instances": instances, **detail},
    )


def _audit_instances(
    kind: str,
    tenant: Tenant,
    actor: audit.Actor,
    instances: list[Instance],
    *,
    outcome: str = Outcome.SUCCESS,
    **detail: Any,
) -> None:
    first = instances[0]
    _audit(
        kind,
        tenant,
        actor,
        first.study,
        series_uid=first.series.series_instance_uid
        if len({i.series_id for i in instances}) == 1
        else "",
        sop_uid=first.sop_instance_uid if len(instances) == 1 else "",
        instances=len(instances),
        outcome=outcome,
        **detail,
    )


def _not_found() -> HttpResponse:
    return error_response(404, "No such study, series or instance in this hospital.")


def _multipart(
    parts: Iterator[tuple[str, int, Iterator[bytes]]], media_type: str
) -> StreamingHttpResponse:
    """A streamed multipart/related body; each part is (Content-Type, length, chunks)."""
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for content_type, length, chunks in parts:
            yield (
                f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
            ).encode()
            yield from chunks
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingHttpResponse(
        body(), content_type=f'multipart/related; type="{media_type}"; boundary={boundary}'
    )


def _whole(content_type: str, payload: bytes) -> tuple[str, int, Iterator[bytes]]:
    return content_type, len(payload), iter((payload,))


# ---------------------------------------------------------------------------------------------
# Accept: which part media types and transfer syntaxes the client takes, in its order
# ---------------------------------------------------------------------------------------------


@dataclass
class Choice:
    media: str  # media type of each part
    syntax: str  # "*", a transfer syntax UID, or "" (not given: the default for the media type)


_WILDCARDS = ("*/*", "*", "multipart/*")


def _choices(accept: list[MediaType], part_types: list[str]) -> list[Choice]:
    """Each acceptable (part media type, transfer syntax), in the client's order of preference.

    ``multipart/related; type=X`` (quoted or not) and a bare ``X`` both mean parts of type X.
    """
    out: list[Choice] = []
    for media in accept:
        inner = media.type
        if inner == "multipart/related":
            inner = media.params.get("type", part_types[0]).strip().lower()
        syntax = media.params.get("transfer-syntax", "").strip()
        for part_type in part_types:
            if (
                inner == part_type
                or inner in _WILDCARDS
                or (inner.endswith("/*") and part_type.startswith(inner[:-1]))
            ):
                out.append(Choice(part_type, syntax))
                break
    return out


# ---------------------------------------------------------------------------------------------
# Retrieve instances (application/dicom)
# ---------------------------------------------------------------------------------------------


def _instance_syntax(choices: list[Choice], stored: set[str]) -> str | None:
    """The transfer syntax to send: "*" (as stored), ELE, or a UID every instance is stored in."""
    for choice in choices:
        syntax = choice.syntax or ELE  # PS3.18 8.7.3.5.2: application/dicom defaults to ELE
        if syntax == "*" or syntax == ELE or stored == {syntax}:
            return syntax
    return None


def _stored_part(instance: Instance) -> tuple[str, int, Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        with object_store().open(instance.storage_key, "rb") as f:
            while chunk := f.read(STREAM_CHUNK):
                yield chunk

    return f"{DICOM}; transfer-syntax={instance.transfer_syntax_uid}", instance.size, chunks()


def _instance_part(instance: Instance, wanted: str) -> tuple[str, int, Any]:
    """Read (in a worker thread) what is sent for one instance."""
    as_stored = wanted in ("*", instance.transfer_syntax_uid)
    if as_stored and instance.size > WHOLE_READ_LIMIT:
        return _stored_part(instance)  # streamed when sent, never whole in memory
    data = _read(instance)
    if as_stored:
        return _whole(f"{DICOM}; transfer-syntax={instance.transfer_syntax_uid}", data)
    return _whole(f"{DICOM}; transfer-syntax={ELE}", imaging.to_explicit_le(data))


def _retrieve(request: HttpRequest, tenant: Tenant, actor: audit.Actor, kwargs: Any) -> Any:
    try:
        instances = _instances(tenant, kwargs)
    except NotFound:
        return _not_found()
    stored = {i.transfer_syntax_uid for i in instances}
    choices = _choices(parse_accept(request.META.get("HTTP_ACCEPT")), [DICOM])
    wanted = _instance_syntax(choices, stored)
    if wanted is None:
        _audit_instances("instances", tenant, actor, instances, outcome=Outcome.FAILURE)
        asked = ", ".join(sorted({c.syntax for c in choices if c.syntax})) or "none"
        return error_response(
            406,
            'Instances are sent as multipart/related; type="application/dicom" in their stored '
            f"transfer syntax ({', '.join(sorted(stored))}; transfer-syntax=*) or in {ELE}. "
            f"Asked for: {asked}.",
        )
    _audit_instances("instances", tenant, actor, instances, transfer_syntax=wanted)

    parts = _in_parallel(lambda i: _instance_part(i, wanted), instances)
    return _multipart(parts, DICOM)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def _metadata_media(request: HttpRequest) -> bool:
    return negotiate(request.META.get("HTTP_ACCEPT"), [DICOM_JSON, "application/json"]) is not None


def _series_documents(tenant: Tenant, series: Series) -> Iterator[bytes]:
    """The series' instance documents (relative URIs): from its derived object when current,
    else read from the stored files (and a rebuild requested)."""
    current = _current(series)
    if current is not None:
        document = derive.read_object(current.metadata_key)
        inner = document.strip()[1:-1]
        if inner:
            yield inner
        return
    derive.request_rebuild(tenant_id=tenant.id, series_id=series.pk)
    instances = list(
        Instance.objects.filter(tenant=tenant, series=series).order_by(*derive.INSTANCE_ORDER)
    )
    yield from derive.instance_documents(
        instances, series.study.study_instance_uid, series.series_instance_uid
    )


def _metadata(request: HttpRequest, tenant: Tenant, actor: audit.Actor, kwargs: Any) -> Any:
    try:
        if "instance_uid" in kwargs:
            [instance] = _instances(tenant, kwargs)
            series_list = []
        else:
            series_list = _series_rows(tenant, kwargs)
    except NotFound:
        return _not_found()
    if not _metadata_media(request):
        return error_response(406, "Metadata is sent as application/dicom+json.")
    base = base_url(request, tenant)
    if not series_list:
        _audit_instances("metadata", tenant, actor, [instance])
        document = derive.instance_document(
            instance, instance.study.study_instance_uid, instance.series.series_instance_uid
        )
        return HttpResponse(b"[" + imaging.absolute(document, base) + b"]", content_type=DICOM_JSON)
    study = series_list[0].study
    _audit(
        "metadata",
        tenant,
        actor,
        study,
        series_uid=series_list[0].series_instance_uid if "series_uid" in kwargs else "",
        instances=sum(s.number_of_series_related_instances for s in series_list),
        derived=sum(1 for s in series_list if _current(s) is not None),
    )

    def documents() -> Iterator[bytes]:
        for series in series_list:
            yield from _series_documents(tenant, series)

    def body() -> Iterator[bytes]:
        for chunk in derive.json_array(documents()):
            yield imaging.absolute(chunk, base)

    etag = _derived_etag(series_list, base)
    response: HttpResponse | StreamingHttpResponse
    if etag and etag in request.META.get("HTTP_IF_NONE_MATCH", ""):
        response = HttpResponse(status=304)
    else:
        response = StreamingHttpResponse(body(), content_type=DICOM_JSON)
    if etag:
        response["ETag"] = etag
    return response


def _derived_etag(series_list: list[Series], base: str) -> str:
    """An entity tag when every series is answered from its current derived document: the
    documents' hashes and the base URL written into them."""
    tags = []
    for series in series_list:
        current = _current(series)
        if current is None or not current.metadata_etag:
            return ""
        tags.append(current.metadata_etag)
    digest = hashlib.sha256("|".join([base, *tags]).encode()).hexdigest()[:32]
    return f'"{digest}"'


# ---------------------------------------------------------------------------------------------
# Frames and bulk data
# ---------------------------------------------------------------------------------------------

_FRAME_LIST_HELP = "Frame numbers are positive integers separated by commas, e.g. frames/1,2,3."


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        raise ValueError(_FRAME_LIST_HELP) from None
    if not numbers or any(n < 1 for n in numbers) or len(numbers) > 10_000:
        raise ValueError(_FRAME_LIST_HELP)
    return numbers


# What a frame response sends: the viewer-ready frames, the frames as stored, or decoded pixels.
READY, STORED, DECODED = "ready", "stored", "decoded"
# Frames are revalidated on every use (If-None-Match, answered 304 without a storage read): a
# resend of an instance with other pixels must show at once, and a revoked user must stop
# seeing them. "private": patient data never sits in a shared cache.
FRAME_CACHE_CONTROL = "private, no-cache"


def _frame_plan(choices: list[Choice], stored: str, ready: str = "") -> tuple[str, str] | None:
    """(part media type, READY, STORED or DECODED) for the first acceptable choice; None when
    none is. ``ready`` is the syntax of the instance's current ready frames, if it has some:
    chosen when the client takes any syntax (``transfer-syntax=*``) or names it."""
    own_media = imaging.FRAME_MEDIA_TYPES.get(stored)
    ready_media = imaging.FRAME_MEDIA_TYPES.get(ready) if ready else None
    for choice in choices:
        if choice.media == OCTETS:
            if ready and choice.syntax in ("*", ready):
                return OCTETS, READY
            if choice.syntax in ("*", stored):
                return OCTETS, STORED
            if choice.syntax in ("", ELE):
                # Default for application/octet-stream is Explicit VR Little Endian (decoded).
                return OCTETS, DECODED if stored != ELE else STORED
        elif choice.media == ready_media and choice.syntax in ("", "*", ready):
            return choice.media, READY
        elif choice.media == own_media and choice.syntax in ("", "*", stored):
            return choice.media, STORED
    return None


def _frames_etag(instance: Instance, media: str, kind: str, numbers: list[int]) -> str:
    """A strong entity tag: the stored object's digest, what is sent and which frames (for
    ready frames also the object they are read from and its frame offsets)."""
    parts = [instance.sha256, media, kind, ",".join(map(str, numbers))]
    if kind == READY:
        parts += [instance.ready_syntax, instance.ready_key, str(instance.ready_offsets)]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _matches(etag: str, if_none_match: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes do not count."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return etag in tags or "*" in tags


@dicomweb_endpoint(write=False)
def retrieve_frames(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, frames: str, **kw: str
) -> Any:
    try:
        instance = _one_instance(tenant, kw)
    except NotFound:
        return _not_found()
    try:
        numbers = _frame_numbers(frames)
    except ValueError as exc:
        return error_response(400, str(exc))
    stored = instance.transfer_syntax_uid
    ready = instance.ready_syntax if imaging.ready.current(instance) else ""
    part_types = [OCTETS]
    for syntax in (stored, ready):
        media_type = imaging.FRAME_MEDIA_TYPES.get(syntax)
        if media_type and media_type not in part_types:
            part_types.append(media_type)
    choices = _choices(parse_accept(request.META.get("HTTP_ACCEPT")), part_types)
    plan = _frame_plan(choices, stored, ready)
    detail: dict[str, Any] = {"frames": numbers[:50]}
    if plan is None:
        _audit_instances("frames", tenant, actor, [instance], outcome=Outcome.FAILURE, **detail)
        return error_response(
            406,
            'Frames are sent as multipart/related; type="application/octet-stream", as stored '
            f"({stored}; transfer-syntax=*) or decoded ({ELE}).",
        )
    media, kind = plan
    etag = _frames_etag(instance, media, kind, numbers)
    if _matches(etag, request.META.get("HTTP_IF_NONE_MATCH", "")):
        _audit_instances("frames", tenant, actor, [instance], not_modified=True, **detail)
        return _cacheable(HttpResponse(status=304), etag)
    store = object_store()
    try:
        if kind == READY:
            result = imaging.Frames(ready, imaging.ready.read(store, instance, numbers))
        else:
            result = imaging.read_frames(
                store,
                instance.storage_key,
                instance.size,
                numbers,
                decoded=kind == DECODED,
                layout=imaging.NativeLayout.of(instance),
            )
    except (imaging.FrameOutOfRange, imaging.CannotDecode) as exc:
        _audit_instances("frames", tenant, actor, [instance], outcome=Outcome.FAILURE, **detail)
        status = 404 if isinstance(exc, imaging.FrameOutOfRange) else 406
        return error_response(status, str(exc))
    _audit_instances("frames", tenant, actor, [instance], **detail)
    # The parameter name in lower case and nothing else in the header: viewers match it exactly.
    content_type = f"{media}; transfer-syntax={result.syntax}"
    parts = iter([_whole(content_type, p) for p in result.payloads])
    return _cacheable(_multipart(parts, media), etag)


def _cacheable(response: HttpResponseBase, etag: str) -> HttpResponseBase:
    response["ETag"] = etag
    response["Cache-Control"] = FRAME_CACHE_CONTROL
    patch_vary_headers(response, ["Accept"])
    return response


@dicomweb_endpoint(write=False)
def instance_bulkdata(
    request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, bulk_path: str, **kw: str
) -> Any:
    try:
        instance = _one_instance(tenant, kw)
    except NotFound:
        return _not_found()
    with open_stored(object_store(), instance.storage_key, instance.size) as fp:
        value = imaging.bulk_value(fp, bulk_path)
    detail = {"element": bulk_path[:40]}
    if value is None:
        _audit_instances("bulkdata", tenant, actor, [instance], outcome=Outcome.FAILURE, **detail)
        return error_response(404, "This instance has no such bulk data element.")
    _audit_instances("bulkdata", tenant, actor, [instance], **detail)
    return _multipart(iter([_whole(OCTETS, value)]), OCTETS)


# ---------------------------------------------------------------------------------------------
# Rendered images and thumbnails
# ---------------------------------------------------------------------------------------------


def _representative(tenant: Tenant, series: Series) -> Instance | None:
    """The middle instance of a series: what represents it (and its study) as an image."""
    count = series.number_of_series_related_instances
    return (
        Instance.objects.filter(tenant=tenant, series=series)
        .select_related("series", "study")
        .order_by(*derive.INSTANCE_ORDER)[count // 2 : count // 2 + 1]
        .first()
    )


def _rendered(
    request: HttpRequest,
    tenant: Tenant,
    actor: audit.Actor,
    kwargs: dict[str, str],
    *,
    thumbnail: bool,
) -> HttpResponse:
    frames = kwargs.pop("frames", None)
    kind = "thumbnail" if thumbnail else "rendered"
    try:
        if "instance_uid" in kwargs:
            [instance] = _instances(tenant, kwargs)
            series = None
        else:
            # A study or series is represented by the middle instance of its first series.
            series = _series_rows(tenant, kwargs)[0]
            found = _representative(tenant, series)
            if found is None:
                raise NotFound
            instance = found
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
    detail: dict[str, Any] = {"frame": frame}
    derived = _current(series) if series is not None else None
    if thumbnail and media == "image/jpeg" and options.is_default_thumbnail and derived:
        if derived.thumbnail_key:
            _audit_instances(kind, tenant, actor, [instance], derived=True, **detail)
            return HttpResponse(derive.read_object(derived.thumbnail_key), content_type=media)
    try:
        with open_stored(object_store(), instance.storage_key, instance.size) as fp:
            image = imaging.render(fp, frame, options, media)
    except (imaging.FrameOutOfRange, imaging.CannotDecode) as exc:
        _audit_instances(kind, tenant, actor, [instance], outcome=Outcome.FAILURE, **detail)
        status = 404 if isinstance(exc, imaging.FrameOutOfRange) else 406
        return error_response(status, str(exc))
    _audit_instances(kind, tenant, actor, [instance], **detail)
    return HttpResponse(image, content_type=media)


def _view(impl: Callable[[HttpRequest, Tenant, audit.Actor, dict[str, str]], Any]) -> Any:
    """One endpoint per level (study, series, instance) over the same implementation."""

    @dicomweb_endpoint(write=False)
    def view(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
        return impl(request, tenant, actor, kw)

    return view


retrieve_study = retrieve_series = retrieve_instance = _view(_retrieve)
study_metadata = series_metadata = instance_metadata = _view(_metadata)


def _rendered_view(thumbnail: bool) -> Any:
    @dicomweb_endpoint(write=False)
    def view(request: HttpRequest, *, tenant: Tenant, actor: audit.Actor, **kw: str) -> Any:
        return _rendered(request, tenant, actor, dict(kw), thumbnail=thumbnail)

    return view


study_rendered = series_rendered = instance_rendered = frames_rendered = _rendered_view(False)
study_thumbnail = series_thumbnail = instance_thumbnail = frames_thumbnail = _rendered_view(True)
