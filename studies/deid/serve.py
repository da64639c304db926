"""The DICOMweb of a de-identified share link (``/s/<token>/dicomweb/…``).

``studies.sharing.views.dicomweb_scope`` hands a de-identified link's request here instead of to
the tenants' views. Requests name mapped UIDs, resolved back to the link's own rows; answers are
made by the tenants' views (same index, same stored objects, same audit rows, which name the real
study for the hospital) and then de-identified on the fly before they leave:

- QIDO-RS and metadata: each DICOM JSON data set goes through the profile; URLs are rebuilt from
  the mapped UIDs (RetrieveURL, BulkDataURI). Matching is limited to UIDs, modality and numbers:
  a search by name or birth date could otherwise test a guess about who the patient is.
- Instances (and the link's zip): the stored file, de-identified, in its transfer syntax.
- Frames, rendered images and pixel data: the pixels are not changed, so the tenants' views
  answer them for the resolved instance.
- Instances flagged for burned-in text are left out when the policy says so.

On the fly rather than cached: a link is read by one recipient a few times, its studies are
small enough to de-identify per request (the headers come from the derived metadata objects),
and nothing de-identified is left in storage after the link ends.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite

from tenants import audit
from tenants.models import Tenant

from .. import imaging
from ..dicomweb import qido, wado
from ..dicomweb.responses import DICOM_JSON, error_response
from ..dicomweb.views import is_uid
from ..models import Instance, Series, Study
from ..sharing.models import ShareLink
from ..storage import object_store
from .links import UidMap, documents_of, excluded, sop_uid_of
from .profile import deidentify

log = logging.getLogger(__name__)

# QIDO keys a de-identified link matches on (UIDs are mapped back); other keys are ignored.
QIDO_KEYS = {
    "studyinstanceuid": "StudyInstanceUID",
    "0020000d": "StudyInstanceUID",
    "seriesinstanceuid": "SeriesInstanceUID",
    "0020000e": "SeriesInstanceUID",
    "sopinstanceuid": "SOPInstanceUID",
    "00080018": "SOPInstanceUID",
    "modality": "Modality",
    "00080060": "Modality",
    "modalitiesinstudy": "ModalitiesInStudy",
    "00080061": "ModalitiesInStudy",
    "seriesnumber": "SeriesNumber",
    "instancenumber": "InstanceNumber",
    "limit": "limit",
    "offset": "offset",
    "includefield": "includefield",
}
# Bulk data a de-identified link sends: the pixels, which the profile leaves as they are.
PIXEL_TAGS = {"7FE00010", "7FE00008", "7FE00009"}

_QIDO = {
    "dicomweb-studies": qido.search_studies,
    "dicomweb-series-search": qido.search_series,
    "dicomweb-instances-search": qido.search_instances,
    "dicomweb-study-series": qido.search_series,
    "dicomweb-study-instances": qido.search_instances,
    "dicomweb-series-instances": qido.search_instances,
}
_METADATA = {"dicomweb-study-metadata", "dicomweb-series-metadata", "dicomweb-instance-metadata"}
_RETRIEVE = {"dicomweb-study", "dicomweb-series", "dicomweb-instance"}
_RENDERED = {
    "dicomweb-study-rendered": False,
    "dicomweb-series-rendered": False,
    "dicomweb-instance-rendered": False,
    "dicomweb-frames-rendered": False,
    "dicomweb-study-thumbnail": True,
    "dicomweb-series-thumbnail": True,
    "dicomweb-instance-thumbnail": True,
    "dicomweb-frames-thumbnail": True,
}


def _inner(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """The tenants' view without its authentication wrapper (the link was checked already)."""
    return inspect.unwrap(view)


def _not_found() -> HttpResponse:
    return error_response(404, "No such study, series or instance in this share.")


