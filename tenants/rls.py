"""PostgreSQL row-level security: the database itself keeps each tenant's patient data apart.

The application filters every query by tenant (and a lint in tests/test_code_quality.py checks
that it does). Row-level security is the second wall, for the query that forgets: the tables of
``PROTECTED`` carry a policy (migrations tenants/0011, reports/0010, worklists/0004,
studies/0009, studies/0010, tenants/0016, written by ``protect``) that shows and accepts only rows
whose ``tenant_id`` is in the session setting ``skylight.tenants`` (comma-separated ids), unless ``skylight.all_tenants`` is
``on``; what a NULL tenant means is per table (``NULLS``). With neither set a query sees nothing. The tables are
``FORCE``d, so the owner is subject too; the application must connect as a role that is neither a
superuser nor ``BYPASSRLS`` (superusers skip every policy; tests/harness.py makes such a role).

Who sets the context:

- every new connection starts as system work (``all_tenants``): migrations, management commands,
  sweeps and the SCP before it knows the called tenant need it; except one opened inside a Celery
  task that names a tenant (Celery may close and reopen connections between tasks), which starts
  narrowed to it;
- each web request narrows it (``TenantContextMiddleware``): to the tenant its ``/t/<slug>/`` URL
  names, else to the tenants its user is related to (memberships, reading agreements, consults;
  a token kept to one hospital: that one); anonymous requests see no tenant at all;
- each Celery task narrows it to the ``tenant_id`` its arguments name (``task_prerun``); tasks
  without one (sweeps, housekeeping) are system work;
- the SCP narrows an association's connection to its tenant once the called AE title is resolved.

After a request or a task the connection goes back to the process's default. None of this costs
a round trip of its own: a change is sent with the connection's next query (see "Setting the
context without round trips of its own" below). This is not the
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
from django.db.migrations import RunPython
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
# Every table under a policy, by what its NULL tenant means (``protect``): the tests check each.
PROTECTED: dict[str, str] = {
    **{table: "none" for table in TABLES},
    # reports/0010
    "reports_consult": "none",
    "reports_comment": "none",
    "reports_notification": "none",
    "reports_criticalsettings": "none",
    "reports_criticalresult": "none",
    "reports_criticalcommunication": "none",
    "reports_deliverysettings": "none",
    "reports_delivery": "none",
    "reports_reviewpolicy": "none",
    "reports_reviewrequest": "none",
    "reports_reporttemplate": "shared",
    "reports_textblock": "shared",
    "tenants_auditevent": "platform",
    # worklists/0004
    "worklists_privilege": "none",
    "worklists_priorityclass": "readable",
    "worklists_routingrule": "none",
    # studies/0009
    "studies_sharepolicy": "none",
    "studies_sharelink": "none",
    "studies_sharelinkstudy": "none",
    "studies_studygrant": "none",
    # studies/0010, tenants/0016: de-identification, retention, the set-up pages
    "studies_deidpolicy": "none",
    "studies_deidinstance": "none",
    "studies_retentionpolicy": "none",
    "studies_purgedstudy": "none",
    "tenants_hospitalprofile": "none",
    "tenants_associationstatus": "none",
}
POLICY = "skylight_tenant_isolation"
# A row is visible when system work is declared or its tenant is in the list.
PREDICATE = (
    "current_setting('skylight.all_tenants', true) = 'on' OR tenant_id = ANY ("
    "string_to_array(nullif(current_setting('skylight.tenants', true), ''), ',')::bigint[])"
)

# What a table's rows with a NULL tenant are (``protect``):
# - "none": the column is NOT NULL, nothing to say;
# - "shared": rows of no tenant (a reading group's or a person's templates) are outside tenant
#   isolation: any context reads and writes them, the views decide who may;
# - "readable": built-ins (priority classes) every context reads; only system work writes them;
# - "platform": the platform's own audit rows (logins, MFA failures: no tenant, no patient data).
#   Every context appends them (a failed login knows no tenant) and reads them (the MFA lock-out
#   counts a user's failures from a narrowed request); only system work seals them.
NULLS = ("none", "shared", "readable", "platform")


def policy_sql(table: str, *, column: str = "tenant_id", nulls: str = "none") -> list[str]:
    """The statements that put ``table`` under tenant isolation by ``column`` (see ``NULLS``).

    One permissive policy per concern (PostgreSQL ORs them per command); FORCEd, so the table's
    owner, the application's role, is subject too."""
    if nulls not in NULLS:
        raise ValueError(f"nulls must be one of {NULLS}, not {nulls!r}")
    predicate = PREDICATE.replace("tenant_id", column)
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
    ]
    if nulls == "shared":
        shared = f"{predicate} OR {column} IS NULL"
        return statements + [
            f"CREATE POLICY {POLICY} ON {table} USING ({shared}) WITH CHECK ({shared})"
        ]
    statements.append(
        f"CREATE POLICY {POLICY} ON {table} USING ({predicate}) WITH CHECK ({predicate})"
    )
    if nulls == "readable":
        statements.append(
            f"CREATE POLICY {POLICY}_builtin ON {table} FOR SELECT USING ({column} IS NULL)"
        )
    elif nulls == "platform":
        statements += [
            f"CREATE POLICY {POLICY}_platform_append ON {table} FOR INSERT"
            f" WITH CHECK ({column} IS NULL)",
            f"CREATE POLICY {POLICY}_platform_read ON {table} FOR SELECT USING ({column} IS NULL)",
        ]
    return statements


