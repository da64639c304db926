"""IHE MRRT (Management of Radiology Report Templates) / RSNA RadReport HTML, in and out.

An MRRT template is an HTML5 document: Dublin Core ``<meta name="dcterms.*">`` in its head, an
XML ``<script type="text/xml"><template_attributes>`` block, and a body of ``<section>`` elements
(``data-section-name``, a ``<header>``) holding text and fields: ``<input>``, ``<select>`` with
``<option>``s and ``<textarea>``, each with an ``id``, a ``name`` and a ``data-field-type``
(TEXT, NUMBER, DATE, TIME, SELECTION).

Import is for files from anywhere, so it trusts nothing: the file is size-limited, parsed by a
real HTML5 parser (html5lib, the WHATWG algorithm browsers use, so a malformed file is read the
way a browser would read it), and only text and fields are kept. Scripts, styles and embedded
content are dropped with their content; no attribute of the file reaches our pages; the result
is plain text in our own notation (``syntax.py``), checked like any template an admin types.

Export writes the sections as MRRT HTML that ``read_template`` reads back to the same template.
Within a line, runs of white space read back as one space (as in any HTML).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import html5lib

from reports.models import SECTIONS

from . import syntax
from .models import ReportTemplate

MAX_IMPORT_BYTES = 512 * 1024
MAX_DEPTH = 100
XHTML = "{http://www.w3.org/1999/xhtml}"
# Our own head fields (MRRT leaves the choice of template by modality and anatomy to coded
# content; these carry the plain DICOM values so a template goes out and comes back as it was).
META_MODALITY = "skylight.modality"
META_BODY_PART = "skylight.body-part"

SECTION_TITLES = {
    "clinical_information": "Clinical information",
    "technique": "Technique",
    "comparison": "Comparison",
    "findings": "Findings",
    "impression": "Impression",
}
# What MRRT / RadReport templates call the five sections (lower case, letters and spaces only).
SECTION_NAMES = {
    "clinical_information": {
        "clinical information", "clinical history", "history", "indication", "indications",
        "clinical indication", "clinical indications", "reason for exam", "reason for study",
    },
    "technique": {"technique", "procedure", "protocol", "technique and procedure", "methods"},
    "comparison": {"comparison", "comparisons", "comparison studies", "prior studies"},
    "findings": {"findings", "finding", "observations", "results"},
    "impression": {
        "impression", "impressions", "conclusion", "conclusions", "summary", "assessment",
        "diagnosis",
    },
}  # fmt: skip
# Elements whose content is never text of a report: dropped whole.
DROPPED = {
    "script", "style", "template", "noscript", "iframe", "object", "embed", "foreign",
    "canvas", "video", "audio", "head", "title", "button", "datalist", "option", "optgroup",
}  # fmt: skip
BLOCKS = {
    "p", "div", "section", "header", "footer", "article", "aside", "h1", "h2", "h3", "h4", "h5",
    "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "tr", "blockquote", "pre", "fieldset",
    "legend", "figure", "figcaption", "hr", "address", "main", "nav", "details", "summary",
}  # fmt: skip
FIELD_TYPES = {"text": "TEXT", "number": "NUMBER", "date": "DATE", "time": "TIME"}


class NotATemplate(ValueError):
    """The file cannot be read as an MRRT template; the message says why, without quoting it."""


@dataclass
class Imported:
    """What an MRRT file holds, ready for ``services.create_template``."""

    name: str
    description: str = ""
    modality: str = ""
    body_part: str = ""
    sections: dict[str, str] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "modality": self.modality,
            "body_part": self.body_part,
            **{s: self.sections.get(s, "") for s in SECTIONS},
        }


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def template_uid(template: ReportTemplate) -> str:
    """A stable identifier for dcterms.identifier: the same template, the same id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"skylight:report-template:{template.pk}").urn


