"""The report as a PDF on the hospital's letterhead (reportlab).

reportlab because it is the long-maintained pure-Python PDF toolkit (BSD, releases since 2000)
with a layout engine (Platypus) that flows long findings over pages, and an "invariant" mode: the
same version always gives the same bytes, so a redelivery stores the same object, and the DICOM
object that wraps it is the same instance, not a near-duplicate.
"""

from __future__ import annotations

import io
import logging
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from studies.dicom.reader import open_stored
from studies.imaging.render import RenderOptions, render
from studies.models import Instance
from studies.storage import object_store

from .content import Document, _when, person
from .models import DeliverySettings

log = logging.getLogger(__name__)

THUMBNAIL = (220, 220)


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "hospital": ParagraphStyle("hospital", parent=base["Title"], fontSize=16, alignment=0),
        "address": ParagraphStyle("address", parent=base["Normal"], fontSize=9, leading=11),
        "banner": ParagraphStyle(
            "banner", parent=base["Heading1"], fontSize=14, textColor=colors.white
        ),
        "heading": ParagraphStyle("heading", parent=base["Heading3"], spaceBefore=8),
        "body": ParagraphStyle("body", parent=base["Normal"], fontSize=10, leading=13),
        "small": ParagraphStyle("small", parent=base["Normal"], fontSize=8, leading=10),
    }


def _text(value: str) -> str:
    """Report text as Platypus markup: escaped, line breaks kept."""
    return escape(value).replace("\n", "<br/>")


def _pn(value: str) -> str:
    parts = value.split("=")[0].split("^")
    family, rest = (parts[0], [p for p in parts[1:] if p]) if parts else ("", [])
    return f"{family}, {' '.join(rest)}" if family and rest else family or " ".join(rest)


def build_pdf(doc: Document, settings: DeliverySettings | None) -> bytes:
    """The PDF of a document. Deterministic for a given version and letterhead."""
    st = _styles()
    out = io.BytesIO()
    pdf = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title="Radiology report",
        author="Skylight",
        creator="Skylight",
        invariant=1,
    )
    story: list[Any] = []
    story += _letterhead(doc, settings, st)
    story.append(_banner(doc, st))
    story.append(Spacer(1, 4 * mm))
    story.append(_facts(doc, st))
    if doc.base.kind == "correction" and doc.base.supersedes_id:
        story.append(
            Paragraph(
                "This corrected report replaces the report signed earlier; read it instead.",
                st["body"],
            )
        )
    for title, text in doc.sections():
        story.append(Paragraph(escape(title), st["heading"]))
        story.append(Paragraph(_text(text), st["body"]))
    story.append(Spacer(1, 3 * mm))
    story.append(_signature(doc.base, st))
    for addendum in doc.addenda:
        story.append(Paragraph(f"Addendum of {_when(addendum.signed_at)}", st["heading"]))
        story.append(Paragraph(_text(doc.addendum_text(addendum)), st["body"]))
        story.append(_signature(addendum, st))
    story += _key_images(doc, st)
    story.append(Spacer(1, 6 * mm))
    story.append(
        Paragraph(
            f"Content SHA-256 of version {doc.version.number}: {doc.version.content_sha256}",
            st["small"],
        )
    )
    footer = _profile_footer(doc)
    if footer:
        story.append(Paragraph(escape(footer), st["small"]))
    pdf.build(story)
    return out.getvalue()


def _letterhead(
    doc: Document, settings: DeliverySettings | None, st: dict[str, ParagraphStyle]
) -> list[Any]:
    name = settings.letterhead_name() if settings else (doc.tenant.name if doc.tenant else "")
    lines = settings.address_lines() if settings else []
    text = [Paragraph(escape(name), st["hospital"])]
    text += [Paragraph(escape(line), st["address"]) for line in lines]
    logo = _logo(settings) or _profile_logo(doc)
    if logo is None:
        return [*text, Spacer(1, 4 * mm)]
    table = Table([[text, logo]], colWidths=[130 * mm, 44 * mm])
    table.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 0), (1, 0), "RIGHT")])
    )
    return [table, Spacer(1, 4 * mm)]


def _logo(settings: DeliverySettings | None) -> Image | None:
    if settings is None or not settings.logo:
        return None
    try:
        reader = ImageReader(io.BytesIO(bytes(settings.logo)))
        width, height = reader.getSize()
    except Exception:  # noqa: BLE001 - a bad logo must not stop the report going out
        log.warning("letterhead logo of tenant %s cannot be read; left out", settings.tenant_id)
        return None
    scale = min(40 * mm / width, 20 * mm / height)
    return Image(io.BytesIO(bytes(settings.logo)), width * scale, height * scale)


