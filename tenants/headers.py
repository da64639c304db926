"""Content-Security-Policy for every response, with a separate policy for the OHIF viewer.

Django's SecurityMiddleware already sends HSTS, nosniff, Referrer-Policy and
Cross-Origin-Opener-Policy from settings, and XFrameOptionsMiddleware sends X-Frame-Options; CSP
is the one header Django does not write, and django-csp would bring a settings vocabulary of its
own for two fixed policies, so this small middleware writes them.

Our own pages run no inline script except the ones that carry the request's nonce
(``{{ request.csp_nonce }}``) and two inline ``return false`` handlers of the reading room,
allowed by their hash. OHIF (under ``/viewer/``) is a prebuilt bundle that compiles WebAssembly
codecs, starts workers from ``blob:`` URLs and sets inline styles, so it gets a policy of its own;
both policies keep ``frame-ancestors 'self'`` (the reading room frames the viewer on our origin,
nobody else may) and ``object-src 'none'``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# Inline event handlers of templates/reports/room.html (allowed by hash, not by 'unsafe-inline').
_HANDLER_HASHES = " ".join(_hash(source) for source in ("return false",))

APP_POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' " + _HANDLER_HASHES + "; "
    # Inline style attributes (indentation of comment threads, htmx's indicator style).
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "frame-src 'self'; "
    "frame-ancestors 'self'; "
    "form-action 'self'; "
    "object-src 'none'; "
    "base-uri 'self'"
)

VIEWER_POLICY = (
    "default-src 'self'; "
    # OHIF's bundle: WebAssembly codecs, and the inline bootstrap of its index.html.
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:; "
    "worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "font-src 'self' data:; "
    "connect-src 'self' blob: data:; "
    "media-src 'self' blob:; "
    "frame-ancestors 'self'; "
    "form-action 'self'; "
    "object-src 'none'; "
    "base-uri 'self'"
)

VIEWER_PREFIX = "/viewer/"


class ContentSecurityPolicyMiddleware:
    """Give each request a fresh nonce and each response the policy for its path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            if request.path.startswith(VIEWER_PREFIX):
                response["Content-Security-Policy"] = VIEWER_POLICY
            else:
                response["Content-Security-Policy"] = APP_POLICY.format(nonce=nonce)
        return response