def _control(f: syntax.Field, element_id: str) -> str:
    common = f'id="{_attr(element_id)}" name="{_attr(f.name)}"'
    if f.is_pick_list:
        multiple = " multiple" if f.kind == "multi" else ""
        options = "".join(
            f'<option value="{_attr(o)}"{" selected" if o in f.default else ""}>'
            f"{html.escape(o)}</option>"
            for o in f.options
        )
        return f'<select {common} data-field-type="SELECTION"{multiple}>{options}</select>'
    kind = FIELD_TYPES[f.kind]
    step = ' step="any"' if f.kind == "number" else ""
    value = f' value="{_attr(f.default[0])}"' if f.default else ""
    return f'<input type="{f.kind}" {common} data-field-type="{kind}"{step}{value}>'


def _section_html(text: str, used_ids: dict[str, int]) -> str:
    parts: list[str] = []
    for segment in syntax.parse(text):
        if isinstance(segment, syntax.Field):
            count = used_ids.get(segment.name, 0) + 1
            used_ids[segment.name] = count
            element_id = segment.name if count == 1 else f"{segment.name}-{count}"
            parts.append(_control(segment, element_id))
        else:
            parts.append(html.escape(segment, quote=False).replace("\n", "<br>"))
    return "".join(parts)


def export_template(template: ReportTemplate) -> str:
    """The template as an MRRT HTML5 document."""
    name = template.name
    owner = template.owner_name
    status = "ACTIVE" if template.is_active else "RETIRED"
    head = [
        '<meta charset="UTF-8">',
        f"<title>{html.escape(name)}</title>",
        f'<meta name="dcterms.title" content="{_attr(name)}">',
        f'<meta name="dcterms.description" content="{_attr(template.description)}">',
        f'<meta name="dcterms.identifier" content="{_attr(template_uid(template))}">',
        '<meta name="dcterms.type" content="IMAGE_REPORT_TEMPLATE">',
        '<meta name="dcterms.language" content="en">',
        f'<meta name="dcterms.publisher" content="{_attr(owner)}">',
        f'<meta name="dcterms.date" content="{template.updated_at:%Y-%m-%d}">',
        f'<meta name="{META_MODALITY}" content="{_attr(template.modality)}">',
        f'<meta name="{META_BODY_PART}" content="{_attr(template.body_part)}">',
        '<script type="text/xml">',
        "<template_attributes>",
        "<top-level-flag>true</top-level-flag>",
        f"<status>{status}</status>",
        "</template_attributes>",
        "</script>",
    ]
    body: list[str] = []
    used_ids: dict[str, int] = {}
    for section, text in template.sections().items():
        if not text.strip():
            continue
        title = SECTION_TITLES[section]
        body += [
            f'<section id="{section.replace("_", "-")}" class="level1" '
            f'data-section-name="{_attr(title)}">',
            f'<header class="level1">{html.escape(title)}</header>',
            f"<p>{_section_html(text, used_ids)}</p>",
            "</section>",
        ]
    return "\n".join(
        ["<!DOCTYPE html>", '<html lang="en">', "<head>", *head, "</head>", "<body>", *body]
        + ["</body>", "</html>", ""]
    )


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------


def _tag(element: Element) -> str:
    """The HTML element's name; "foreign" for SVG and MathML (dropped whole), "" for comments."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag.startswith(XHTML):
        return tag[len(XHTML) :]
    return "foreign" if tag.startswith("{") else ""


def _walk(element: Element, depth: int = 0) -> Iterator[Element]:
    if depth > MAX_DEPTH:
        raise NotATemplate(f"The file nests elements more than {MAX_DEPTH} deep.")
    yield element
    for child in element:
        yield from _walk(child, depth + 1)


def _text_of(element: Element) -> str:
    """The visible text of an element, white space collapsed (no dropped content)."""
    parts: list[str] = []

    def visit(node: Element, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NotATemplate(f"The file nests elements more than {MAX_DEPTH} deep.")
        if depth and _tag(node) in DROPPED:
            return
        parts.append(node.text or "")
        for child in node:
            visit(child, depth + 1)
            parts.append(child.tail or "")

    visit(element, 0)
    return " ".join("".join(parts).split())


def _slug(value: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")[:60]
    if slug and not slug[0].isalpha():
        slug = f"f_{slug}"
    return slug


def _plain(value: str) -> str:
    """Text that cannot be read as our field notation."""
    return value.replace("[[", "[ [").replace("]]", "] ]")


def _default(value: str) -> str:
    """A field's default as our notation can hold it: one line, no brackets."""
    return " ".join(re.sub(r"[\[\]]", " ", value).split())[:500]


