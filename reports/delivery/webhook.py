"""POST a DiagnosticReport to the hospital's endpoint, signed, with an idempotency key.

Headers: ``X-Skylight-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>``
(the receiver recomputes it over the raw body) and ``Idempotency-Key``, the same for every attempt
of one delivery, so a receiver that saw a POST whose answer we never got can recognise the resend.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request

from .fhir import FHIR_JSON

SIGNATURE_HEADER = "X-Skylight-Signature"
# Answers that may pass: the endpoint is down, overloaded, or asks us to come back.
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


class WebhookFailed(Exception):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def post(url: str, secret: str, body: bytes, idempotency_key: str, *, timeout: float = 30) -> int:
    """POST once; returns the 2xx status, raises WebhookFailed otherwise."""
    request = urllib.request.Request(  # noqa: S310 - an https/http URL set by the tenant admin
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": FHIR_JSON,
            "Accept": FHIR_JSON,
            "Idempotency-Key": idempotency_key,
            SIGNATURE_HEADER: signature(secret, body),
            "User-Agent": "Skylight-Delivery/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        transient = exc.code in RETRYABLE
        raise WebhookFailed(
            f"The webhook answered HTTP {exc.code}"
            + ("; it will be retried." if transient else "; check its URL and secret, then retry."),
            transient=transient,
        ) from None
    except (urllib.error.URLError, OSError):
        raise WebhookFailed(
            "The webhook could not be reached; it will be retried.", transient=True
        ) from None
