"""Media types as DICOMweb clients really send them: quoted or not, several ranges, odd case."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MediaType:
    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, candidate: str) -> bool:
        want_main, _, want_sub = self.type.partition("/")
        main, _, sub = candidate.lower().partition("/")
        return (want_main in ("*", main)) and (want_sub in ("*", sub))


def _split_params(text: str) -> list[str]:
    """Split on ';' outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_ranges(text: str) -> list[str]:
    """Split on ',' outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_media_type(text: str) -> MediaType:
    pieces = _split_params(text or "")
    media = MediaType(type=pieces[0].strip().lower())
    for raw in pieces[1:]:
        name, _, value = raw.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not name:
            continue
        if name == "q":
            try:
                media.q = float(value)
            except ValueError:
                media.q = 0.0
        else:
            media.params[name] = value
    return media


def parse_accept(header: str | None) -> list[MediaType]:
    """Media ranges in preference order (q, then specificity); no header means ``*/*``."""
    if not header or not header.strip():
        return [MediaType(type="*/*")]
    ranges = [parse_media_type(part) for part in _split_ranges(header)]
    ranges = [r for r in ranges if r.type and r.q > 0]

    def specificity(r: MediaType) -> int:
        main, _, sub = r.type.partition("/")
        return (main != "*") + (sub != "*") + bool(r.params)

    return sorted(ranges, key=lambda r: (-r.q, -specificity(r)))


def negotiate(header: str | None, offered: list[str]) -> str | None:
    """The first offered type the Accept header admits, in the client's order of preference."""
    for media in parse_accept(header):
        for candidate in offered:
            if media.matches(candidate):
                return candidate
    return None
