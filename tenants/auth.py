"""Bearer tokens, for DRF views and for the plain Django views of DICOMweb."""

from __future__ import annotations

import hmac

from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken, User

_MALFORMED = "Malformed bearer token."
_INVALID = "Invalid, expired or revoked token."


class TokenError(Exception):
    """A token was presented but cannot be used. The message is safe to show."""


def parse_bearer(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value:
        raise TokenError(_MALFORMED)
    return value


def resolve_token(raw: str) -> tuple[User, ApiToken]:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "sky" or not parts[1] or not parts[2]:
        raise TokenError(_MALFORMED)
    _, prefix, secret = parts
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, ApiToken.hash_secret(secret)):
        raise TokenError(_INVALID)
    if not token.is_usable() or not token.user.is_active:
        raise TokenError(_INVALID)
    now = timezone.now()
    # Touch last_used_at at most once a minute: a busy client must not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def authenticate_request(request: HttpRequest) -> tuple[User | None, ApiToken | None]:
    """Bearer token first, then the session. Raises TokenError for a bad token."""
    raw = parse_bearer(request)
    if raw is not None:
        return resolve_token(raw)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user, None
    return None, None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        try:
            raw = parse_bearer(request._request)
            if raw is None:
                return None
            return resolve_token(raw)
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request):
        return 'Bearer realm="skylight"'