def _option(value: str) -> str:
    """An option as our notation can hold it: none of | ; [ ] *, and not read as a kind."""
    cleaned = " ".join(re.sub(r"[|;\[\]*]", " ", value).split())[:200]
    if re.match(r"^(text|number|date|time)\s*:", cleaned):
        cleaned = cleaned.replace(":", " ", 1)
    return cleaned


def _section_key(name: str) -> str | None:
    normal = " ".join(re.sub(r"[^a-z ]+", " ", name.lower()).split())
    for key, names in SECTION_NAMES.items():
        if normal in names:
            return key
    return None


class _Reader:
    """Turns one parsed document into section texts in our notation."""

    def __init__(self, root: Element):
        self.root = root
        self.labels: dict[str, str] = {}
        self.toggles: set[str] = set()  # ids of radios and checkboxes: their labels are options
        self.fields: dict[str, syntax.Field] = {}
        self.grouped: dict[str, str] = {}  # radio/checkbox group name attribute -> field name
        self.wrapped: dict[int, str] = {}  # a control inside its <label> -> the label's text
        # The boxes of each radio or checkbox group, by (type, group name), in document order.
        self.groups: dict[tuple[str, str], list[Element]] = {}
        for element in _walk(root):
            tag = _tag(element)
            kind = (element.get("type") or "").lower()
            if tag == "input" and kind in ("radio", "checkbox"):
                group = element.get("name") or element.get("id") or ""
                self.groups.setdefault((kind, group), []).append(element)
                if element.get("id"):
                    self.toggles.add(element.get("id", ""))
            if tag == "label" and element.get("for"):
                self.labels[element.get("for", "")] = _text_of(element)
            elif tag == "label":
                for control in _walk(element):
                    if _tag(control) in ("input", "select", "textarea"):
                        self.wrapped[id(control)] = _text_of(element)

    # -- fields --------------------------------------------------------------------------------

    def _name_for(self, element: Element) -> str:
        for candidate in (
            element.get("name", ""),
            self.labels.get(element.get("id", ""), ""),
            element.get("id", ""),
        ):
            slug = _slug(candidate)
            if slug:
                return slug
        return f"field_{len(self.fields) + 1}"

    def _register(self, proposed: syntax.Field) -> str:
        """The field's name, unique in the template: a different field under a name already
        taken gets a number."""
        name, n = proposed.name, 1
        while name in self.fields and self.fields[name] != _renamed(proposed, name):
            n += 1
            name = f"{proposed.name[:60]}_{n}"
        if name not in self.fields and len(self.fields) >= syntax.MAX_FIELDS:
            raise NotATemplate(f"The template has more than {syntax.MAX_FIELDS} fields.")
        self.fields[name] = _renamed(proposed, name)
        return name

    def _toggle_group(self, element: Element) -> str | None:
        """A radio group or checkbox group as one pick list, written where its first box is."""
        box_type = (element.get("type") or "").lower()
        kind = "choice" if box_type == "radio" else "multi"
        group = element.get("name") or element.get("id") or ""
        key = f"{kind}:{group}"
        if key in self.grouped:
            return None  # already written at the first box of its group
        boxes = self.groups.get((box_type, group), [element])
        options: list[str] = []
        chosen: list[str] = []
        for box in boxes:
            label = (
                self.labels.get(box.get("id", ""), "")
                or self.wrapped.get(id(box), "")
                or box.get("value", "")
            )
            option = _option(label)
            if option and option not in options:
                options.append(option)
                if box.get("checked") is not None:
                    chosen.append(option)
        if kind == "choice":
            chosen = chosen[:1]
        if len(options) < 2:  # a lone checkbox: yes or no
            kind, options, chosen = "choice", ["yes", "no"], ["yes" if chosen else "no"]
        name = self._register(
            syntax.Field(self._name_for(element), kind, tuple(options[:50]), tuple(chosen))
        )
        self.grouped[key] = name
        return name

    def field_for(self, element: Element) -> str | None:
        """The field notation for a control, or None for what is not a field."""
        tag = _tag(element)
        declared = (element.get("data-field-type") or "").upper()
        if tag == "select":
            options: list[str] = []
            chosen: list[str] = []
            for option_element in _walk(element):
                if _tag(option_element) != "option":
                    continue
                option = _option(_text_of(option_element) or option_element.get("value", ""))
                if option and option not in options:
                    options.append(option)
                    if option_element.get("selected") is not None:
                        chosen.append(option)
            multi = element.get("multiple") is not None
            if len(options) < 2:
                return None
            proposed = syntax.Field(
                self._name_for(element),
                "multi" if multi else "choice",
                tuple(options[:50]),
                tuple(chosen if multi else chosen[:1]),
            )
        elif tag == "textarea":
            default = _default(element.text or "")
            proposed = syntax.Field(
                self._name_for(element), "text", (), (default,) if default else ()
            )
        elif tag == "input":
            kind = (element.get("type") or "text").lower()
            if kind in ("radio", "checkbox"):
                name = self._toggle_group(element)
                return self.fields[name].placeholder() if name else ""
            if declared in ("NUMBER", "DATE", "TIME"):
                kind = declared.lower()
            if kind not in ("text", "number", "date", "time", "search"):
                return None  # hidden, submit, file, …: not report content
            kind = "text" if kind == "search" else kind
            value = " ".join((element.get("value") or "").split())
            if kind == "number" and not syntax.NUMBER.match(value):
                value = ""
            if kind in ("date", "time"):
                value = ""
            default = _default(value) if kind == "text" else value
            proposed = syntax.Field(
                self._name_for(element), kind, (), (default,) if default else ()
            )
        else:
            return None
        return self.fields[self._register(proposed)].placeholder()

    # -- text ----------------------------------------------------------------------------------

    def section_text(self, section: Element) -> str:
        out: list[str] = []

        def newline() -> None:
            if out and not "".join(out[-1:]).endswith("\n"):
                out.append("\n")

        def text(value: str | None) -> None:
            if value:
                collapsed = re.sub(r"\s+", " ", value)
                if not out or out[-1].endswith("\n"):
                    collapsed = collapsed.lstrip()
                if collapsed:
                    out.append(_plain(collapsed))

        def visit(node: Element, depth: int) -> None:
            if depth > MAX_DEPTH:
                raise NotATemplate(f"The file nests elements more than {MAX_DEPTH} deep.")
            tag = _tag(node)
            if tag in DROPPED:
                return
            if tag == "br":
                out.append("\n")
                return
            if tag == "label" and (
                node.get("for", "") in self.toggles
                or any(
                    _tag(e) == "input" and (e.get("type") or "").lower() in ("radio", "checkbox")
                    for e in _walk(node)
                )
            ):
                # The label of a radio or checkbox is an option of its pick list, not text.
                for control in _walk(node):
                    if _tag(control) == "input":
                        placeholder = self.field_for(control)
                        if placeholder:
                            out.append(placeholder)
                return
            if tag in ("input", "select", "textarea"):
                placeholder = self.field_for(node)
                if placeholder:
                    out.append(placeholder)
                return
            block = tag in BLOCKS
            if block:
                newline()
            text(node.text)
            for child in node:
                visit(child, depth + 1)
                text(child.tail)
            if block:
                newline()

        visit(section, 0)
        lines = [re.sub(" {2,}", " ", line).rstrip() for line in "".join(out).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n ")


def _renamed(f: syntax.Field, name: str) -> syntax.Field:
    return syntax.Field(name, f.kind, f.options, f.default)


def _section_title(section: Element) -> str:
    named = section.get("data-section-name")
    if named:
        return " ".join(named.split())
    for child in section:
        if _tag(child) in ("header", "h1", "h2", "h3", "h4", "h5", "h6"):
            return _text_of(child)
    return section.get("id", "") or ""


def _drop_heading(section: Element, title: str) -> None:
    """The section's own heading is its name, not its text."""
    for child in list(section):
        if _tag(child) in ("header", "h1", "h2", "h3", "h4", "h5", "h6"):
            if _text_of(child).lower() == title.lower():
                tail = child.tail
                section.remove(child)
                if tail and tail.strip():
                    section.text = (section.text or "") + tail
            return


def _top_sections(root: Element) -> list[Element]:
    found: list[Element] = []

    def visit(node: Element, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NotATemplate(f"The file nests elements more than {MAX_DEPTH} deep.")
        if _tag(node) in DROPPED:
            return
        if _tag(node) == "section":
            found.append(node)
            return
        for child in node:
            visit(child, depth + 1)

    visit(root, 0)
    return found


def _meta(root: Element) -> dict[str, str]:
    metas: dict[str, str] = {}
    for element in _walk(root):
        if _tag(element) == "meta" and element.get("name"):
            metas.setdefault(element.get("name", "").lower(), element.get("content", ""))
    return metas


def read_template(data: bytes) -> Imported:
    """The template in an MRRT HTML file, or NotATemplate saying why it is not one."""
    if len(data) > MAX_IMPORT_BYTES:
        raise NotATemplate(
            f"The file is larger than {MAX_IMPORT_BYTES // 1024} KB; an MRRT template is a small "
            "HTML file."
        )
    if not data.strip():
        raise NotATemplate("The file is empty.")
    if b"\x00" in data[:4096]:
        raise NotATemplate("The file is not HTML (it looks like a binary file).")
    try:
        root = html5lib.parse(data, treebuilder="etree", namespaceHTMLElements=True)
    except (ValueError, LookupError, RecursionError):
        raise NotATemplate("The file cannot be read as HTML.") from None
    reader = _Reader(root)
    sections = _top_sections(root)
    if not sections:
        raise NotATemplate(
            "This is not an MRRT template: it has no <section> elements with report text."
        )
    metas = _meta(root)
    title_element = next((e for e in _walk(root) if _tag(e) == "title"), None)
    name = " ".join((metas.get("dcterms.title") or "").split())
    if not name and title_element is not None:
        name = " ".join((title_element.text or "").split())
    if not name:
        raise NotATemplate("The template has no title (<title> or dcterms.title).")
    texts: dict[str, list[str]] = {s: [] for s in SECTIONS}
    for section in sections:
        title = _section_title(section)
        _drop_heading(section, title)
        text = reader.section_text(section)
        key = _section_key(title)
        if key is None:
            # A section we have no place for keeps its name, in the findings.
            key = "findings"
            text = f"{_plain(title)}:\n{text}" if title and text else text
        if text:
            texts[key].append(text)
    imported = Imported(
        name=name[:120],
        description=" ".join((metas.get("dcterms.description") or "").split())[:500],
        modality=(metas.get(META_MODALITY) or "").strip().upper()[:16],
        body_part=(metas.get(META_BODY_PART) or "").strip().upper()[:64],
        sections={s: "\n\n".join(parts) for s, parts in texts.items()},
    )
    if not any(imported.sections.values()):
        raise NotATemplate("The template's sections hold no text or fields.")
    return imported
