"""QIDO-RS: search for studies, series and instances (PS3.18 10.6).

Query parameters become a C-FIND-style identifier for ``studies.query.find_matches``, the engine
C-FIND uses too, so both answer alike. Answers come from the index alone (one SQL query whatever
the number of results); a query never opens a stored object.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from tenants import audit
from tenants.models import AuditAction, Tenant
from tenants.usage import metrics

from ..query import IMAGE, SERIES, STUDY, QueryError, audit_keys, find_matches
from ..query.keys import KEYS, keyword_of
from .media import negotiate
from .responses import DICOM_JSON, error_response
from .views import base_url, dicomweb_endpoint, is_uid

RESERVED = {"includefield", "fuzzymatching", "limit", "offset"}
PATH_KEYS = {"study_uid": "StudyInstanceUID", "series_uid": "SeriesInstanceUID"}
# Attributes every level's answer may add when asked with includefield=all.
ALL_FIELDS = {
    STUDY: [k for k, key in KEYS.items() if key.owner in ("PATIENT", STUDY)],
    SERIES: [k for k, key in KEYS.items() if key.owner == SERIES],
    IMAGE: [k for k, key in KEYS.items() if key.owner == IMAGE],
}


class BadParameter(ValueError):
    pass


def _identifier(request: HttpRequest, level: str, path: dict[str, str]) -> tuple[Dataset, bool]:
    """The query string as an identifier: matching keys with values, includefield keys empty."""
    ds = Dataset()
    fuzzy = False
    values: dict[str, list[str]] = {}
    include: list[str] = []
    for name in request.GET:
        raw = request.GET.getlist(name)
        lowered = name.lower()
        if lowered == "includefield":
            for item in raw:
                include.extend(v.strip() for v in item.split(",") if v.strip())
            continue
        if lowered == "fuzzymatching":
            if raw[-1].lower() not in ("true", "false"):
                raise BadParameter("fuzzymatching must be true or false.")
            fuzzy = raw[-1].lower() == "true"
            continue
        if lowered in ("limit", "offset"):
            continue
        if "." in name:
            raise BadParameter(
                f"{name}: matching inside sequences is not supported by this server."
            )
        keyword = keyword_of(name)
        if keyword is None:
            raise BadParameter(f"{name} is neither a DICOM keyword nor a tag (GGGGEEEE).")
        values.setdefault(keyword, []).extend(raw)
    for keyword, given in path.items():
        values[keyword] = [given]

    for keyword, items in values.items():
        vr = dictionary_VR(tag_for_keyword(keyword))  # type: ignore[arg-type]
        if vr == "SQ":
            raise BadParameter(f"{keyword}: matching on sequences is not supported.")
        parts: list[str] = []
        for item in items:
            # UID lists may be comma-separated (PS3.18 8.3.4.1); other values keep their commas.
            parts.extend(item.split(",") if vr == "UI" else [item])
        _add(ds, keyword, vr, "\\".join(p.strip() for p in parts))

    if any(f.lower() == "all" for f in include):
        include = [f for f in include if f.lower() != "all"] + ALL_FIELDS[level]
    for field in include:
        keyword = keyword_of(field)
        if keyword is None:
            raise BadParameter(f"includefield: {field} is neither a DICOM keyword nor a tag.")
        if keyword not in ds:
            _add(ds, keyword, dictionary_VR(tag_for_keyword(keyword)), "")  # type: ignore[arg-type]
    return ds, fuzzy


def _add(ds: Dataset, keyword: str, vr: str, value: str) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None  # keyword_of admitted only dictionary keywords
    try:
        # Without validation: pydicom's warnings quote the value, which may be patient data.
        ds[tag] = DataElement(tag, vr.split(" or ")[0], value, validation_mode=config.IGNORE)
    except (ValueError, OverflowError):
        raise BadParameter(f"{keyword}: the value is not valid for its type ({vr}).") from None


def _paging(request: HttpRequest) -> tuple[int, int]:
    maximum = settings.SKYLIGHT["QIDO_MAX_RESULTS"]
    try:
        limit = int(request.GET.get("limit", maximum))
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        raise BadParameter("limit and offset must be whole numbers.") from None
    if limit < 0 or offset < 0:
        raise BadParameter("limit and offset cannot be negative.")
    return min(limit, maximum), offset


@metrics.timed_qido
def _search(
    request: HttpRequest,
    tenant: Tenant,
    actor: audit.Actor,
    level: str,
    path: dict[str, str],
    study_scope: frozenset[str] | None = None,
) -> HttpResponse:
    """``study_scope``: a consultant's studies (see views.dicomweb_endpoint); None for readers."""
    media_type = negotiate(request.META.get("HTTP_ACCEPT"), [DICOM_JSON, "application/json"])
    if media_type is None:
        return error_response(
            406, "QIDO-RS answers in application/dicom+json (or application/json) only."
        )
    for name, uid in path.items():
        if not is_uid(uid):
            return error_response(400, f"The {name} in the URL is not a valid DICOM UID.")
    try:
        identifier, fuzzy = _identifier(request, level, path)
        limit, offset = _paging(request)
        if study_scope is not None:
            _keep_to(identifier, study_scope)
        result = find_matches(
            tenant,
            level,
            identifier,
            fuzzy=fuzzy,
            limit=limit,
            offset=offset,
            include_required=True,
        )
    except (BadParameter, QueryError) as exc:
        return error_response(400, f"Bad query: {exc}")
    except DatabaseError:
        return error_response(503, "The index cannot be searched right now; retry later.")

    base = base_url(request, tenant)
    answers = []
    for ds in result.datasets:
        del ds.SpecificCharacterSet  # JSON is UTF-8 by definition
        ds.RetrieveURL = _retrieve_url(base, level, ds)
        answers.append(ds.to_json_dict())
    audit.record(
        action=AuditAction.QIDO_QUERY,
        actor=actor,
        tenant=tenant,
        study_instance_uid=path.get("StudyInstanceUID", ""),
        series_instance_uid=path.get("SeriesInstanceUID", ""),
        detail={
            "level": level,
            "keys": audit_keys(identifier),
            "fuzzy": fuzzy,
            "results": len(answers),
            "truncated": result.truncated,
        },
    )
    response = HttpResponse(json.dumps(answers), content_type=media_type)
    warnings = []
    if result.truncated:
        warnings.append("There are additional results that can be requested")
    if result.ignored:
        warnings.append(
            "The following attributes cannot be matched and were ignored: "
            + ", ".join(result.ignored)
        )
    if warnings:
        response["Warning"] = ", ".join(f'299 {request.get_host()} "{w}"' for w in warnings)
    return response


