// The evidence panel: insert a measurement into the findings, mark key images.
// Works on the reading room's editor contract: form#report-editor, its section textareas
// (data-report-section) and its hidden key_images input (a JSON list). Every change fires an
// `input` event so the editor's autosave sees it. Loaded by the panel; safe to load twice.
(function () {
  if (window.skylightEvidence) { window.skylightEvidence.sync(); return; }

  function editor() { return document.getElementById("report-editor"); }
  function keyInput() { var f = editor(); return f && f.querySelector("input[name=key_images]"); }
  var lastSection = null;

  document.addEventListener("focusin", function (event) {
    var t = event.target;
    if (t && t.matches && t.matches("#report-editor textarea[data-report-section]")) lastSection = t;
  });

  function insert(text) {
    var f = editor();
    if (!f) return;
    var area = lastSection || f.querySelector("textarea[data-report-section=findings]");
    if (!area || area.readOnly || area.disabled) return;
    var start = area.selectionStart, end = area.selectionEnd, value = area.value;
    if (start === undefined || start === null || document.activeElement !== area && start === 0) {
      start = end = value.length;
    }
    var before = value.slice(0, start), after = value.slice(end);
    var lead = before && !/\s$/.test(before) ? (/[.!?]$/.test(before) ? " " : ". ") : "";
    var piece = lead + text + ".";
    area.value = before + piece + after;
    area.selectionStart = area.selectionEnd = (before + piece).length;
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  }

  function chosen() {
    var input = keyInput();
    if (!input || !input.value) return [];
    try { var list = JSON.parse(input.value); return Array.isArray(list) ? list : []; }
    catch (e) { return []; }
  }

  function same(a, b) { return a.instance === b.instance && Number(a.frame || 1) === Number(b.frame || 1); }

  function sync() {
    var list = chosen();
    document.querySelectorAll("#evidence-panel .evidence-key").forEach(function (button) {
      var me = { instance: button.dataset.instance, frame: Number(button.dataset.frame) };
      var on = list.some(function (k) { return same(k, me); });
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Key image ✓" : "Key image";
    });
  }

  function toggle(button) {
    var input = keyInput();
    if (!input) return;
    var me = {
      series: button.dataset.series, instance: button.dataset.instance,
      frame: Number(button.dataset.frame), caption: button.dataset.caption || ""
    };
    var list = chosen();
    var kept = list.filter(function (k) { return !same(k, me); });
    if (kept.length === list.length) kept.push(me);
    input.value = JSON.stringify(kept);
    input.dispatchEvent(new Event("input", { bubbles: true }));
    sync();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#evidence-panel button");
    if (!button) return;
    if (button.classList.contains("evidence-insert")) insert(button.dataset.text);
    else if (button.classList.contains("evidence-key")) toggle(button);
  });

  window.skylightEvidence = { sync: sync, insert: insert };
  sync();
})();
