"""DICOM response bodies in the two encodings PS3.18 defines: JSON (F.2) and Native XML (F.3)."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"


def to_json(ds: Dataset) -> str:
    return json.dumps(ds.to_json_dict(), separators=(",", ":"))


def _xml_elements(ds: Dataset, out: list[str]) -> None:
    for element in ds:
        tag = f"{element.tag.group:04X}{element.tag.element:04X}"
        keyword = keyword_for_tag(element.tag) or ""
        out.append(
            f"<DicomAttribute tag={quoteattr(tag)} vr={quoteattr(element.VR)} keyword={quoteattr(keyword)}>"
        )
        if element.VR == "SQ":
            for number, item in enumerate(element.value, start=1):
                out.append(f'<Item number="{number}">')
                _xml_elements(item, out)
                out.append("</Item>")
        else:
            values = element.value if element.VM > 1 else [element.value]
            for number, value in enumerate(values, start=1):
                if value is None or value == "":
                    continue
                out.append(f'<Value number="{number}">{escape(str(value))}</Value>')
        out.append("</DicomAttribute>")


def to_xml(ds: Dataset) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">',
    ]
    _xml_elements(ds, out)
    out.append("</NativeDicomModel>")
    return "".join(out)


def dicom_response(ds: Dataset, media_type: str, *, status: int = 200) -> HttpResponse:
    if media_type == DICOM_XML:
        body = to_xml(ds)
    else:
        body = to_json(ds)
        media_type = DICOM_JSON
    return HttpResponse(body, status=status, content_type=media_type)


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> HttpResponse:
    """A plain error a person can act on. Never include patient data in ``message``."""
    response = HttpResponse(
        json.dumps({"error": message}), status=status, content_type="application/json"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class DicomJsonGZipMiddleware(GZipMiddleware):
    """Gzip DICOM JSON (QIDO-RS results, WADO-RS metadata) for clients that accept it: a
    600-slice series' metadata shrinks about tenfold. Nothing else: HTML pages carry CSRF tokens,
    and compressing them next to reflected input would open them to BREACH; images and frames
    are compressed already."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != DICOM_JSON:
            return response
        return super().process_response(request, response)