def _keep_to(identifier: Dataset, study_uids: frozenset[str]) -> None:
    """Match only these studies: those asked for among them, else all of them (UID list
    matching). "0" is a valid UID no study has: asking only for other studies matches nothing."""
    asked = identifier.get("StudyInstanceUID") or ""
    asked_uids = [u for u in ([asked] if isinstance(asked, str) else list(asked)) if u]
    kept = sorted(study_uids.intersection(asked_uids) if asked_uids else study_uids)
    identifier.StudyInstanceUID = kept or "0"


def _retrieve_url(base: str, level: str, ds: Dataset) -> str:
    url = f"{base}/studies/{ds.StudyInstanceUID}"
    if level in (SERIES, IMAGE):
        url += f"/series/{ds.SeriesInstanceUID}"
    if level == IMAGE:
        url += f"/instances/{ds.SOPInstanceUID}"
    return url


def _path(kwargs: dict[str, str]) -> dict[str, str]:
    return {PATH_KEYS[name]: value for name, value in kwargs.items() if name in PATH_KEYS}


@dicomweb_endpoint(write=False, study_scope=True)
def search_studies(
    request: HttpRequest,
    *,
    tenant: Tenant,
    actor: audit.Actor,
    study_scope: frozenset[str] | None = None,
    **kwargs: str,
) -> HttpResponse:
    return _search(request, tenant, actor, STUDY, _path(kwargs), study_scope)


@dicomweb_endpoint(write=False, study_scope=True)
def search_series(
    request: HttpRequest,
    *,
    tenant: Tenant,
    actor: audit.Actor,
    study_scope: frozenset[str] | None = None,
    **kwargs: str,
) -> HttpResponse:
    return _search(request, tenant, actor, SERIES, _path(kwargs), study_scope)


@dicomweb_endpoint(write=False, study_scope=True)
def search_instances(
    request: HttpRequest,
    *,
    tenant: Tenant,
    actor: audit.Actor,
    study_scope: frozenset[str] | None = None,
    **kwargs: str,
) -> HttpResponse:
    return _search(request, tenant, actor, IMAGE, _path(kwargs), study_scope)
