"""The fill-in fields and pick lists of a template's text.

A field is written inline, between double square brackets, where its value goes::

    [[name]]                    free text
    [[name:text:Clear.]]        free text with a default
    [[name:number]]             a number (write the unit as text after it: [[size:number]] mm)
    [[name:number:12]]          a number with a default
    [[name:date]]  [[name:time]]
    [[name:normal*|dilated]]    a pick list: choose one; * marks the default
    [[name:cough;fever;pain]]   a pick list: choose any; * marks those chosen by default

The notation follows the RSNA reporting guidelines (RadReport: "|" pick one, ";" pick several,
"*" the default), and each kind is one IHE MRRT field type (TEXT, NUMBER, DATE, TIME,
SELECTION), so templates go to and from MRRT HTML without loss (``mrrt.py``).

A name is lower case (``lesion_size``); the form shows it as "Lesion size". A name used twice is
one field, filled once. Option text cannot hold ``|``, ``;``, ``[`` or ``]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FIELD = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SCALARS = ("text", "number", "date", "time")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
MAX_FIELDS = 200
MAX_OPTIONS = 50
# What the editor receives for a field left empty: a marker the radiologist cannot miss.
UNFILLED = "***"


class TemplateSyntaxError(ValueError):
    """A field written wrongly; the message quotes the field so an admin can find it."""


@dataclass(frozen=True)
class Field:
    """One fill-in field or pick list."""

    name: str
    kind: str  # text, number, date, time, choice (pick one), multi (pick any)
    options: tuple[str, ...] = ()
    # The default: text for the scalar kinds, the chosen options for pick lists.
    default: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    @property
    def is_pick_list(self) -> bool:
        return self.kind in ("choice", "multi")

    def placeholder(self) -> str:
        """The field written back in the template notation."""
        if self.is_pick_list:
            sep = "|" if self.kind == "choice" else ";"
            marked = [f"{o}*" if o in self.default else o for o in self.options]
            return f"[[{self.name}:{sep.join(marked)}]]"
        if self.kind == "text" and not self.default:
            return f"[[{self.name}]]"
        tail = f":{self.default[0]}" if self.default else ""
        return f"[[{self.name}:{self.kind}{tail}]]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "options": list(self.options),
            "default": list(self.default),
        }


def _options(body: str, sep: str, written: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    options: list[str] = []
    default: list[str] = []
    for raw in body.split(sep):
        option = raw.strip()
        marked = option.endswith("*")
        option = option.rstrip("*").strip()
        if not option:
            continue
        if option in options:
            raise TemplateSyntaxError(f"The pick list {written} offers “{option}” twice.")
        options.append(option)
        if marked:
            default.append(option)
    if len(options) < 2:
        raise TemplateSyntaxError(f"The pick list {written} needs at least two options.")
    if len(options) > MAX_OPTIONS:
        raise TemplateSyntaxError(f"The pick list {written} has more than {MAX_OPTIONS} options.")
    if sep == "|" and len(default) > 1:
        raise TemplateSyntaxError(f"The pick list {written} marks more than one default with *.")
    return tuple(options), tuple(default)


def parse_field(inner: str) -> Field:
    """One field from what stands between its brackets."""
    written = f"[[{inner}]]"
    if "[" in inner or "\n" in inner:
        raise TemplateSyntaxError(f"The field {written[:60]} is not closed with ]].")
    name, _, spec = inner.partition(":")
    name = name.strip()
    if not NAME.match(name):
        raise TemplateSyntaxError(
            f"The field {written} needs a name of lower-case letters, digits and _ "
            "(starting with a letter), e.g. [[lesion_size:number]]."
        )
    spec = spec.strip()
    kind, _, default = spec.partition(":")
    kind = kind.strip()
    if not spec:
        return Field(name, "text")
    if kind in SCALARS:
        default = default.strip()
        if default and kind == "number" and not NUMBER.match(default):
            raise TemplateSyntaxError(f"The default of {written} is not a number.")
        if default and kind in ("date", "time"):
            raise TemplateSyntaxError(f"A {kind} field has no default: {written}.")
        return Field(name, kind, default=(default,) if default else ())
    if "|" in spec and ";" in spec:
        raise TemplateSyntaxError(
            f"The pick list {written} mixes | (pick one) and ; (pick several): use one."
        )
    if "|" in spec:
        options, chosen = _options(spec, "|", written)
        return Field(name, "choice", options, chosen)
    if ";" in spec:
        options, chosen = _options(spec, ";", written)
        return Field(name, "multi", options, chosen)
    raise TemplateSyntaxError(
        f"The field {written} has an unknown kind “{kind}”: use text, number, date, time, or a "
        "pick list such as [[side:left|right]]."
    )


Segment = str | Field


def parse(text: str) -> list[Segment]:
    """The text as plain strings and fields, in order."""
    segments: list[Segment] = []
    position = 0
    for match in FIELD.finditer(text):
        if match.start() > position:
            segments.append(text[position : match.start()])
        segments.append(parse_field(match.group(1)))
        position = match.end()
    if position < len(text):
        segments.append(text[position:])
    return segments


def fields_of(sections: Mapping[str, str]) -> list[Field]:
    """Every field of the sections, once each, in the order they first appear. A name used
    twice must mean the same field."""
    found: dict[str, Field] = {}
    for text in sections.values():
        for segment in parse(text):
            if not isinstance(segment, Field):
                continue
            seen = found.get(segment.name)
            if seen is None:
                found[segment.name] = segment
            elif seen != segment:
                raise TemplateSyntaxError(
                    f"The field “{segment.name}” is written two different ways "
                    f"({seen.placeholder()} and {segment.placeholder()}); write it the same way "
                    "each time, or give one a different name."
                )
    if len(found) > MAX_FIELDS:
        raise TemplateSyntaxError(f"A template has at most {MAX_FIELDS} fields.")
    return list(found.values())


def value_text(field: Field, value: str | Iterable[str] | None) -> str:
    """How a field's value reads in the report."""
    if value is None:
        chosen: list[str] = list(field.default)
    elif isinstance(value, str):
        chosen = [value.strip()] if value.strip() else []
    else:
        chosen = [v.strip() for v in value if v.strip()]
    if not chosen:
        return UNFILLED
    return ", ".join(chosen)


def fill(text: str, values: Mapping[str, str | Iterable[str] | None]) -> str:
    """The section's text with each field replaced by its value (its default when the value is
    missing; ``UNFILLED`` when there is neither). The browser does the same in templating.js;
    this one serves the API."""
    out: list[str] = []
    for segment in parse(text):
        if isinstance(segment, Field):
            out.append(value_text(segment, values.get(segment.name)))
        else:
            out.append(segment)
    return "".join(out)


def segments_json(text: str) -> list[Any]:
    """The text for templating.js: ``["plain", {"field": name}, ...]``."""
    return [s if isinstance(s, str) else {"field": s.name} for s in parse(text)]
