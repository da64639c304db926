"""The code stays clean: ruff (lint and format) and mypy with django-stubs, as `make lint` runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import tenant_lint

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing_to_fix():
    lint = _run(str(BIN / "ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_mypy_finds_no_type_errors():
    result = _run(
        str(BIN / "mypy"), "config", "tenants", "studies", "worklists", "reports", "viewer"
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_no_migration_is_missing():
    result = _run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:]


# ---------------------------------------------------------------------------------------------
# The tenant-filter lint (tests/tenant_lint.py). Each exception: (path, function, model) and why
# it is safe. A new entry needs a reviewer's agreement; an entry no longer needed must go.
# ---------------------------------------------------------------------------------------------

ALLOWED: dict[tuple[str, str, str], str] = {
    ("reports/collab/access.py", "open_consults", "Consult"):
        "scoped by the user's own guardian grants (grants__user=user)",
    ("reports/collab/api.py", "Notifications.get", "Notification"):
        "a user's own notifications (user=self.user), whichever tenant they come from",
    ("reports/collab/services.py", "mark_read", "Notification"):
        "a user's own notifications (user=user)",
    ("reports/collab/services.py", "unread_count", "Notification"):
        "a user's own notifications (user=user)",
    ("reports/collab/services.py", "visible_consult", "Consult"):
        "access function: the row is checked with worklist.visible_item before it is returned",
    ("reports/collab/views.py", "notifications", "Notification"):
        "a user's own notifications (user=user)",
    ("reports/collab/views.py", "read", "Notification"):
        "a user's own notification (user=_me(request))",
    ("reports/critical/services.py", "escalate", "CriticalResult"):
        "system sweep over every tenant (Celery beat), each row handled in its own tenant",
    ("reports/critical/services.py", "visible_critical", "CriticalResult"):
        "access function: the row is checked with worklist.visible_item before it is returned",
    ("reports/readers.py", "_criticals_for", "CriticalCommunication"):
        "subqueries: communications naming the user, or any, ANDed with the referrer's tenants",
    ("studies/sharing/access.py", "referred_studies", "Study"):
        "scope Q of the user's own grants (tenant-checked) or tenant_id__in their referring tenants",
    ("tenants/auditlog/breakglass.py", "grants_item", "BreakGlass"):
        "the user's own live grant (user=user) for one item the caller already holds by id",
    ("reports/delivery/content.py", "_fetch", "ReportVersion"):
        "follows supersedes_id of a version already read for its tenant",
    ("reports/delivery/content.py", "document", "Study"):
        "the study of a report already read for its tenant (report.study_id)",
    ("reports/delivery/queries.py", "item_deliveries", "Delivery"):
        "the ordering queryset of a Prefetch under versions already filtered by report",
    ("reports/delivery/services.py", "sweep", "Delivery"):
        "system sweep over every tenant (Celery beat); each delivery re-queued with its tenant",
    ("studies/services.py", "_recount", "Series"):
        "pk from rows just read with tenant=tenant in the same function",
    ("studies/services.py", "_recount", "Study"):
        "study ids of series just read with tenant=tenant in the same function",
    ("studies/services.py", "sweep_ready_studies", "Study"):
        "system sweep over every tenant: a conditional UPDATE by the pk it just listed",
    ("tenants/dicomconfig/forms.py", "CalledAETitleForm.clean_ae_title", "CalledAETitle"):
        "a called AE title is unique platform-wide: checked across tenants, answers only yes/no",
    ("tenants/management/commands/seed_demo.py", "Command.handle", "CalledAETitle"):
        "AE titles are unique across tenants: the demo checks none is taken",
    ("tenants/mfa.py", "_recent_failures", "AuditEvent"):
        "a user's own MFA failures (actor_user=user): platform rows (tenant NULL), for the lock-out",
    ("reports/templating/demo.py", "seed_templates", "ReportTemplate"):
        "the owner's keyword in **owned: tenant= for a hospital's, group= for a group's",
    ("reports/templating/demo.py", "seed_templates", "TextBlock"):
        "the owner's keyword in **owned: tenant= for a hospital's, group= for a group's",
    ("reports/templating/views.py", "_index", "ReportTemplate"):
        "a group's templates (group=group, of the groups the user administers): no tenant",
    ("reports/templating/views.py", "_index", "TextBlock"):
        "a group's or the user's own text blocks (group=, owner=): no tenant",
    ("worklists/eligibility.py", "_load", "Privilege"):
        "a user's own privileges across their tenants (user=user): the input of tenant scoping",
    ("worklists/priors.py", "prefetch", "WorkItem"):
        "Celery task by item id (system work); the priors it finds are filtered by item.tenant",
    ("worklists/services.py", "auto_assign", "WorkItem"):
        "readers' current load across tenants, counted to balance work, never shown",
    ("worklists/services.py", "ensure_items_for_ready_studies", "Study"):
        "system sweep over every tenant: creates each study's work item in its own tenant",
}  # fmt: skip


@pytest.fixture(scope="module")
def lint_models() -> dict[str, tenant_lint.TenantModel]:
    return tenant_lint.tenant_models()


def test_every_query_on_a_tenant_model_names_its_tenant_or_is_a_reviewed_exception(lint_models):
    findings = tenant_lint.scan(ROOT, lint_models)
    missing = tenant_lint.unlisted(findings, ALLOWED)
    assert not missing, (
        "queries on tenant-owned models without a tenant filter (add tenant=..., or an entry "
        "with its reason to ALLOWED in tests/test_code_quality.py):\n"
        + "\n".join(str(f) for f in missing)
    )
    stale = set(ALLOWED) - {f.key for f in findings}
    assert not stale, f"ALLOWED entries that match no query any more; remove them: {stale}"


def test_the_lint_flags_a_new_unscoped_query_and_passes_scoped_ones(lint_models):
    snippet = """
def leaky(uid):
    return Study.objects.filter(study_instance_uid=uid).first()

def raw(uid):
    return Instance.objects.raw("SELECT * FROM studies_instance WHERE sop_instance_uid = %s", [uid])

def scoped(tenant, uid):
    return Study.objects.filter(tenant=tenant, study_instance_uid=uid).first()

def through_parent(study):
    return Series.objects.filter(study=study)

def again(item):
    return WorkItem.objects.filter(pk=item.pk).update(state="x")

def made(tenant):
    return Study.objects.create(tenant=tenant, study_instance_uid="1.2")
"""
    findings = tenant_lint.scan_source("snippet.py", snippet, lint_models)
    assert {(f.function, f.model) for f in findings} == {("leaky", "Study"), ("raw", "Instance")}
    assert "leaky" in str(findings[0]) or "leaky" in str(findings[1])
