"""The reading room end to end, in real browsers (Chromium through Playwright) against the real
web server: a reading-group radiologist claims a study and writes a preliminary from a template
(the templates panel), dictates and types, signs it with the password and sends it for review;
the hospital's radiologist validates it to final from the review queue; the study's referring
physician reads the final report among the results."""

from __future__ import annotations

from typing import Any

from tests.browser import artefacts, chromium, logged_in
from tests.reports.review.conftest import make_attending

CT_ABDOMEN = {
    "name": "CT abdomen",
    "modality": "CT",
    "body_part": "ABDOMEN",
    "technique": "CT of the abdomen [[contrast:with*|without]] intravenous contrast.",
    "findings": "Liver: [[liver:text:Normal.]]\nFree fluid: [[fluid:none*|small|large]].",
    "impression": "[[impression:text:No acute abdominal abnormality.]]",
}
FINDINGS = "Liver: Normal.\nFree fluid: none. Spleen and kidneys normal."
IMPRESSION = "No acute abdominal abnormality."
# The browser's speech recognition, stood in for: it "hears" one sentence when started.
FAKE_SPEECH = """
window.FakeSpeech = function () {
  var self = this;
  this.start = function () {
    setTimeout(function () {
      var result = [{transcript: "Helical CT after intravenous contrast"}];
      result.isFinal = true;
      self.onresult({resultIndex: 0, results: [result]});
      self.onend();
    }, 50);
  };
  this.stop = function () { self.onend(); };
};
Object.defineProperty(window, "SpeechRecognition", {value: window.FakeSpeech});
Object.defineProperty(window, "webkitSpeechRecognition", {value: window.FakeSpeech});
"""


def _referrer(reading: Any) -> Any:
    from tenants import services
    from tenants.models import Role, User

    welby = User.objects.create_user(
        "welby", password=reading.password, display_name="Marcus Welby", person_name="WELBY^MARCUS"
    )
    services.add_membership(user=welby, tenant=reading.people.demo, role=Role.REFERRING_PHYSICIAN)
    return welby