def _profile_logo(doc: Document) -> Image | None:
    """The logo of the hospital's details (tenants/onboarding), when delivery has none."""
    from tenants.onboarding.models import HospitalProfile
    from tenants.onboarding.services import read_logo

    profile = (
        HospitalProfile.objects.filter(tenant_id=doc.tenant.pk).first() if doc.tenant else None
    )
    try:
        data = read_logo(profile) if profile else None
        if not data:
            return None
        width, height = ImageReader(io.BytesIO(data)).getSize()
    except Exception:  # noqa: BLE001 - a bad logo must not stop the report going out
        log.warning("hospital logo of tenant %s cannot be read; left out", profile.tenant_id)  # type: ignore[union-attr]
        return None
    scale = min(40 * mm / width, 20 * mm / height)
    return Image(io.BytesIO(data), width * scale, height * scale)


def _profile_footer(doc: Document) -> str:
    from tenants.onboarding.models import HospitalProfile

    if doc.tenant is None:
        return ""
    footers = HospitalProfile.objects.filter(tenant_id=doc.tenant.pk).values_list(
        "report_footer", flat=True
    )
    return next(iter(footers), "")


def _banner(doc: Document, st: dict[str, ParagraphStyle]) -> Table:
    colour = {
        "PRELIMINARY": colors.HexColor("#b36b00"),
        "CORRECTED": colors.HexColor("#a01818"),
        "ADDENDUM": colors.HexColor("#1c4f91"),
    }.get(doc.banner, colors.HexColor("#1f6b3a"))
    table = Table([[Paragraph(f"{doc.banner} REPORT", st["banner"])]], colWidths=[174 * mm])
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour)]))
    return table


def _facts(doc: Document, st: dict[str, ParagraphStyle]) -> Table:
    patient, study = doc.patient, doc.study
    assert patient is not None and study is not None
    rows = [
        ("Patient", _pn(patient.patient_name) or "–", "Patient ID", patient.patient_id or "–"),
        (
            "Birth date",
            patient.patient_birth_date.isoformat() if patient.patient_birth_date else "–",
            "Sex",
            patient.patient_sex or "–",
        ),
        (
            "Study",
            study.study_description or study.modalities_in_study.strip("\\") or "–",
            "Study date",
            study.study_date.isoformat() if study.study_date else "–",
        ),
        (
            "Accession",
            study.accession_number or "–",
            "Referring",
            _pn(study.referring_physician_name) or "–",
        ),
    ]
    data = [[Paragraph(escape(str(cell)), st["body"]) for cell in row] for row in rows]
    table = Table(data, colWidths=[25 * mm, 62 * mm, 25 * mm, 62 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eeeeee")),
                ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#eeeeee")),
            ]
        )
    )
    return table


def _signature(version: Any, st: dict[str, ParagraphStyle]) -> Paragraph:
    status = "Preliminary" if version.status == "preliminary" else "Final"
    return Paragraph(
        f"{status}, signed by {escape(person(version.signed_by))} on {_when(version.signed_at)}"
        f" (version {version.number}).",
        st["small"],
    )


def _key_images(doc: Document, st: dict[str, ParagraphStyle]) -> list[Any]:
    chosen = [image for v in doc.signers() for image in (v.key_images or [])]
    if not chosen or doc.study is None:
        return []
    flow: list[Any] = [Paragraph("Key images", st["heading"])]
    cells = []
    for image in chosen:
        picture = _thumbnail(doc, image)
        if picture is None:
            continue
        caption = Paragraph(_text(str(image.get("caption") or "")), st["small"])
        cells.append([picture, caption])
    if not cells:
        return []
    rows = [cells[i : i + 3] for i in range(0, len(cells), 3)]
    grid = [[*row, *[""] * (3 - len(row))] for row in rows]
    flow.append(Table(grid, colWidths=[58 * mm] * 3))
    return flow


def _thumbnail(doc: Document, image: dict[str, Any]) -> Image | None:
    """A key image rendered from its stored instance, as WADO-RS /rendered would show it."""
    assert doc.study is not None
    instance = Instance.objects.filter(
        tenant_id=doc.study.tenant_id,
        study=doc.study,
        sop_instance_uid=str(image.get("instance", "")),
    ).first()
    if instance is None:
        return None
    try:
        with open_stored(object_store(), instance.storage_key, instance.size) as fp:
            png = render(
                fp, int(image.get("frame") or 1), RenderOptions(viewport=THUMBNAIL), "image/png"
            )
    except Exception as exc:  # noqa: BLE001 - the report goes out without a picture it cannot draw
        log.warning("key image of instance %s not rendered (%s)", instance.pk, type(exc).__name__)
        return None
    reader = ImageReader(io.BytesIO(png))
    width, height = reader.getSize()
    scale = min(52 * mm / width, 52 * mm / height)
    return Image(io.BytesIO(png), width * scale, height * scale)
