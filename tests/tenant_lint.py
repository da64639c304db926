"""The tenant-filter lint: ORM queries on tenant-owned models must say which tenant.

A model is tenant-owned when it has a non-null ``tenant`` foreign key. A query on one
(``Model.objects.<anything>``, except creating rows) passes when its chain mentions ``tenant``,
when it filters by a parent that is itself tenant-owned (``work_item=item``: the parent was read
through a tenant-checked access function), or when it re-reads an object already in hand
(``pk=item.pk``). Everything else must be in ``ALLOWED`` in tests/test_code_quality.py, with a
one-line reason a reviewer agreed to. PostgreSQL's row-level security (tenants/rls.py) is the net
under what this misses.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCANNED = ("config", "tenants", "studies", "worklists", "reports", "viewer")
# Creating rows names the tenant in the values; none() returns nothing.
NOT_QUERIES = {"create", "bulk_create", "none"}
# Helpers that build a tenant-scoped condition (worklists/eligibility.py: the tenants and
# credentials a reader may see).
SCOPED_HELPERS = {"visible_q"}


@dataclass(frozen=True)
class Finding:
    path: str
    function: str
    model: str
    line: int
    source: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.path, self.function, self.model)

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}(): {self.model}: {self.source}"


@dataclass(frozen=True)
class TenantModel:
    name: str
    # Keywords that scope a query through an already scoped parent (``work_item``, ``report_id``).
    parents: frozenset[str]


def tenant_models() -> dict[str, TenantModel]:
    """The tenant-owned models of the installed apps, by class name: a non-null ``tenant``, or a
    table under row-level security (tenants.rls.PROTECTED: the audit log, built-in priority
    classes, group templates, whose NULL tenant has a meaning but whose other rows are a
    tenant's). A query on those must say which tenant (or ``tenant__isnull``) as well."""
    from django.apps import apps

    from tenants.rls import PROTECTED

    owned = {
        m
        for m in apps.get_models()
        if any(f.name == "tenant" and not f.null for f in m._meta.fields)
        or (m._meta.db_table in PROTECTED and any(f.name == "tenant" for f in m._meta.fields))
    }
    out = {}
    for model in owned:
        parents = set()
        for field in model._meta.fields:
            if field.is_relation and field.related_model in owned:
                parents |= {field.name, f"{field.name}_id", f"{field.name}__in"}
        out[model.__name__] = TenantModel(model.__name__, frozenset(parents))
    return out


def _top_of_chain(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    current = node
    while True:
        parent = parents.get(current)
        if isinstance(parent, ast.Attribute) and parent.value is current:
            current = parent
        elif isinstance(parent, ast.Call) and parent.func is current:
            current = parent
        else:
            return current


def _keywords(chain: ast.AST) -> Iterator[ast.keyword]:
    for node in ast.walk(chain):
        if isinstance(node, ast.Call):
            yield from node.keywords


def _is_scoped(chain: ast.AST, source: str, model: TenantModel) -> bool:
    if "tenant" in source:
        return True
    for node in ast.walk(chain):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in SCOPED_HELPERS:
                return True
    for keyword in _keywords(chain):
        if keyword.arg in model.parents:
            return True
        # Re-reading (or conditionally updating) an object already in hand: pk=item.pk
        if keyword.arg in {"pk", "id"} and isinstance(keyword.value, ast.Attribute):
            if keyword.value.attr in {"pk", "id"}:
                return True
    return False


def _function_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    names = []
    current: ast.AST | None = node
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(current.name)
        current = parents.get(current)
    return ".".join(reversed(names)) or "<module>"


def scan_source(path: str, source: str, models: dict[str, TenantModel]) -> list[Finding]:
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    findings = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Attribute)
            and node.attr == "objects"
            and isinstance(node.value, ast.Name)
            and node.value.id in models
        ):
            continue
        method = parents.get(node)
        if isinstance(method, ast.Attribute) and method.attr in NOT_QUERIES:
            continue
        chain = _top_of_chain(node, parents)
        text = ast.get_source_segment(source, chain) or ""
        if _is_scoped(chain, text, models[node.value.id]):
            continue
        findings.append(
            Finding(
                path=path,
                function=_function_of(node, parents),
                model=node.value.id,
                line=node.lineno,
                source=" ".join(text.split())[:120],
            )
        )
    return findings


def scan(root: Path, models: dict[str, TenantModel]) -> list[Finding]:
    findings: list[Finding] = []
    for package in SCANNED:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(root).as_posix()
            findings += scan_source(relative, path.read_text(), models)
    return findings


def unlisted(
    findings: Iterable[Finding], allowed: dict[tuple[str, str, str], str]
) -> list[Finding]:
    return [f for f in findings if f.key not in allowed]
