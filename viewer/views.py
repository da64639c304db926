"""The OHIF viewer at ``/viewer/``: its files, a configuration made for each user, and the launch.

OHIF is a prebuilt single-page application (npm ``@ohif/app``) that ``infra/install-ohif.sh``
installs and rewrites to live under ``/viewer/``. This module serves those files, answers every
other path under ``/viewer/`` with ``index.html`` (OHIF routes on the client), and generates
``app-config.js`` per request: one DICOMweb data source per tenant the user may read, offering
to save measurements (DICOM SR by STOW-RS) only where the user may store. The
session cookie authenticates the viewer's DICOMweb requests, which resolve the tenant themselves,
so a data source for a tenant the user may not read could not answer anything anyway.

A launch URL naming studies (``/viewer/viewer?StudyInstanceUIDs=…``) is checked here before the
page is sent: the studies must belong to one tenant the user may read. Anyone else gets an error
page that says nothing about whether the study exists.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils._os import safe_join
from django.views.decorators.http import require_safe

from studies.dicomweb.views import base_url, is_uid
from studies.models import Study
from tenants import audit
from tenants.models import ActorType, AuditAction, Tenant, User
from tenants.queries import readable_tenants, storable_tenants

from . import files

_HASHED, _IMMUTABLE, _REVALIDATE = files.HASHED, files.IMMUTABLE, files.REVALIDATE
_COMPRESSED, _TYPES = files.COMPRESSED, files.TYPES
# Served by Skylight instead of the dist's own: the configuration, and service workers that
# cache nothing (OHIF's would keep responses, patient data included, in the browser).
_GENERATED = {"app-config.js", "sw.js", "init-service-worker.js", "index.html"}
_LAUNCH_KEY = "studyinstanceuids"
_MAX_LAUNCH_STUDIES = 20

INIT_SERVICE_WORKER = """\
// Skylight: no service worker. Unregister any that an earlier OHIF install left behind, so
// nothing keeps responses (patient data) in this browser.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.getRegistrations().then(function (registrations) {
    registrations.forEach(function (registration) { registration.unregister(); });
  });
}
"""
SERVICE_WORKER = """\
// Skylight: a service worker that removes itself and every cache it may have made.
self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (event) {
  event.waitUntil(
    caches.keys()
      .then(function (keys) { return Promise.all(keys.map(function (k) { return caches.delete(k); })); })
      .then(function () { return self.registration.unregister(); })
  );
});
"""
# OHIF builds React elements through this function; the logo links back to Skylight's home.
_LOGO = """\
window.config.whiteLabeling = {
  createLogoComponentFn: function (React) {
    return React.createElement('a', {
      href: '/', target: '_self', rel: 'noopener noreferrer',
      className: 'text-primary-light font-semibold text-lg',
      style: {color: '#fff', fontSize: '18px', letterSpacing: '0.04em', textDecoration: 'none'},
    }, 'Skylight');
  },
};
"""


# OHIF sends no CSRF token, and DICOMweb writes (STOW-RS of a measurement SR) made with the
# session cookie need one: add X-CSRFToken to every same-origin non-GET XHR/fetch under /t/.
# The token is the csrftoken cookie when readable, otherwise the one rendered into the config.
_CSRF = """\
(function (rendered) {
  function token() {
    var m = document.cookie.match(/(?:^|;\\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : rendered;
  }
  function needsToken(method, url) {
    if (/^(GET|HEAD|OPTIONS|TRACE)$/i.test(method || 'GET')) return false;
    var u;
    try { u = new URL(url, window.location.href); } catch (e) { return false; }
    return u.origin === window.location.origin && u.pathname.indexOf('/t/') === 0;
  }
  var open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this._skylightCsrf = needsToken(method, url);
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this._skylightCsrf) this.setRequestHeader('X-CSRFToken', token());
    return send.apply(this, arguments);
  };
  var nativeFetch = window.fetch;
  if (nativeFetch) {
    window.fetch = function (input, init) {
      var isRequest = typeof Request !== 'undefined' && input instanceof Request;
      var method = (init && init.method) || (isRequest ? input.method : 'GET');
      if (!needsToken(method, isRequest ? input.url : String(input))) {
        return nativeFetch.apply(window, arguments);  // anything else goes out untouched
      }
      var request = new Request(input, init);
      var headers = new Headers(request.headers);
      if (!headers.has('X-CSRFToken')) headers.set('X-CSRFToken', token());
      return nativeFetch.call(window, new Request(request, {headers: headers}));
    };
  }
})(%s);
"""


def dist_dir() -> Path:
    return Path(settings.OHIF_DIST)


def _missing_install() -> HttpResponse:
    return HttpResponse(
        "The viewer is not installed: run infra/install-ohif.sh (make run and make test do).",
        status=503,
        content_type="text/plain; charset=utf-8",
    )


def _script(body: str, *, cache: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = cache
    return response


# ---------------------------------------------------------------------------------------------
# Files of the dist
# ---------------------------------------------------------------------------------------------


def _accepts_gzip(request: HttpRequest) -> bool:
    return "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", "").lower()


def _file_response(request: HttpRequest, path: Path) -> FileResponse:
    suffix = path.suffix.lower()
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    target, encoding = path, None
    if suffix in _COMPRESSED:
        gz = path.with_name(path.name + ".gz")
        if _accepts_gzip(request) and gz.is_file():
            target, encoding = gz, "gzip"
    response = FileResponse(
        target.open("rb"), content_type=content_type or "application/octet-stream"
    )
    if encoding:
        response["Content-Encoding"] = encoding
    if suffix in _COMPRESSED:
        response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = _IMMUTABLE if _HASHED.search(path.name) else _REVALIDATE
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _dist_file(relative: str) -> Path | None:
    """The file of the dist at this path, or None (then the path is a client-side route)."""
    if not relative or relative.endswith(".gz") or relative in _GENERATED:
        return None
    try:
        candidate = Path(safe_join(str(dist_dir()), relative))
    except Exception:  # noqa: BLE001 - SuspiciousFileOperation: outside the dist
        return None
    return candidate if candidate.is_file() else None


# ---------------------------------------------------------------------------------------------
# Per-user configuration
# ---------------------------------------------------------------------------------------------


def data_source(
    request: HttpRequest, tenant: Tenant, *, may_store: bool = False
) -> dict[str, object]:
    root = base_url(request, tenant)
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": tenant.slug,
        "configuration": {
            "friendlyName": tenant.name,
            "name": tenant.slug,
            "qidoRoot": root,
            "wadoRoot": root,
            "wadoUriRoot": root,
            "qidoSupportsIncludeField": True,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": True,
            "supportsWildcard": True,
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
            # Measurements are saved as DICOM SR into the study by STOW-RS: offered only where
            # this user may store (STOW-RS would refuse a read-only user anyway).
            "dicomUploadEnabled": may_store,
        },
    }


def app_config(
    user_tenants: list[Tenant],
    request: HttpRequest,
    default: str,
    storable: frozenset[str] = frozenset(),
) -> dict[str, object]:
    return {
        "name": "skylight",
        "routerBasename": "/viewer",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        # Cross-origin isolation is not needed: only OHIF's AI tools use SharedArrayBuffer.
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "groupEnabledModesFirst": True,
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "showErrorDetails": "production",
        # The investigational-use notice is a modal that blocks every first visit; whether
        # Skylight shows its own notice is a product decision recorded in the README.
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": default,
        "dataSources": [
            data_source(request, tenant, may_store=tenant.slug in storable)
            for tenant in user_tenants
        ],
        # Onboarding tours block mouse input until dismissed.
        "customizationService": [{"ohif.tours": {"$set": []}}],
    }


@require_safe
def app_config_js(request: HttpRequest) -> HttpResponse:
    """``window.config`` for this user: a data source per readable tenant, tours off."""
    if not request.user.is_authenticated:
        response = _script("/* Log in to Skylight to use the viewer. */\n", cache="no-store")
        response.status_code = 401
        return response
    user = cast(User, request.user)
    tenants = list(readable_tenants(user).order_by("slug"))
    # A consultant's and a referrer's hospitals too: DICOMweb keeps them to their studies
    # there, and offers them no storing (they are not in ``storable``).
    tenants += [t for t in _consulted_tenants(user) if t not in tenants]
    tenants += [t for t in _referred_tenants(user) if t not in tenants]
    storable = frozenset(storable_tenants(user).values_list("slug", flat=True))
    slugs = [t.slug for t in tenants]
    wanted = request.GET.get("default", "")
    default = wanted if wanted in slugs else (slugs[0] if slugs else "")
    config = json.dumps(app_config(tenants, request, default, storable), indent=2)
    # get_token also sets the CSRF cookie on this response if the browser has none.
    csrf = _CSRF % json.dumps(get_token(request))
    body = (
        f"// Skylight: generated for this user, per request.\nwindow.config = {config};\n"
        f"{_LOGO}{csrf}"
    )
    return _script(body, cache="no-store")


@require_safe
def init_service_worker(request: HttpRequest) -> HttpResponse:
    return _script(INIT_SERVICE_WORKER, cache="no-cache")


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    return _script(SERVICE_WORKER, cache="no-cache")


# ---------------------------------------------------------------------------------------------
# The page and the launch
# ---------------------------------------------------------------------------------------------


def _consulted_tenants(user: User) -> QuerySet[Tenant]:
    """Hospitals of which an open consult lets the user see a study (reports.collab builds on
    this app, hence the import here)."""
    from reports.collab.access import consulted_tenants

    return consulted_tenants(user)


def _consulted_study_ids(user: User) -> QuerySet[Any]:
    from reports.collab.access import open_consults

    return open_consults(user).values("study_id")


def _referred_tenants(user: User) -> QuerySet[Tenant]:
    from studies.sharing.access import referred_tenants

    return referred_tenants(user)


def _referred_study_ids(user: User) -> QuerySet[Any]:
    from studies.sharing.access import referred_studies

    return referred_studies(user).values("id")


def _launch_uids(request: HttpRequest) -> list[str] | None:
    """The studies a launch URL names (OHIF reads the key in any case), or None if it names none."""
    values = [v for key, vs in request.GET.lists() if key.lower() == _LAUNCH_KEY for v in vs]
    if not values:
        return None
    return [uid.strip() for value in values for uid in value.split(",") if uid.strip()]


def _launch_tenant(user: User, uids: list[str], wanted: str) -> tuple[Tenant, list[Study]] | None:
    """The one readable tenant that holds every study named, or None."""
    if not uids or len(uids) > _MAX_LAUNCH_STUDIES or not all(is_uid(u) for u in uids):
        return None
    studies = Study.objects.filter(
        Q(tenant__in=readable_tenants(user))
        | Q(id__in=_consulted_study_ids(user))
        | Q(id__in=_referred_study_ids(user)),
        study_instance_uid__in=uids,
    ).select_related("tenant")
    if wanted:
        studies = studies.filter(tenant__slug=wanted)
    by_tenant: dict[str, list[Study]] = {}
    for study in studies.order_by("tenant__slug"):
        by_tenant.setdefault(study.tenant.slug, []).append(study)
    for found in by_tenant.values():
        if {s.study_instance_uid for s in found} == set(uids):
            return found[0].tenant, found
    return None


def _not_found_page(request: HttpRequest) -> HttpResponse:
    response = render(request, "viewer/not_found.html", status=404)
    response["Cache-Control"] = "no-store"
    return response


def _index(request: HttpRequest, default: str, config: str = "") -> HttpResponse:
    index = dist_dir() / "index.html"
    if not index.is_file():
        return _missing_install()
    html = index.read_text(encoding="utf-8")
    if config:  # a share link's own configuration (studies.sharing)
        html = html.replace('src="/viewer/app-config.js"', f'src="{config}"', 1)
    elif default:
        # The launch decides the data source OHIF starts with; app-config.js checks the name.
        html = html.replace(
            'src="/viewer/app-config.js"', f'src="/viewer/app-config.js?default={default}"', 1
        )
    # The page, not the dist's files (they would vary on Cookie): make sure the CSRF cookie
    # exists for the token app-config.js adds to DICOMweb writes.
    get_token(request)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def viewer(request: HttpRequest, path: str = "") -> HttpResponseBase:
    """A file of the dist, or the application page for any other path (client-side routes)."""
    found = _dist_file(path)
    if found is not None:
        return _file_response(request, found)
    if Path(path).suffix.lower() in _TYPES or path.endswith(".gz"):
        raise Http404("No such file.")  # a missing asset, not a route: no page in its place
    if not dist_dir().is_dir():
        return _missing_install()
    share = request.GET.get("share", "")
    if share:
        return _share_launch(request, share)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user = cast(User, request.user)
    uids = _launch_uids(request)
    wanted = next((vs[-1] for k, vs in request.GET.lists() if k.lower() == "datasources"), "")
    if uids is None:
        if not (
            readable_tenants(user).exists()
            or _consulted_tenants(user).exists()
            or _referred_tenants(user).exists()
        ):
            return _not_found_page(request)  # OHIF with no data source shows only an error
        return _index(request, default="")
    launch = _launch_tenant(user, uids, wanted)
    if launch is None:
        return _not_found_page(request)
    tenant, studies = launch
    if request.method == "HEAD":  # a link checker's probe opens nothing
        return _index(request, default=tenant.slug)
    actor = audit.Actor.for_user(user, address=request.META.get("REMOTE_ADDR"))
    audit.record_many(
        audit.build(
            action=AuditAction.VIEWER_OPEN,
            actor=actor,
            tenant=tenant,
            study_instance_uid=study.study_instance_uid,
            patient_ref=study.patient_id,
            detail={"studies": len(studies)},
        )
        for study in studies
    )
    return _index(request, default=tenant.slug)


def _share_launch(request: HttpRequest, token: str) -> HttpResponse:
    """A share link's studies (``?share=<token>``), with or without a login: the link decides,
    and the viewer's configuration is the link's own (its DICOMweb, nothing to store)."""
    from studies.sharing.views import launch

    uids = _launch_uids(request) or []
    if not uids or len(uids) > _MAX_LAUNCH_STUDIES or not all(is_uid(u) for u in uids):
        return _not_found_page(request)
    found = launch(request, token, uids)
    if isinstance(found, HttpResponse):
        return found
    if request.method != "HEAD":
        actor = audit.Actor(
            type=ActorType.TOKEN,
            address=request.META.get("REMOTE_ADDR"),
            extra={"via": "share", "share": found.pk},
        )
        audit.record_many(
            audit.build(
                action=AuditAction.VIEWER_OPEN,
                actor=actor,
                tenant=found.tenant,
                study_instance_uid=study.study_instance_uid,
                patient_ref=study.patient_id,
                detail={"studies": len(uids)},
            )
            for study in Study.objects.filter(tenant=found.tenant, study_instance_uid__in=uids)
        )
    return _index(request, default="", config=f"/s/{token}/app-config.js")
