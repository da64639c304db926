"""PostgreSQL row-level security: the database itself keeps each tenant's patient data apart.

The application filters every query by tenant (and a lint in tests/test_code_quality.py checks
that it does). Row-level security is the second wall, for the query that forgets: the tables of
``TABLES`` carry a policy (migration tenants/0011) that shows and accepts only rows whose
``tenant_id`` is in the session setting ``skylight.tenants`` (comma-separated ids), unless
``skylight.all_tenants`` is ``on``. With neither set a query sees nothing. The tables are
``FORCE``d, so the owner is subject too; the application must connect as a role that is neither a
superuser nor ``BYPASSRLS`` (superusers skip every policy; tests/harness.py makes such a role).

Who sets the context:

- every new connection starts as system work (``all_tenants``): migrations, management commands,
  sweeps and the SCP before it knows the called tenant need it; except one opened inside a Celery
  task that names a tenant (Celery may close and reopen connections between tasks), which starts
  narrowed to it;
- each web request narrows it (``TenantContextMiddleware``): to the tenant its ``/t/<slug>/`` URL
  names, else to the tenants its user is related to (memberships, reading agreements, consults);
  anonymous requests see no tenant at all;
- each Celery task narrows it to the ``tenant_id`` its arguments name (``task_prerun``); tasks
  without one (sweeps, housekeeping) are system work;
- the SCP narrows an association's connection to its tenant once the called AE title is resolved.

After a request or a task the connection goes back to the process's default. This is not the
"current tenant" the house style forbids: no code reads it to decide anything; it only limits what
the database returns. Threads that a request or task starts for I/O (S3 reads) open their own
connections, which start as system work: they read by ids their caller already checked.

On SQLite (the embedded mode) every function here does nothing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.apps import apps
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from viewer.files import is_public_asset

# The tables under a policy: patient data, and what points at it.
TABLES = (
    "studies_patient",
    "studies_study",
    "studies_series",
    "studies_instance",
    "studies_seriesderived",
    "studies_receipt",
    "worklists_workitem",
    "reports_report",
    "reports_reportversion",
)
POLICY = "skylight_tenant_isolation"
# A row is visible when system work is declared or its tenant is in the list.
PREDICATE = (
    "current_setting('skylight.all_tenants', true) = 'on' OR tenant_id = ANY ("
    "string_to_array(nullif(current_setting('skylight.tenants', true), ''), ',')::bigint[])"
)

_SET = (
    "SELECT set_config('skylight.tenants', %s, false), "
    "set_config('skylight.all_tenants', %s, false)"
)


def _applies(connection: BaseDatabaseWrapper) -> bool:
    return connection.vendor == "postgresql"


def _set(connection: BaseDatabaseWrapper, tenants: str, everything: bool) -> None:
    if not _applies(connection):
        return
    with connection.cursor() as cursor:
        cursor.execute(_SET, [tenants, "on" if everything else "off"])


def use_tenants(
    tenant_ids: Iterable[int], *, connection: BaseDatabaseWrapper = default_connection
) -> None:
    """Let this connection see only these tenants' rows."""
    _set(connection, ",".join(str(int(i)) for i in tenant_ids), False)


