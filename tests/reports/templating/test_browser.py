"""templating.js in a real browser (Chromium through Playwright): a radiologist chooses a template,
fills its fields, inserts it into the editor (asked first about a section that has text), and
expands a text block shortcut. The editor here is a minimal form#report-editor added to the
panel's page, as the reading room's contract describes it."""

from __future__ import annotations

from tests.browser import artefacts, chromium, logged_in
from tests.reports.templating.conftest import actor

EDITOR = """
<form id="report-editor">
  <textarea name="technique" data-report-section="technique"></textarea>
  <textarea name="findings" data-report-section="findings">Motion artefact.</textarea>
  <textarea name="impression" data-report-section="impression"></textarea>
</form>
"""


def test_a_template_is_filled_and_inserted_and_a_shortcut_expands(web, reading, library):
    from reports.templating import services

    people = reading.people
    services.create_block(
        owner=people.demo, actor=actor(people.alice),
        data={"shortcut": ".nochest", "text": "No acute cardiopulmonary abnormality."},
    )  # fmt: skip
    item = reading.item(modality="CT", body_part="CHEST")
    panel = f"/reports/templates/items/{item.pk}/panel/"
    with chromium() as browser:
        page = logged_in(browser, web.url, "bob", reading.password, then=panel)
        page.evaluate(
            """editor => {
                document.body.insertAdjacentHTML("afterbegin", editor);
                window.changes = [];
                document.getElementById("report-editor").addEventListener(
                    "input", event => window.changes.push(event.target.name));
            }""",
            EDITOR,
        )
        page.get_by_role("button", name="Use template CT chest").click()
        form = page.get_by_role("form", name="Fill in CT chest")
        assert form.get_by_label("Contrast").input_value() == "with"
        form.get_by_label("Nodule size").fill("8")
        form.get_by_label("Side").select_option("left")
        form.get_by_role("button", name="Insert into report").click()
        # Findings already has text: nothing is written until the radiologist chooses.
        question = form.get_by_role("alert")
        assert "These sections already have text: Findings." in question.inner_text()
        assert page.input_value("textarea[name=technique]") == ""
        page.screenshot(path=artefacts() / "templates-panel-conflict.png", full_page=True)
        form.get_by_role("button", name="Add after their text").click()

        assert page.input_value("textarea[name=technique]") == (
            "CT of the chest with intravenous contrast."
        )
        assert page.input_value("textarea[name=findings]") == (
            "Motion artefact.\n\nLungs: Clear.\nLargest nodule 8 mm, left."
        )
        assert page.input_value("textarea[name=impression]") == "***"
        assert sorted(page.evaluate("window.changes")) == ["findings", "impression", "technique"]
        assert "Inserted CT chest into the report." in page.get_by_role("status").inner_text()
        # The caret waits on the first field left empty, selected, ready to be typed over.
        assert page.evaluate("document.activeElement.name") == "impression"
        page.keyboard.type(".nochest")
        page.keyboard.press("Space")
        assert page.input_value("textarea[name=impression]") == (
            "No acute cardiopulmonary abnormality. "
        )
        page.click("textarea[name=technique]")
        page.keyboard.press("End")
        page.keyboard.press("Control+End")
        page.keyboard.type(" .NOCHEST")
        page.keyboard.press("Tab")
        assert page.input_value("textarea[name=technique]").endswith(
            "contrast. No acute cardiopulmonary abnormality."
        )
        # An unknown shortcut is just text, and Tab moves on as usual.
        page.keyboard.type(" .unknown")
        page.keyboard.press("Space")
        assert page.input_value("textarea[name=technique]").endswith(" .unknown ")
        assert page.evaluate("window.changes").count("impression") >= 2
        page.screenshot(path=artefacts() / "templates-panel-inserted.png", full_page=True)
