"""The wizard's "DICOM" and "Destinations" sections, and how a tenant.yaml applies them.

``dicom``::

    called_ae_titles: [CTHOSP, CTHOSP2]
    callers:
      - {ae_title: CT1, network: 10.20.0.0/16, description: CT room 1}
    pacs: {ae_title: HOSPPACS, host: pacs.hospital.example, port: 104}

``destinations``::

    move_destinations:
      - {ae_title: WS1, host: 10.20.3.4, port: 104, description: reading station, enabled: true}

A key that is present replaces what is saved with the file's list; a key that is absent leaves
its part alone. Every item is checked with the page's form first and every error is reported with
the item it belongs to ("callers[1].network: ..."); with any error nothing changes. Applying the
same file twice changes nothing the second time and writes no second audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.models import AllowedCaller, CalledAETitle, DicomDestination, Tenant, User
from tenants.onboarding.sections import Section

from . import services
from .forms import CalledAETitleForm, CallerForm, DestinationForm, PacsForm

DICOM_KEYS = {"called_ae_titles", "callers", "pacs"}
DESTINATION_KEYS = {"move_destinations"}


def _errors_of(form: forms.Form, where: str) -> list[str]:
    return [
        f"{where}{'' if field == '__all__' else '.' + field}: {message}"
        for field, messages in form.errors.items()
        for message in messages
    ]


def _mapping(data: Any, key: str, keys: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{key}: expected a mapping with {', '.join(sorted(keys))}.")
    unknown = sorted(set(data) - keys)
    if unknown:
        raise ValidationError(
            f"{key}: unknown key {', '.join(unknown)}; expected {', '.join(sorted(keys))}."
        )
    return data


def _items(data: dict[str, Any], key: str, kind: type, errors: list[str]) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        what = "AE titles" if kind is str else "mappings"
        errors.append(f"{key}: expected a list of {what}.")
        return []
    return value


def _clean_each(
    items: list[Any], key: str, make: Callable[[Any], forms.Form], errors: list[str]
) -> list[dict[str, Any]]:
    cleaned = []
    for index, item in enumerate(items):
        form = make(item)
        if form.is_valid():
            cleaned.append(form.cleaned_data)
        else:
            errors.extend(_errors_of(form, f"{key}[{index}]"))
    return cleaned


def _repeats(values: list[Any], key: str, field: str, errors: list[str]) -> None:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            errors.append(f"{key}[{index}].{field}: listed twice.")
        seen.add(value)


# ---------------------------------------------------------------------------------------------
# dicom
# ---------------------------------------------------------------------------------------------


def apply_dicom(tenant: Tenant, data: Any, actor: User | None) -> None:
    data = _mapping(data, "dicom", DICOM_KEYS)
    errors: list[str] = []
    titles = _items(data, "called_ae_titles", str, errors)
    callers = _items(data, "callers", dict, errors)
    if "called_ae_titles" in data and not titles and not errors:
        errors.append("called_ae_titles: a hospital keeps at least one called AE title.")
    wanted_titles = [
        c["ae_title"]
        for c in _clean_each(
            titles,
            "called_ae_titles",
            lambda t: CalledAETitleForm({"ae_title": t}, keeping=tenant),
            errors,
        )
    ]
    _repeats(wanted_titles, "called_ae_titles", "ae_title", errors)
    wanted_callers = _clean_each(
        callers,
        "callers",
        lambda item: CallerForm(item, tenant=tenant, check_saved=False),
        errors,
    )
    _repeats([(c["ae_title"], c["network"]) for c in wanted_callers], "callers", "network", errors)
    pacs = None
    if data.get("pacs") is not None:
        if not isinstance(data["pacs"], dict):
            errors.append("pacs: expected a mapping with ae_title, host and port.")
        else:
            form = PacsForm(data["pacs"], tenant=tenant, instance=services.pacs_of(tenant))
            pacs = form.cleaned_data if form.is_valid() else None
            errors.extend(_errors_of(form, "pacs"))
    if errors:
        raise ValidationError(errors)

    actor_ = services.actor_for(actor)
    with transaction.atomic():
        fields = []
        if "called_ae_titles" in data and _replace_titles(tenant, wanted_titles):
            fields.append("called_ae_titles")
        if "callers" in data and _replace_callers(tenant, wanted_callers):
            fields.append("callers")
        if fields:
            services.record_change(tenant, actor_, "dicom", fields=fields, source="file")
        if pacs is not None:
            services.set_pacs(tenant=tenant, actor=actor_, **pacs)


def _replace_titles(tenant: Tenant, wanted: list[str]) -> bool:
    saved = {row.ae_title: row for row in CalledAETitle.objects.filter(tenant=tenant)}
    # New ones first: the hospital always has one.
    added = [title for title in wanted if title not in saved]
    for title in added:
        CalledAETitle.objects.create(tenant=tenant, ae_title=title)
    gone = [row.pk for title, row in saved.items() if title not in wanted]
    CalledAETitle.objects.filter(tenant=tenant, pk__in=gone).delete()
    return bool(added or gone)


def _replace_callers(tenant: Tenant, wanted: list[dict[str, Any]]) -> bool:
    saved = {(r.ae_title, r.network): r for r in AllowedCaller.objects.filter(tenant=tenant)}
    changed = False
    for item in wanted:
        rule = saved.pop((item["ae_title"], item["network"]), None)
        if rule is None:
            AllowedCaller.objects.create(tenant=tenant, **item)
            changed = True
        elif rule.description != item["description"]:
            rule.description = item["description"]
            rule.save(update_fields=["description"])
            changed = True
    if saved:
        AllowedCaller.objects.filter(tenant=tenant, pk__in=[r.pk for r in saved.values()]).delete()
        changed = True
    return changed


def export_dicom(tenant: Tenant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "called_ae_titles": list(
            CalledAETitle.objects.filter(tenant=tenant)
            .order_by("ae_title")
            .values_list("ae_title", flat=True)
        ),
        "callers": [
            {"ae_title": r.ae_title, "network": r.network, "description": r.description}
            for r in AllowedCaller.objects.filter(tenant=tenant).order_by("ae_title", "network")
        ],
    }
    pacs = services.pacs_of(tenant)
    if pacs is not None:
        out["pacs"] = {"ae_title": pacs.ae_title, "host": pacs.host, "port": pacs.port}
    return out


def _dicom_summary(tenant: Tenant) -> str:
    titles = CalledAETitle.objects.filter(tenant=tenant).count()
    callers = AllowedCaller.objects.filter(tenant=tenant).count()
    pacs = services.pacs_of(tenant)
    return (
        f"{titles} called AE title{'s' if titles != 1 else ''}, "
        f"{callers} allowed caller{'s' if callers != 1 else ''}, "
        + (f"PACS {pacs.ae_title}" if pacs else "no PACS")
    )


def _dicom_done(tenant: Tenant) -> bool:
    return (
        CalledAETitle.objects.filter(tenant=tenant).exists()
        and AllowedCaller.objects.filter(tenant=tenant).exists()
    )


# ---------------------------------------------------------------------------------------------
# destinations
# ---------------------------------------------------------------------------------------------


def apply_destinations(tenant: Tenant, data: Any, actor: User | None) -> None:
    data = _mapping(data, "destinations", DESTINATION_KEYS)
    if "move_destinations" not in data:
        return
    errors: list[str] = []
    items = _items(data, "move_destinations", dict, errors)
    wanted = _clean_each(
        items,
        "move_destinations",
        lambda item: DestinationForm({"enabled": True, **item}, tenant=tenant, check_saved=False),
        errors,
    )
    _repeats([d["ae_title"] for d in wanted], "move_destinations", "ae_title", errors)
    pacs = services.pacs_of(tenant)
    for index, item in enumerate(wanted):
        if pacs is not None and item["ae_title"] == pacs.ae_title:
            errors.append(
                f"move_destinations[{index}].ae_title: {pacs.ae_title} is the PACS; "
                "set it under dicom.pacs."
            )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        others = DicomDestination.objects.filter(tenant=tenant)
        if pacs is not None:
            others = others.exclude(pk=pacs.pk)
        saved = {d.ae_title: d for d in others}
        changed = False
        for item in wanted:
            node = saved.pop(item["ae_title"], None)
            if node is None:
                DicomDestination.objects.create(tenant=tenant, **item)
                changed = True
            elif any(getattr(node, k) != v for k, v in item.items()):
                for k, v in item.items():
                    setattr(node, k, v)
                node.save()
                changed = True
        if saved:
            DicomDestination.objects.filter(
                tenant=tenant, pk__in=[d.pk for d in saved.values()]
            ).delete()
            changed = True
        if changed:
            services.record_change(
                tenant,
                services.actor_for(actor),
                "destinations",
                fields=["move_destinations"],
                source="file",
            )


def export_destinations(tenant: Tenant) -> dict[str, Any]:
    pacs = services.pacs_of(tenant)
    nodes = DicomDestination.objects.filter(tenant=tenant).order_by("ae_title")
    return {
        "move_destinations": [
            {
                "ae_title": d.ae_title,
                "host": d.host,
                "port": d.port,
                "description": d.description,
                "enabled": d.enabled,
            }
            for d in nodes
            if pacs is None or d.pk != pacs.pk
        ]
    }


def _destinations_summary(tenant: Tenant) -> str:
    count = DicomDestination.objects.filter(tenant=tenant).count()
    return f"{count} C-MOVE destination{'s' if count != 1 else ''}"


SECTIONS = [
    Section(
        key="dicom",
        title="DICOM connections",
        order=20,
        url_name="dicomconfig:dicom",
        summary=_dicom_summary,
        done=_dicom_done,
        apply=apply_dicom,
        export=export_dicom,
    ),
    Section(
        key="destinations",
        title="C-MOVE and report destinations",
        order=30,
        url_name="dicomconfig:destinations",
        summary=_destinations_summary,
        # Optional: a hospital that never pulls studies back needs none.
        done=lambda tenant: True,
        apply=apply_destinations,
        export=export_destinations,
    ),
]
