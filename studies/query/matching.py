"""Attribute matching of PS3.4 C.2.2.2, as Django query filters on the index columns.

- Single value: exact and case-sensitive, except person names (below).
- UID list: backslash-separated UIDs, any of them.
- Wildcards ``*`` and ``?`` in text, codes and names (not in UIDs, dates, times or numbers).
- Universal: an empty value matches everything (the key is only returned).
- Range: ``A-B``, ``A-`` and ``-B`` on dates and times; StudyDate and StudyTime given together as
  ranges are one date-time range (C.2.2.2.5.2). A time covers what its precision says ("08" is
  08:00:00 to 08:59:59.999999, also as the end of a range); a time range that starts later than
  it ends spans midnight.
- Person names are matched on an upper-case, accent-free form of the whole name, so "muller^zoe"
  finds "Müller^Zoë". With fuzzy matching, every word of the value must also begin some
  component or word of the name, in any order: "zoe" and "ZOË MÜLL" both find "Müller^Zoë";
  wildcards are ignored then (every word is already a prefix).
- ModalitiesInStudy: the study matches when any of its modalities matches any value given.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db.models import Q

from ..dicom.attributes import parse_da, parse_tm, search_form
from .keys import Key


class QueryError(ValueError):
    """A key that cannot be matched. The message names the attribute, never the value."""

    def __init__(self, message: str, keyword: str = ""):
        super().__init__(message)
        self.keyword = keyword


def _wildcard_regex(value: str, any_run: str = ".*", one: str = ".") -> str:
    out = []
    for ch in value:
        if ch == "*":
            out.append(any_run)
        elif ch == "?":
            out.append(one)
        else:
            out.append(re.escape(ch))
    return "^" + "".join(out) + "$"


def _text(column: str, value: str) -> Q:
    if "*" not in value and "?" not in value:
        return Q(**{column: value})
    if value.endswith("*") and "*" not in value[:-1] and "?" not in value:
        return Q(**{f"{column}__startswith": value[:-1]})
    return Q(**{f"{column}__regex": _wildcard_regex(value)})


def _range(
    key: Key, column: str, value: str, parse: type[dt.date] | type[dt.time]
) -> tuple[Q, tuple[object, object] | None]:
    reader = parse_da if parse is dt.date else parse_tm
    try:
        if "-" in value:
            low_text, _, high_text = value.partition("-")
            low = reader(low_text) if low_text.strip() else None
            high = reader(high_text) if high_text.strip() else None
            if low is None and high is None:
                raise ValueError("empty range")
            high = _end_of(high, high_text)
            if low is not None and high is not None and low > high:
                if parse is dt.time:
                    # A time range whose start is later than its end spans midnight ("2300-0100"),
                    # as dcm4chee reads it, rather than refusing a night-shift query.
                    return (
                        Q(**{f"{column}__gte": low}) | Q(**{f"{column}__lte": high}),
                        (low, high),
                    )
                raise QueryError(f"{key.keyword}: the range ends before it starts.", key.keyword)
            q = Q()
            if low is not None:
                q &= Q(**{f"{column}__gte": low})
            if high is not None:
                q &= Q(**{f"{column}__lte": high})
            return q, (low, high)
        one = reader(value)
    except ValueError:
        kind = "date (YYYYMMDD)" if parse is dt.date else "time (HHMMSS)"
        raise QueryError(
            f"{key.keyword} is not a valid {kind} or range of them (A-B, A-, -B).", key.keyword
        ) from None
    if parse is dt.time and isinstance(one, dt.time):
        return Q(**{f"{column}__gte": one, f"{column}__lte": _end_of(one, value)}), None
    return Q(**{column: one}), None


def _end_of(value: Any, text: str) -> Any:
    """The last instant a time covers at the precision it was given: "08" is the whole hour,
    "0830" the whole minute, "083000" the whole second; a time with a fraction is exact."""
    if not isinstance(value, dt.time):
        return value
    digits, dot, _ = text.strip().replace(":", "").partition(".")
    if dot:
        return value
    if len(digits) == 2:
        return value.replace(minute=59, second=59, microsecond=999999)
    if len(digits) == 4:
        return value.replace(second=59, microsecond=999999)
    return value.replace(microsecond=999999)


def _name(key: Key, column: str, value: str, fuzzy: bool) -> Q:
    wanted = search_form(value).strip()
    if not fuzzy:
        return _text(column, wanted)
    words = [w for w in re.split(r"[\^= ]+", wanted.replace("*", "").replace("?", "")) if w]
    if not words:
        return Q()
    q = Q()
    for word in words:
        q &= Q(**{f"{column}__regex": r"(^|[\^= ])" + re.escape(word)})
    return q


def _modalities(column: str, value: str) -> Q:
    q = Q()
    for modality in (v.strip() for v in value.split("\\")):
        if not modality:
            continue
        if "*" in modality or "?" in modality:
            # Wildcards stay within one modality of "\CT\MR\": "C*R" must not match it.
            inner = _wildcard_regex(modality, r"[^\\]*", r"[^\\]")[1:-1]
            q |= Q(**{f"{column}__regex": r"\\" + inner + r"\\"})
        else:
            q |= Q(**{f"{column}__contains": f"\\{modality}\\"})
    return q


def _int(key: Key, column: str, value: str) -> Q:
    values = [v.strip() for v in value.split("\\") if v.strip()]
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise QueryError(f"{key.keyword} must be a whole number.", key.keyword) from None
    return Q(**{f"{column}__in": numbers})


def _uid(key: Key, column: str, value: str) -> Q:
    uids = [v.strip() for v in value.split("\\") if v.strip()]
    for uid in uids:
        if len(uid) > 64 or not re.fullmatch(r"[0-9.]+", uid):
            raise QueryError(f"{key.keyword} is not a valid UID or list of UIDs.", key.keyword)
    return Q(**{column: uids[0]}) if len(uids) == 1 else Q(**{f"{column}__in": uids})


def match(key: Key, prefix: str, value: str, *, fuzzy: bool) -> Q:
    """The filter for one key with a non-empty value; ``prefix`` leads to the owning model."""
    column = prefix + key.column
    if key.match == "uid":
        return _uid(key, column, value)
    if key.match == "date":
        return _range(key, column, value, dt.date)[0]
    if key.match == "time":
        return _range(key, column, value, dt.time)[0]
    if key.match == "int":
        return _int(key, column, value)
    if key.match == "name":
        return _name(key, prefix + key.search_column, value, fuzzy)
    if key.match == "modalities":
        return _modalities(column, value)
    if key.match in ("text", "code"):
        values = value.split("\\") if key.match == "code" else [value]
        q = Q()
        for v in values:
            q |= _text(column, v)
        return q
    raise QueryError(f"Matching on {key.keyword} is not supported.", key.keyword)


def study_date_time(prefix: str, date_value: str, time_value: str, keys: dict[str, Key]) -> Q:
    """StudyDate and StudyTime, both ranges: one range of date-times (PS3.4 C.2.2.2.5.2)."""
    date_key, time_key = keys["StudyDate"], keys["StudyTime"]
    d_col, t_col = prefix + date_key.column, prefix + time_key.column
    _, dates = _range(date_key, d_col, date_value, dt.date)
    _, times = _range(time_key, t_col, time_value, dt.time)
    assert dates is not None and times is not None
    (d_low, d_high), (t_low, t_high) = dates, times
    q = Q()
    if d_low is not None:
        after = Q(**{f"{d_col}__gt": d_low}) | Q(**{d_col: d_low})
        if t_low is not None:
            after = Q(**{f"{d_col}__gt": d_low}) | Q(**{d_col: d_low, f"{t_col}__gte": t_low})
        q &= after
    if d_high is not None:
        before = Q(**{f"{d_col}__lte": d_high})
        if t_high is not None:
            before = Q(**{f"{d_col}__lt": d_high}) | Q(**{d_col: d_high, f"{t_col}__lte": t_high})
        q &= before
    return q