def unpolicy_sql(table: str) -> list[str]:
    """The statements that undo ``policy_sql`` (whichever ``nulls`` it had)."""
    return [
        f"DROP POLICY IF EXISTS {POLICY} ON {table}",
        f"DROP POLICY IF EXISTS {POLICY}_builtin ON {table}",
        f"DROP POLICY IF EXISTS {POLICY}_platform_append ON {table}",
        f"DROP POLICY IF EXISTS {POLICY}_platform_read ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def protect(*tables: str, **options: Any) -> RunPython:
    """A migration operation putting ``tables`` under tenant isolation (PostgreSQL; nothing on
    SQLite), reversible. ``options`` go to ``policy_sql`` (``column``, ``nulls``). For a new
    tenant table: ``operations = [..., rls.protect("app_table")]`` in the migration that creates
    it, and its name in ``PROTECTED`` above so the tests check it."""
    for table in tables:
        policy_sql(table, **options)  # a wrong option fails when the migration is written

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                for statement in policy_sql(table, **options):
                    schema_editor.execute(statement)

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                for statement in unpolicy_sql(table):
                    schema_editor.execute(statement)

    return RunPython(forwards, backwards, elidable=False)


_SET = (
    "SELECT set_config('skylight.tenants', %s, false), "
    "set_config('skylight.all_tenants', %s, false)"
)

# ---------------------------------------------------------------------------------------------
# Setting the context without round trips of its own.
#
# A change of context is not sent at once: it is kept as the connection's *pending* statements,
# and the execute wrapper below sends them in the same round trip as the connection's next query
# ("SELECT set_config(...); <query>", one simple-query message; the cursor then steps over the
# set_config results). A request thus pays nothing for its narrowing, and nothing for going back
# to the default afterwards: that too waits for the next query, which in a web worker is the
# next request's (whose own narrowing replaces it before any of its views' queries).
#
# Safety: no query ever runs before the pending statements, so a connection cannot carry one
# request's tenants into another's queries. PostgreSQL undoes a set_config when the transaction
# or savepoint it ran in rolls back; a context applied inside a transaction is therefore kept
# pending-on-rollback: an on_commit callback confirms it, and if Django drops that callback (a
# rollback of the transaction or of the savepoint it was registered in) the statements are sent
# again before the next query. A query that fails in the combined message (which PostgreSQL runs
# as one implicit transaction) leaves them pending too.
# ---------------------------------------------------------------------------------------------

Statement = tuple[str, "list[Any] | None"]


class _Context:
    """The context bookkeeping of one connection (Django's per-thread DatabaseWrapper)."""

    def __init__(self) -> None:
        self.pending: list[Statement] | None = None
        # What was sent last: sent again on a new connection (a reconnect in mid-request).
        self.intended: list[Statement] | None = None
        # Sent inside a transaction: the callback that confirms it on commit.
        self.unconfirmed: Callable[[], None] | None = None

    def want(self, statements: list[Statement]) -> None:
        self.pending = statements
        self.unconfirmed = None


def _context(connection: BaseDatabaseWrapper) -> _Context:
    context = getattr(connection, "_skylight_rls", None)
    if context is None:
        context = _Context()
        connection._skylight_rls = context  # type: ignore[attr-defined]
        connection.execute_wrappers.insert(0, _send_pending_first)
    return context


def _rolled_back(connection: BaseDatabaseWrapper, context: _Context) -> bool:
    """Whether the transaction or savepoint that last set the context has been rolled back."""
    callback = context.unconfirmed
    if callback is None:
        return False
    return not any(entry[1] is callback for entry in connection.run_on_commit)


def _inline(cursor: Any, statements: list[Statement], *, escape: bool) -> str:
    """The statements with their parameters bound (psycopg's client-side binding, as Django's
    own queries), ``%`` doubled when the query they precede has parameters of its own."""
    text = "; ".join(cursor.mogrify(sql, params) for sql, params in statements)
    return text.replace("%", "%%") if escape else text


def _send_pending_first(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    connection = context["connection"]
    state: _Context = connection._skylight_rls
    if state.pending is None and _rolled_back(connection, state):
        state.pending = state.intended
    statements = state.pending
    if statements is None:
        return execute(sql, params, many, context)
    state.pending, state.unconfirmed = None, None
    cursor = context["cursor"]
    raw = cursor.cursor
    try:
        # executemany, or a server-side cursor (DECLARE … FOR one statement): sent apart.
        if many or getattr(raw, "name", None) or not hasattr(raw, "mogrify"):
            with connection.connection.cursor() as own:
                own.execute(_inline(own, statements, escape=False))
            result = execute(sql, params, many, context)
        else:
            prefix = _inline(raw, statements, escape=params is not None)
            result = execute(f"{prefix}; {sql}", params, many, context)
            for _ in statements:
                raw.nextset()
    except BaseException:
        if state.pending is None:
            state.pending = statements
        raise
    state.intended = statements
    if connection.in_atomic_block:
        confirm = _confirmer(state)
        state.unconfirmed = confirm
        connection.on_commit(confirm)
    return result


def _confirmer(state: _Context) -> Callable[[], None]:
    def confirm() -> None:
        if state.unconfirmed is confirm:
            state.unconfirmed = None

    return confirm


def _applies(connection: BaseDatabaseWrapper) -> bool:
    return connection.vendor == "postgresql"


def _want(connection: BaseDatabaseWrapper, statements: list[Statement]) -> None:
    if _applies(connection):
        _context(connection).want(statements)


def _set(connection: BaseDatabaseWrapper, tenants: str, everything: bool) -> None:
    _want(connection, [(_SET, [tenants, "on" if everything else "off"])])


def use_tenants(
    tenant_ids: Iterable[int], *, connection: BaseDatabaseWrapper = default_connection
) -> None:
    """Let this connection see only these tenants' rows (from its next query on)."""
    _set(connection, ",".join(str(int(i)) for i in tenant_ids), False)


def use_all_tenants(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """Declare system work: every tenant's rows (migrations, sweeps, SCP association set-up)."""
    _set(connection, "", True)


def clear(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """No context at all: the policies then show no row and accept none."""
    _set(connection, "", False)


def restore_default(*, connection: BaseDatabaseWrapper = default_connection) -> None:
    """Back to what a new connection starts with (system work), from the next query on."""
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


@contextmanager
def system_work(*, connection: BaseDatabaseWrapper = default_connection) -> Iterator[None]:
    """Run a block as system work, then give the connection back the context it had before.

    For the few writes a narrowed (or anonymous) request makes on the platform's behalf: the
    built-in priority classes made on first use, an invitation accepted by its link."""
    if not _applies(connection):
        yield
        return
    state = _context(connection)
    before = state.pending if state.pending is not None else state.intended
    use_all_tenants(connection=connection)
    try:
        yield
    finally:
        if before is None:
            restore_default(connection=connection)
        else:
            _want(connection, list(before))


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
    # A connection reopened in mid-request or mid-task gets that request's or task's context back.
    context = _context(connection)
    if context.pending is None and context.intended is not None:
        context.want(context.intended)


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
        # A token kept to one hospital (ApiToken.tenant) sees that one at most.
        ") x WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.scope IS NOT NULL AND u.scope <> x.id)"
        "), ''), false), set_config('skylight.all_tenants', 'off', false)"
    )


_BY_USER = "SELECT %s::bigint AS id, NULL::bigint AS scope"
_BY_TOKEN = (
    "SELECT user_id AS id, tenant_id AS scope FROM {token} WHERE prefix = %s"
    " AND secret_hash = %s AND revoked_at IS NULL"
)


def is_violation(error: BaseException) -> bool:
    """Whether a database error is a row-level security refusal (a row written for a tenant
    the context does not hold): views that check permissions after writing turn it into their
    own "you may not"."""
    cause = getattr(error, "__cause__", None)
    return getattr(cause, "sqlstate", None) == "42501" and "row-level security" in str(cause)


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


def _request_context(request: HttpRequest) -> list[Statement]:
    """The statements that narrow a connection to this request's tenants (see the module's
    docstring). The look-ups read tables under policies (consults): they run as system work."""
    slug = _tenant_slug(request)
    if slug is not None:
        return [(_tenant_by_slug_sql(), [slug])]
    system: Statement = (_SET, ["", "on"])
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        # DRF's test client (APIClient.force_authenticate) hands its user over here.
        user = getattr(request, "_force_auth_user", None) or user
    if user is not None and user.is_authenticated:
        if user.is_superuser:  # the platform administrator
            return [system]
        return [system, (_user_tenants_sql(_BY_USER), [user.pk])]
    bearer = _BEARER.match(request.META.get("HTTP_AUTHORIZATION", ""))
    if bearer:
        token_model: Any = apps.get_model("tenants.ApiToken")
        secret_hash = token_model.hash_secret(bearer["secret"])
        return [system, (_user_tenants_sql(_BY_TOKEN), [bearer["prefix"], secret_hash])]
    return [(_SET, ["", "off"])]


def narrow_to_request(request: HttpRequest) -> None:
    """Narrow the connection to this request's tenants, from its next query on."""
    _want(default_connection, _request_context(request))


class TenantContextMiddleware:
    """Narrow the database connection to the request's tenants; ``request_finished`` (after a
    streamed body too) puts the default back. Neither costs a round trip of its own (above)."""

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