class Served:
    """One request on a de-identified link: the link, its UID map, its excluded instances."""

    def __init__(self, request: HttpRequest, link: ShareLink, actor: audit.Actor) -> None:
        self.request = request
        self.link = link
        self.tenant: Tenant = link.tenant
        self.actor = actor
        self.map = UidMap(link)
        self.base: str = request.skylight_dicomweb_base  # type: ignore[attr-defined]
        self._excluded: set[int] | None = None

    def excluded(self) -> set[int]:
        if self._excluded is None:
            self._excluded = excluded(self.link, self.map.studies().values())
        return self._excluded

    # -- resolving the URL's mapped UIDs ------------------------------------------------------

    def resolve(
        self, kwargs: dict[str, str]
    ) -> tuple[Study | None, Series | None, Instance | None, bool]:
        """The study, series and instance the URL names (None when it names none at that level);
        the flag is False when a UID it names is not in the share (or is excluded)."""
        study = series = instance = None
        if "study_uid" in kwargs:
            study = self.map.study(kwargs["study_uid"])
            if study is None:
                return None, None, None, False
        if "series_uid" in kwargs:
            assert study is not None
            series = self.map.series(study, kwargs["series_uid"])
            if series is None:
                return None, None, None, False
        if "instance_uid" in kwargs:
            assert series is not None
            instance = self.map.instance(series, kwargs["instance_uid"])
            if instance is None or instance.pk in self.excluded():
                return None, None, None, False
        return study, series, instance, True

    def original(
        self, study: Study | None, series: Series | None, instance: Instance | None
    ) -> dict[str, str]:
        out = {}
        if study is not None:
            out["study_uid"] = study.study_instance_uid
        if series is not None:
            out["series_uid"] = series.series_instance_uid
        if instance is not None:
            out["instance_uid"] = instance.sop_instance_uid
        return out

    # -- de-identifying DICOM JSON -----------------------------------------------------------

    def dataset(self, document: dict[str, Any]) -> Dataset | None:
        """A DICOM JSON data set, de-identified; None when it cannot be read (then not sent)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = Dataset.from_json(document, bulk_data_uri_handler=lambda *a: b"")
            return deidentify(ds, self.map.recipe)
        except Exception:  # noqa: BLE001 - an unreadable data set is left out, never sent raw
            log.warning("share %s: a data set could not be de-identified", self.link.pk)
            return None

    def document(self, ds: Dataset, bulk_tags: list[str], retrieve_url: bool = False) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = ds.to_json_dict(bulk_data_threshold=imaging.metadata.BULK_THRESHOLD)
        path = self.path(ds)
        for tag in bulk_tags:
            if tag in out and tag in PIXEL_TAGS:
                out[tag] = {"vr": out[tag]["vr"], "BulkDataURI": f"{path}/bulkdata/{tag}"}
            else:
                out.pop(tag, None)  # other bulk data is not served by a de-identified link
        if retrieve_url:
            out["00081190"] = {"vr": "UR", "Value": [path]}
        return out

    def path(self, ds: Dataset) -> str:
        url = self.base
        for keyword, segment in (
            ("StudyInstanceUID", "studies"),
            ("SeriesInstanceUID", "series"),
            ("SOPInstanceUID", "instances"),
        ):
            value = str(ds.get(keyword, "") or "")
            if not value:
                break
            url += f"/{segment}/{value}"
        return url


def answer(request: HttpRequest, link: ShareLink, actor: audit.Actor) -> HttpResponse:
    """The response to a GET on a de-identified link's DICOMweb."""
    match = request.resolver_match
    name = match.url_name if match is not None else ""
    kwargs = {k: v for k, v in (match.kwargs if match else {}).items() if k != "share_token"}
    served = Served(request, link, actor)
    for key in ("study_uid", "series_uid", "instance_uid"):
        if key in kwargs and not is_uid(kwargs[key]):
            return _not_found()
    if name in _QIDO:
        return _search(served, _QIDO[name], kwargs)
    study, series, instance, found = served.resolve(kwargs)
    if not found:
        return _not_found()
    original = served.original(study, series, instance)
    if name in _METADATA:
        return _metadata(served, study, series, instance)
    if name in _RETRIEVE:
        return _retrieve(served, study, series, instance)
    if name == "dicomweb-frames":
        return _inner(wado.retrieve_frames)(
            request, tenant=served.tenant, actor=actor, frames=kwargs["frames"], **original
        )
    if name == "dicomweb-instance-bulkdata":
        if kwargs["bulk_path"].strip("/").split("/")[0].upper() not in PIXEL_TAGS:
            return error_response(404, "A de-identified share sends no bulk data but pixels.")
        return _inner(wado.instance_bulkdata)(
            request,
            tenant=served.tenant,
            actor=actor,
            bulk_path=kwargs["bulk_path"],
            **original,
        )
    if name in _RENDERED:
        if instance is None:  # a study or series: its first instance the link serves
            assert study is not None
            first = (
                Instance.objects.filter(tenant=served.tenant, study=study)
                .filter(**({"series": series} if series is not None else {}))
                .exclude(id__in=served.excluded())
                .select_related("series")
                .order_by("series__series_number", "series_id", "instance_number", "id")
                .first()
            )
            if first is None:
                return _not_found()
            original = {
                "study_uid": study.study_instance_uid,
                "series_uid": first.series.series_instance_uid,
                "instance_uid": first.sop_instance_uid,
            }
        if "frames" in kwargs:
            original["frames"] = kwargs["frames"]
        view = wado.instance_thumbnail if _RENDERED[name] else wado.instance_rendered
        return _inner(view)(request, tenant=served.tenant, actor=actor, **original)
    return error_response(404, "No such DICOMweb resource.")