def test_a_preliminary_is_written_validated_and_read_by_the_referrer(web, reading):
    from reports.models import ReportVersion, ReviewPolicy
    from reports.templating import services as templates
    from studies.models import Study
    from tenants import audit

    alice = reading.people.alice
    templates.create_template(
        owner=reading.people.demo, user=alice, actor=audit.Actor.for_user(alice), data=CT_ABDOMEN
    )
    ReviewPolicy.objects.create(tenant=reading.people.demo, requires_validation=True)
    make_attending(reading.people)
    _referrer(reading)
    item = reading.item(reading.people.demo, patient_name="ROOM^RITA", accession="ACC-ROOM")
    Study.objects.filter(pk=item.study_id).update(
        referring_physician_name="Welby^Marcus", referring_physician_name_search="WELBY^MARCUS"
    )
    row = f'tr[data-item="{item.pk}"]'
    folder = artefacts()
    with chromium() as browser:
        # The reading-group radiologist claims the study and writes the report.
        bob = logged_in(browser, web.url, "bob", reading.password, then="/worklist/")
        bob.context.add_init_script(FAKE_SPEECH)
        bob.click(f"{row} button.claim")
        bob.wait_for_url(f"{web.url}/worklist/items/{item.pk}/")
        bob.wait_for_selector("#reading-room[data-ready=true] #report-editor")
        bob.fill("#section-clinical_information", "Abdominal pain.")
        # The hospital's template, from the templates panel, with its defaults.
        bob.get_by_role("button", name="Use template CT abdomen").click()
        form = bob.get_by_role("form", name="Fill in CT abdomen")
        form.get_by_role("button", name="Insert into report").click()
        assert bob.input_value("#section-technique") == (
            "CT of the abdomen with intravenous contrast."
        )
        assert bob.input_value("#section-impression") == IMPRESSION
        # Dictation: the words go in at the caret, and autosave sees them.
        bob.click("#section-technique")
        bob.keyboard.press("Control+End")
        bob.click("button.dictate[data-for=section-technique]")
        bob.wait_for_function(
            # A function, not an expression: the page's CSP forbids eval, which Playwright
            # would use to compile a bare expression.
            "() => document.getElementById('section-technique').value.includes('Helical')"
        )
        assert bob.input_value("#section-technique") == (
            "CT of the abdomen with intravenous contrast. Helical CT after intravenous contrast"
        )
        bob.keyboard.press("Alt+4")  # keyboard-first: Alt+4 is the findings
        assert bob.evaluate("document.activeElement.id") == "section-findings"
        bob.keyboard.press("Control+End")
        bob.keyboard.type(" Spleen and kidneys normal.")
        assert bob.input_value("#section-findings") == FINDINGS
        bob.keyboard.press("Control+s")
        bob.wait_for_function(
            "() => document.getElementById('save-state').textContent.startsWith('Saved')"
        )
        bob.screenshot(path=folder / "room-1-bob-writes.png", full_page=True)

        # A second tab saves meanwhile: the first tab's next save is refused, plainly, and its
        # text stays on the screen; reloading shows the newer draft.
        ready = "#reading-room[data-ready=true] #report-editor"
        other = bob.context.new_page()
        other.goto(f"{web.url}/worklist/items/{item.pk}/")
        other.wait_for_selector(ready)
        other.fill("#section-comparison", "None available.")
        other.keyboard.press("Control+s")
        other.wait_for_function(
            "() => document.getElementById('save-state').textContent.startsWith('Saved')"
        )
        bob.fill("#section-comparison", "Typed in the older tab.")
        bob.keyboard.press("Control+s")
        bob.wait_for_selector("#report-error:not([hidden])")
        assert "changed in another window" in bob.inner_text("#report-error")
        assert bob.input_value("#section-comparison") == "Typed in the older tab."
        bob.screenshot(path=folder / "room-1b-bob-conflict.png", full_page=True)
        other.close()
        bob.on("dialog", lambda dialog: dialog.accept())  # "leave with unsaved text?"
        bob.reload()
        bob.wait_for_selector(ready)
        assert bob.input_value("#section-comparison") == "None available."

        # Ctrl+Enter opens the sign dialog; the hospital requires validation.
        bob.keyboard.press("Control+Enter")
        bob.wait_for_selector("#sign-dialog[open]")
        assert bob.is_disabled("#sign-status input[value=final]")
        assert bob.is_checked("#send-for-review")
        bob.select_option("#reviewer", "hugo")
        bob.fill("#review-message", "Please validate.")
        bob.fill("#sign-password", "wrong password")
        bob.click("#sign-submit")
        bob.wait_for_selector("#sign-error:not([hidden])")
        assert "password is not correct" in bob.inner_text("#sign-error")
        bob.fill("#sign-password", reading.password)
        bob.screenshot(path=folder / "room-2-bob-signs.png", full_page=True)
        bob.click("#sign-submit")
        bob.wait_for_selector("#review-open")
        assert "PRELIMINARY" in bob.inner_text("#report-title")
        bob.screenshot(path=folder / "room-3-bob-sent-for-review.png", full_page=True)

        # The hospital's radiologist validates it from the review queue.
        hugo = logged_in(browser, web.url, "hugo", reading.password, then="/reports/review/")
        assert "ROOM, RITA" in hugo.inner_text(".review-queue")
        hugo.click(".review-queue a.button")
        hugo.wait_for_selector("#validate-form")
        assert "Spleen and kidneys normal." in hugo.inner_text("#review-text")
        hugo.fill("#validate-password", reading.password)
        hugo.screenshot(path=folder / "room-4-hugo-validates.png", full_page=True)
        hugo.click("#validate")
        hugo.wait_for_selector("text=the report is final")

        # The referring physician reads the final report.
        welby = logged_in(browser, web.url, "welby", reading.password, then="/reports/results/")
        assert "FINAL" in welby.inner_text(".results")
        welby.click(".results a")
        welby.wait_for_selector("#result-text")
        assert welby.inner_text("#result-label") == "FINAL"
        text = welby.inner_text("#result-text")
        assert "Spleen and kidneys normal." in text and IMPRESSION in text and "Hugo" in text
        assert "Helical CT after intravenous contrast" in text
        welby.screenshot(path=folder / "room-5-referrer-reads.png", full_page=True)

        bob.reload()
        assert "FINAL" in bob.inner_text("#report-title")
        bob.screenshot(path=folder / "room-6-bob-final.png", full_page=True)
    final = ReportVersion.objects.get(report__work_item=item, status="final")
    assert (final.author.username, final.signed_by.username) == ("bob", "hugo")
    assert final.findings == FINDINGS
