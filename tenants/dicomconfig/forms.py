"""The forms of the DICOM and destinations pages, also used by the wizard's file import.

Each form checks one row against the tenant's other rows (and, for called AE titles, against the
whole platform), so a page and ``onboard_tenant --from-file`` refuse exactly the same input with
exactly the same words.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django import forms

from tenants.models import (
    AllowedCaller,
    CalledAETitle,
    DicomDestination,
    Tenant,
    ae_title_validator,
    normalize_ae_title,
)

AE_TOO_LONG = "An AE title has at most 16 characters."
PORT_MESSAGE = "Enter a port from 1 to 65535."
NETWORK_MESSAGE = "Enter a network such as 10.20.0.0/16 (or one address, such as 192.0.2.7)."
# A host name (RFC 1123 labels) or an IP address; no scheme, path or port.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def validate_ae_title(value: str) -> None:
    """One message per mistake: too long, or a character an AE title may not hold."""
    if len(value) > 16:
        raise forms.ValidationError(f"{AE_TOO_LONG} This one has {len(value)}.")
    ae_title_validator(value)


def ae_title_field(*, required: bool = True, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label="AE title",
        required=required,
        strip=True,
        validators=[validate_ae_title],
        help_text=help_text,
        widget=forms.TextInput(attrs={"maxlength": 16, "size": 16}),
    )


def port_field() -> forms.IntegerField:
    messages = {"invalid": PORT_MESSAGE, "min_value": PORT_MESSAGE, "max_value": PORT_MESSAGE}
    return forms.IntegerField(min_value=1, max_value=65535, error_messages=messages)


def clean_host(value: str) -> str:
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST_NAME.match(host):
        raise forms.ValidationError(
            "Enter a host name such as pacs.hospital.example or an IP address (no port or URL)."
        )
    return host.lower()


class CalledAETitleForm(forms.Form):
    """A title modalities call to reach this hospital; unique across the whole platform."""

    ae_title = ae_title_field(help_text="Up to 16 characters; unique on Skylight.")

    def __init__(self, *args: Any, keeping: Tenant | None = None, **kw: Any):
        """``keeping``: a tenant whose own titles pass (a file that lists the titles it keeps)."""
        super().__init__(*args, **kw)
        self.keeping = keeping

    def clean_ae_title(self) -> str:
        title = normalize_ae_title(self.cleaned_data["ae_title"])
        taken = CalledAETitle.objects.filter(ae_title=title)
        if self.keeping is not None:
            taken = taken.exclude(tenant=self.keeping)
        # Another hospital's title is refused in the same words as one's own: which hospital
        # uses it is not this admin's business.
        if taken.exists():
            raise forms.ValidationError(f"{title} is already in use on Skylight; choose another.")
        return title


class CallerForm(forms.Form):
    """One allowed-caller rule: a calling AE title (blank: any) from a network (blank: any)."""

    ae_title = ae_title_field(required=False, help_text="Blank admits any calling AE title.")
    network = forms.CharField(
        max_length=64,
        required=False,
        help_text="CIDR such as 10.20.0.0/16; blank admits any source address.",
    )
    description = forms.CharField(max_length=200, required=False)

    def __init__(
        self,
        *args: Any,
        tenant: Tenant,
        instance: AllowedCaller | None = None,
        check_saved: bool = True,
        **kw: Any,
    ):
        """``check_saved`` False: the saved rules are about to be replaced (a file's list), so
        only the list itself is checked for repeats, by its caller."""
        super().__init__(*args, **kw)
        self.tenant = tenant
        self.instance = instance
        self.check_saved = check_saved

    def clean_network(self) -> str:
        value = self.cleaned_data["network"].strip()
        if not value:
            return ""
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise forms.ValidationError(NETWORK_MESSAGE) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or not self.check_saved:
            return data
        same = AllowedCaller.objects.filter(
            tenant=self.tenant,
            ae_title=normalize_ae_title(data.get("ae_title", "")),
            network=data.get("network", ""),
        )
        if self.instance is not None:
            same = same.exclude(pk=self.instance.pk)
        if same.exists():
            self.add_error(
                "ae_title",
                "This rule exists already: the same calling AE title from the same network.",
            )
        return data


class NodeForm(forms.Form):
    """A DICOM node of the hospital: its AE title, host and port (C-MOVE target, the PACS)."""

    ae_title = ae_title_field()
    host = forms.CharField(max_length=255, help_text="Host name or IP address.")
    port = port_field()

    def __init__(
        self,
        *args: Any,
        tenant: Tenant,
        instance: DicomDestination | None = None,
        check_saved: bool = True,
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.tenant = tenant
        self.instance = instance
        self.check_saved = check_saved

    def clean_host(self) -> str:
        return clean_host(self.cleaned_data["host"])

    def clean_ae_title(self) -> str:
        title = normalize_ae_title(self.cleaned_data["ae_title"])
        if not self.check_saved:
            return title
        same = DicomDestination.objects.filter(tenant=self.tenant, ae_title=title)
        if self.instance is not None:
            same = same.exclude(pk=self.instance.pk)
        if same.exists():
            raise forms.ValidationError(f"Another destination is called {title} already.")
        return title


class PacsForm(NodeForm):
    """The hospital's PACS. With none set yet, a destination of the same title becomes it."""

    def clean_ae_title(self) -> str:
        if self.instance is None:
            return normalize_ae_title(self.cleaned_data["ae_title"])
        return super().clean_ae_title()


class DestinationForm(NodeForm):
    description = forms.CharField(max_length=200, required=False)
    enabled = forms.BooleanField(required=False, initial=True)


def first_error(form: forms.Form) -> str:
    """ "field: message" of a form's first error, for messages that name the field."""
    for field, errors in form.errors.items():
        name = "" if field == "__all__" else f"{field}: "
        return f"{name}{errors[0]}"
    return ""