# ---------------------------------------------------------------------------------------------
# QIDO-RS
# ---------------------------------------------------------------------------------------------


def _search(served: Served, view: Callable[..., Any], kwargs: dict[str, str]) -> HttpResponse:
    request = served.request
    study = series = None
    if "study_uid" in kwargs:
        study = served.map.study(kwargs["study_uid"])
        if study is None:
            return _not_found()
    if "series_uid" in kwargs:
        assert study is not None
        series = served.map.series(study, kwargs["series_uid"])
        if series is None:
            return _not_found()
    query = QueryDict(mutable=True)
    for name in request.GET:
        key = QIDO_KEYS.get(name.lower())
        if key is None:
            continue
        for value in request.GET.getlist(name):
            if key == "StudyInstanceUID":
                value = ",".join(_originals_of_studies(served, value))
            elif key == "SeriesInstanceUID":
                value = ",".join(_originals_of_series(served, value))
            elif key == "SOPInstanceUID":
                value = ",".join(_originals_of_instances(served, value))
            query.appendlist(key, value or "0")  # "0": a UID no object has
    request.GET = query  # type: ignore[assignment]
    original = {}
    if study is not None:
        original["study_uid"] = study.study_instance_uid
    if series is not None:
        original["series_uid"] = series.series_instance_uid
    scope = frozenset(s.study_instance_uid for s in served.map.studies().values())
    response = _inner(view)(
        request, tenant=served.tenant, actor=served.actor, study_scope=scope, **original
    )
    if response.status_code != 200:
        return response  # errors name no patient (the tenants' views make sure of it)
    results = json.loads(response.content)
    excluded = served.excluded()
    out = []
    left_out = _left_out(served, excluded)
    for document in results:
        sop = sop_uid_of(document)
        series_uid = (document.get("0020000E", {}).get("Value") or [""])[0]
        if sop and sop in left_out.instances:
            continue
        if not sop and series_uid and series_uid in left_out.whole_series:
            continue
        _recount(document, left_out)
        document.pop("00081190", None)
        ds = served.dataset(document)
        if ds is not None:
            out.append(served.document(ds, [], retrieve_url=True))
    answered = HttpResponse(json.dumps(out), content_type=response["Content-Type"])
    return answered


@dataclass
class LeftOut:
    """What a link leaves out, by original UIDs: instances, whole series, and counts to take off
    the study's and series' numbers of related instances and series."""

    instances: set[str] = field(default_factory=set)
    whole_series: set[str] = field(default_factory=set)
    per_study: Counter[str] = field(default_factory=Counter)
    per_series: Counter[str] = field(default_factory=Counter)
    series_per_study: Counter[str] = field(default_factory=Counter)


def _left_out(served: Served, excluded: set[int]) -> LeftOut:
    out = LeftOut()
    if not excluded:
        return out
    rows = list(
        Instance.objects.filter(tenant=served.tenant, id__in=excluded).values_list(
            "sop_instance_uid",
            "series_id",
            "series__series_instance_uid",
            "study__study_instance_uid",
        )
    )
    series_ids = {series_id for _, series_id, _, _ in rows}
    kept = set(
        Instance.objects.filter(tenant=served.tenant, series_id__in=series_ids)
        .exclude(id__in=excluded)
        .values_list("series_id", flat=True)
    )
    for sop, series_id, series_uid, study_uid in rows:
        out.instances.add(sop)
        out.per_series[series_uid] += 1
        out.per_study[study_uid] += 1
        if series_id not in kept and series_uid not in out.whole_series:
            out.whole_series.add(series_uid)
            out.series_per_study[study_uid] += 1
    return out


def _recount(document: dict[str, Any], left_out: LeftOut) -> None:
    """Take what the link leaves out off the numbers of related instances and series."""
    study_uid = (document.get("0020000D", {}).get("Value") or [""])[0]
    series_uid = (document.get("0020000E", {}).get("Value") or [""])[0]
    for tag, taken in (
        ("00201208", left_out.per_study[study_uid]),
        ("00201206", left_out.series_per_study[study_uid]),
        ("00201209", left_out.per_series[series_uid]),
    ):
        values = document.get(tag, {}).get("Value")
        if values and taken:
            values[0] = max(0, int(values[0]) - taken)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.replace("\\", ",").split(",") if v.strip()]


def _originals_of_studies(served: Served, value: str) -> list[str]:
    return [s.study_instance_uid for u in _split(value) if (s := served.map.study(u)) is not None]