def use_all_tenants(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """Declare system work: every tenant's rows (migrations, sweeps, SCP association set-up)."""
    _set(connection, "", True)


def clear(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """No context at all: the policies then show no row and accept none."""
    _set(connection, "", False)


def restore_default(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """Back to what a new connection starts with, if the connection is still open."""
    if _applies(connection) and connection.connection is not None:
        use_all_tenants(connection=connection)


@contextmanager
def tenants(
    tenant_ids: Iterable[int], *, connection: BaseDatabaseWrapper = default_connection
) -> Iterator[None]:
    """Run a block with only these tenants visible, then go back to the default."""
    use_tenants(tenant_ids, connection=connection)
    try:
        yield
    finally:
        restore_default(connection=connection)


def current(*, connection: BaseDatabaseWrapper = default_connection) -> tuple[str, str]:
    """(``skylight.tenants``, ``skylight.all_tenants``) as the database sees them (tests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(current_setting('skylight.tenants', true), ''),"
            " coalesce(current_setting('skylight.all_tenants', true), '')"
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else ("", "")


# ---------------------------------------------------------------------------------------------
# New connections: system work until a request, task or association narrows them.
# ---------------------------------------------------------------------------------------------


def _running_task_tenant() -> int | None:
    """The tenant of the Celery task running in this thread, if any: a connection that Celery
    (re)opens in the middle of a task must not start as system work."""
    from celery import current_task

    task = current_task
    if not task or getattr(task.request, "is_eager", False) or task.request.id is None:
        return None
    return task_tenant_id(task, task.request.args, task.request.kwargs)


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if not _applies(connection):
        return
    tenant_id = _running_task_tenant()
    values = ["", "on"] if tenant_id is None else [str(tenant_id), "off"]
    # The raw driver cursor: Django's own would log the query into a test's query count.
    with connection.connection.cursor() as cursor:
        cursor.execute(_SET, values)


# ---------------------------------------------------------------------------------------------
# Web requests
# ---------------------------------------------------------------------------------------------

_BEARER = re.compile(r"^bearer\s+sky_(?P<prefix>[^_\s]+)_(?P<secret>\S+)\s*$", re.IGNORECASE)


@cache
def _user_tenants_sql(user_source: str) -> str:
    """Every tenant a user is related to: their memberships, their groups' reading agreements,
    the consults asked of them or of their groups. An upper bound: the views decide the rest."""
    table = {
        name: apps.get_model(label)._meta.db_table
        for name, label in (
            ("tenant", "tenants.Tenant"),
            ("membership", "tenants.Membership"),
            ("agreement", "tenants.ReadingAgreement"),
            ("token", "tenants.ApiToken"),
            ("consult", "reports.Consult"),
        )
    }
    m, a, c = table["membership"], table["agreement"], table["consult"]
    source = user_source.format(token=table["token"])
    return (
        f"WITH u AS ({source}), g AS (SELECT {m}.group_id FROM {m} JOIN u ON {m}.user_id = u.id"
        f" WHERE {m}.group_id IS NOT NULL) "
        "SELECT set_config('skylight.tenants', coalesce((SELECT string_agg(DISTINCT x.id::text,"
        " ',') FROM ("
        f" SELECT {m}.tenant_id AS id FROM {m} JOIN u ON {m}.user_id = u.id"
        f"  WHERE {m}.tenant_id IS NOT NULL"
        f" UNION SELECT {a}.tenant_id FROM {a} JOIN g ON {a}.group_id = g.group_id"
        f" UNION SELECT {c}.tenant_id FROM {c} JOIN u ON {c}.consultant_id = u.id"
        f" UNION SELECT {c}.tenant_id FROM {c} JOIN g ON {c}.group_id = g.group_id"
        ") x), ''), false), set_config('skylight.all_tenants', 'off', false)"
    )


_BY_USER = "SELECT %s::bigint AS id"
_BY_TOKEN = (
    "SELECT user_id AS id FROM {token} WHERE prefix = %s AND secret_hash = %s"
    " AND revoked_at IS NULL"
)


@cache
def _tenant_by_slug_sql() -> str:
    t = apps.get_model("tenants.Tenant")._meta.db_table
    return (
        "SELECT set_config('skylight.tenants', coalesce((SELECT id::text FROM "
        f"{t} WHERE slug = %s), ''), false), set_config('skylight.all_tenants', 'off', false)"
    )


def _tenant_slug(request: HttpRequest) -> str | None:
    """The tenant a route names (``…/t/<tenant_slug>/…``: DICOMweb, the studies API, tenant
    settings), whoever the caller is: the view then decides whether they may."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    slug = match.kwargs.get("tenant_slug")
    return str(slug) if slug is not None else None


def narrow_to_request(request: HttpRequest) -> None:
    """Set the connection's tenants for this request (see the module's docstring)."""
    slug = _tenant_slug(request)
    with default_connection.cursor() as cursor:
        if slug is not None:
            cursor.execute(_tenant_by_slug_sql(), [slug])
            return
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            # DRF's test client (APIClient.force_authenticate) hands its user over here.
            user = getattr(request, "_force_auth_user", None) or user
        if user is not None and user.is_authenticated:
            if user.is_superuser:  # the platform administrator
                cursor.execute(_SET, ["", "on"])
            else:
                cursor.execute(_user_tenants_sql(_BY_USER), [user.pk])
            return
        bearer = _BEARER.match(request.META.get("HTTP_AUTHORIZATION", ""))
        if bearer:
            token_model: Any = apps.get_model("tenants.ApiToken")
            secret_hash = token_model.hash_secret(bearer["secret"])
            cursor.execute(_user_tenants_sql(_BY_TOKEN), [bearer["prefix"], secret_hash])
            return
        cursor.execute(_SET, ["", "off"])


class TenantContextMiddleware:
    """Narrow the database connection to the request's tenants; ``request_finished`` (after a
    streamed body too) puts the default back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Public files touch neither the database nor the session (which would add Vary: Cookie).
        if _applies(default_connection) and not is_public_asset(request.path):
            narrow_to_request(request)
        return self.get_response(request)


def on_request_finished(sender: Any, **kwargs: Any) -> None:
    restore_default()


# ---------------------------------------------------------------------------------------------
# Celery tasks
# ---------------------------------------------------------------------------------------------


def task_tenant_id(
    task: Any, args: Iterable[Any] | None, kwargs: dict[str, Any] | None
) -> int | None:
    """The ``tenant_id`` a task's arguments name, or None for system tasks."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except TypeError:
        return None
    value = bound.arguments.get("tenant_id")
    return int(value) if value is not None else None


def on_task_prerun(
    sender: Any = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    if not _applies(default_connection):
        return
    tenant_id = task_tenant_id(task or sender, args, kwargs)
    if tenant_id is None:
        use_all_tenants()
    else:
        use_tenants([tenant_id])


def on_task_postrun(**_: Any) -> None:
    restore_default()


def connect() -> None:
    """Connect the receivers (tenants.apps.TenantsConfig.ready)."""
    from celery.signals import task_postrun, task_prerun
    from django.core.signals import request_finished
    from django.db.backends.signals import connection_created

    connection_created.connect(on_connection_created, dispatch_uid="skylight-rls-connection")
    request_finished.connect(on_request_finished, dispatch_uid="skylight-rls-request")
    task_prerun.connect(on_task_prerun, dispatch_uid="skylight-rls-task-prerun", weak=False)
    task_postrun.connect(on_task_postrun, dispatch_uid="skylight-rls-task-postrun", weak=False)
