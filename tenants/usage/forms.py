"""The dashboards' period: two dates, checked like any form."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms

from .figures import Period

DEFAULT_DAYS = 14
MAX_DAYS = 366


class PeriodForm(forms.Form):
    start = forms.DateField(
        label="From",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the first day as YYYY-MM-DD, e.g. 2026-11-01."},
    )
    end = forms.DateField(
        label="To",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the last day as YYYY-MM-DD, e.g. 2026-11-14."},
    )

    def __init__(self, data: Any, *, today: date) -> None:
        self.today = today
        default = Period.last_days(DEFAULT_DAYS, today=today)
        values = {"start": default.start.isoformat(), "end": default.end.isoformat()}
        # Either date may be left out: the other keeps its default.
        values.update({k: data[k] for k in ("start", "end") if data.get(k)})
        super().__init__(values)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end > self.today:
                self.add_error("end", f"The last day cannot be after today ({self.today}).")
            elif start > end:
                self.add_error("start", "The first day must be on or before the last day.")
            elif end - start >= timedelta(days=MAX_DAYS):
                self.add_error("start", f"Choose at most {MAX_DAYS} days.")
        return cleaned

    def period(self) -> Period:
        """The valid period (call after ``is_valid()``)."""
        return Period(start=self.cleaned_data["start"], end=self.cleaned_data["end"])
