"""Tenant-scoped reads of the imaging index. Every function takes the tenant explicitly."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from tenants.models import Tenant

from .models import Receipt, Study


def studies_of(tenant: Tenant) -> QuerySet[Study]:
    return Study.objects.filter(tenant=tenant).select_related("patient")


def recent_studies(tenant: Tenant, *, limit: int = 50) -> list[Study]:
    return list(studies_of(tenant).order_by("-last_instance_at")[:limit])


def get_study_for(tenant: Tenant, study_instance_uid: str) -> Study:
    """The study with this UID in this tenant, or 404 whether it is missing or someone else's."""
    study = studies_of(tenant).filter(study_instance_uid=study_instance_uid).first()
    if study is None:
        raise Http404("No such study.")
    return study


def receipts_of(tenant: Tenant) -> QuerySet[Receipt]:
    return Receipt.objects.filter(tenant=tenant)