def _originals_of_series(served: Served, value: str) -> list[str]:
    return _originals(served, Series, "series_instance_uid", value)


def _originals_of_instances(served: Served, value: str) -> list[str]:
    return _originals(served, Instance, "sop_instance_uid", value)


def _originals(served: Served, model: Any, field: str, value: str) -> list[str]:
    """The link's own UIDs (of ``field`` in ``model``) that map to one of the UIDs in ``value``."""
    wanted = set(_split(value))
    rows = model.objects.filter(
        tenant=served.tenant, study__in=list(served.map.studies().values())
    ).values_list(field, flat=True)
    return [uid for uid in rows if served.map.uid(uid) in wanted]


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def _metadata(
    served: Served, study: Study | None, series: Series | None, instance: Instance | None
) -> HttpResponse:
    assert study is not None
    if not wado._metadata_media(served.request):
        return error_response(406, "Metadata is sent as application/dicom+json.")
    rows = (
        [series]
        if series is not None
        else list(
            Series.objects.filter(tenant=served.tenant, study=study).order_by("series_number", "id")
        )
    )
    excluded = served.excluded()
    wanted = {instance.sop_instance_uid} if instance is not None else None
    out = []
    count = 0
    for row in rows:
        assert row is not None
        row.study = study
        row.tenant = served.tenant
        dropped = set(
            Instance.objects.filter(tenant=served.tenant, series=row, id__in=excluded).values_list(
                "sop_instance_uid", flat=True
            )
        )
        for document in documents_of(row):
            sop = sop_uid_of(document)
            if sop in dropped or (wanted is not None and sop not in wanted):
                continue
            bulk = [t for t, e in document.items() if isinstance(e, dict) and "BulkDataURI" in e]
            ds = served.dataset(document)
            if ds is not None:
                out.append(served.document(ds, bulk))
                count += 1
    wado._audit(
        "metadata",
        served.tenant,
        served.actor,
        study,
        series_uid=series.series_instance_uid if series is not None else "",
        sop_uid=instance.sop_instance_uid if instance is not None else "",
        instances=count,
        deidentified=True,
    )
    return HttpResponse(json.dumps(out, separators=(",", ":")), content_type=DICOM_JSON)


# ---------------------------------------------------------------------------------------------
# Instances (multipart application/dicom) and the zip
# ---------------------------------------------------------------------------------------------


def deidentified_bytes(link_map: UidMap, instance: Instance) -> bytes:
    """The stored file of an instance, de-identified, in its own transfer syntax."""
    with object_store().open(instance.storage_key, "rb") as f:
        data = f.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data), force=True)
        deidentify(ds, link_map.recipe)
        out = io.BytesIO()
        dcmwrite(out, ds, enforce_file_format=False)
    return out.getvalue()


def served_instances(
    served_map: UidMap, studies: list[Study], excluded: set[int]
) -> list[Instance]:
    return list(
        Instance.objects.filter(tenant_id=served_map.link.tenant_id, study__in=studies)
        .exclude(id__in=excluded)
        .select_related("series", "study")
        .order_by("study_id", "series__series_number", "series_id", "instance_number", "id")
    )


def _retrieve(
    served: Served, study: Study | None, series: Series | None, instance: Instance | None
) -> HttpResponse:
    assert study is not None
    instances = served_instances(served.map, [study], served.excluded())
    if series is not None:
        instances = [i for i in instances if i.series_id == series.pk]
    if instance is not None:
        instances = [i for i in instances if i.pk == instance.pk]
    if not instances:
        return _not_found()
    stored = {i.transfer_syntax_uid for i in instances}
    choices = wado._choices(imaging_accept(served.request), [wado.DICOM])
    wanted = wado._instance_syntax(choices, stored)
    if wanted is None:
        return error_response(
            406,
            'Instances are sent as multipart/related; type="application/dicom", as stored '
            f"(transfer-syntax=*) or in {wado.ELE}.",
        )
    wado._audit_instances("instances", served.tenant, served.actor, instances, deidentified=True)

    def part(i: Instance) -> tuple[str, int, Iterator[bytes]]:
        data = deidentified_bytes(served.map, i)
        if wanted in ("*", i.transfer_syntax_uid):
            return wado._whole(f"{wado.DICOM}; transfer-syntax={i.transfer_syntax_uid}", data)
        return wado._whole(
            f"{wado.DICOM}; transfer-syntax={wado.ELE}", imaging.to_explicit_le(data)
        )

    return wado._multipart(wado._in_parallel(part, instances), wado.DICOM)  # type: ignore[return-value]


def imaging_accept(request: HttpRequest) -> Any:
    from ..dicomweb.media import parse_accept

    return parse_accept(request.META.get("HTTP_ACCEPT"))
