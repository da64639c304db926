"""The forms of the de-identification and share-link settings page; the wizard's YAML goes
through the same forms (sections.py)."""

from __future__ import annotations

from typing import Any

from django import forms

from ..sharing.models import SharePolicy
from .models import DeidPolicy

DEID_FIELDS = [
    "required_for_shares",
    "dates",
    "burned_in",
    "retain_patient_characteristics",
    "retain_device_identity",
    "retain_institution_identity",
    "clean_descriptors",
]
SHARING_FIELDS = [
    "default_days",
    "max_days",
    "max_attempts",
    "require_second_factor",
    "allow_download",
]
LONGEST_LINK_DAYS = 365


class DeidPolicyForm(forms.ModelForm):
    class Meta:
        model = DeidPolicy
        fields = DEID_FIELDS
        widgets = {"dates": forms.RadioSelect, "burned_in": forms.RadioSelect}


class SharePolicyForm(forms.ModelForm):
    class Meta:
        model = SharePolicy
        fields = SHARING_FIELDS
        labels = {
            "default_days": "Default validity (days)",
            "max_days": "Longest validity (days)",
            "max_attempts": "Wrong answers before a link locks",
            "require_second_factor": "Require a PIN or date of birth",
            "allow_download": "Allow downloads",
        }

    def clean_max_days(self) -> int:
        value: int = self.cleaned_data["max_days"]
        if not 1 <= value <= LONGEST_LINK_DAYS:
            raise forms.ValidationError(
                f"The longest validity is from 1 to {LONGEST_LINK_DAYS} days."
            )
        return value

    def clean_max_attempts(self) -> int:
        value: int = self.cleaned_data["max_attempts"]
        if not 1 <= value <= 20:
            raise forms.ValidationError("Allow from 1 to 20 wrong answers.")
        return value

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        default, longest = data.get("default_days"), data.get("max_days")
        if default is not None and longest is not None and not 1 <= default <= longest:
            self.add_error(
                "default_days",
                f"The default validity must be from 1 day to the longest ({longest} days).",
            )
        return data
