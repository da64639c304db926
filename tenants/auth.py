"""Bearer tokens, for DRF views and for the plain Django views of DICOMweb."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import authentication, exceptions

from .models import ApiToken, User

_MALFORMED = "Malformed bearer token."
_INVALID = "Invalid, expired or revoked token."
READ_ONLY = (
    "This token is read-only and cannot change anything; "
    "issue a read-write token on the API tokens page (/tokens/)."
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def client_address(request: HttpRequest) -> str | None:
    """The address lockouts count by: the peer as the web server saw it (a proxy in front sets
    REMOTE_ADDR through the server's own trusted-proxy setting, never from a client header)."""
    return request.META.get("REMOTE_ADDR")


_TOKEN_SQL = (
    "SELECT u.*, t.id AS x_token_id, t.name AS x_name, t.secret_hash AS x_secret_hash,"
    " t.created_at AS x_created_at, t.expires_at AS x_expires_at, t.revoked_at AS x_revoked_at,"
    " t.last_used_at AS x_last_used_at, t.tenant_id AS x_tenant_id, t.read_only AS x_read_only"
    f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
    " WHERE t.prefix = %s"
)


def _moment(value: datetime | str | None) -> datetime | None:
    """A timestamp column read outside the model's own columns: SQLite gives it as naive UTC
    (a datetime or text), PostgreSQL as an aware datetime."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


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
    # One raw statement: this runs on every API request, and building the ORM query would cost
    # more than running it.
    user = next(iter(User.objects.raw(_TOKEN_SQL, [prefix])), None)
    if user is None:
        raise TokenError(_INVALID)
    row: Any = user  # the token's columns ride along as x_* attributes
    if not hmac.compare_digest(row.x_secret_hash, ApiToken.hash_secret(secret)):
        raise TokenError(_INVALID)
    token = ApiToken(
        id=row.x_token_id,
        user=user,
        name=row.x_name,
        prefix=prefix,
        secret_hash=row.x_secret_hash,
        created_at=_moment(row.x_created_at) or timezone.now(),
        expires_at=_moment(row.x_expires_at),
        revoked_at=_moment(row.x_revoked_at),
        last_used_at=_moment(row.x_last_used_at),
        tenant_id=row.x_tenant_id,
        read_only=bool(row.x_read_only),
    )
    token._state.adding, token._state.db = False, user._state.db  # a loaded row, not a new one
    if not token.is_usable() or not user.is_active:
        raise TokenError(_INVALID)
    # The tenant queries (tenants.queries) keep a scoped token's user to that one hospital.
    user.token_tenant_id = token.tenant_id  # type: ignore[attr-defined]
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
            user, token = resolve_token(raw)
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        if token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(READ_ONLY)
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="skylight"'


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout for the login page. An authenticate() call without a request is
    made by the server itself (a management command, a test client's login), never by a
    remote guesser, and there is no address to count it by: it is let through to the next
    backend instead of refused."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
