/* Report templates in the reading room (reports/templating/panel.py renders the panel).
 *
 * - "Use template <name>" shows that template's fill-in form; "Insert into report" writes the
 *   filled text into the editor's textareas (form#report-editor textarea[data-report-section]).
 *   A section that already has text is replaced or added to only after the radiologist chooses.
 * - A text block shortcut (".nochest") typed in any editor textarea and followed by Space or Tab
 *   expands to its text.
 * Every programmatic change dispatches a bubbling "input" event, so the editor's autosave sees it.
 *
 * Listeners sit on the document, so the panel can be loaded (and reloaded) by htmx at any time;
 * this file guards against being run twice.
 */
(function () {
  "use strict";
  if (window.skylightTemplating) { return; }

  function editor() { return document.getElementById("report-editor"); }

  function sectionBox(name) {
    var form = editor();
    return form ? form.querySelector('textarea[data-report-section="' + name + '"]') : null;
  }

  function changed(textarea) {
    textarea.dispatchEvent(new Event("input", {bubbles: true}));
  }

  function status(text) {
    var box = document.querySelector("#templating-panel .tpl-status");
    if (box) { box.textContent = text; }
  }

  function templateData(form) {
    var script = form.querySelector('script[type="application/json"]');
    return script ? JSON.parse(script.textContent) : null;
  }

  // ---- choosing a template -------------------------------------------------------------------

  function showForm(id) {
    var panel = document.getElementById("templating-panel");
    if (!panel) { return; }
    panel.querySelectorAll("form[data-template-form]").forEach(function (form) {
      var mine = form.getAttribute("data-template-form") === id;
      form.hidden = !mine;
      if (!mine) { resetConflict(form); }
    });
    panel.querySelectorAll("button[data-template-use]").forEach(function (button) {
      button.setAttribute("aria-expanded", String(button.getAttribute("data-template-use") === id));
    });
    var shown = document.getElementById("tpl-form-" + id);
    if (shown) {
      var first = shown.querySelector("input, select, button[type=submit]");
      if (first) { first.focus(); }
    }
  }

  function closeForm(form) {
    form.hidden = true;
    resetConflict(form);
    var id = form.getAttribute("data-template-form");
    var button = document.querySelector('button[data-template-use="' + id + '"]');
    if (button) { button.setAttribute("aria-expanded", "false"); button.focus(); }
  }

  // ---- filling ------------------------------------------------------------------------------

  function fieldValues(form) {
    var values = {};
    form.querySelectorAll("[data-field]").forEach(function (control) {
      var name = control.getAttribute("data-field");
      if (control.getAttribute("data-kind") === "multi") {
        var chosen = [];
        control.querySelectorAll("input[type=checkbox]").forEach(function (box) {
          if (box.checked) { chosen.push(box.value); }
        });
        values[name] = chosen.join(", ");
      } else {
        values[name] = control.value.trim();
      }
    });
    return values;
  }

  function filled(segments, values, unfilled) {
    return segments.map(function (segment) {
      if (typeof segment === "string") { return segment; }
      var value = values[segment.field];
      return value ? value : unfilled;
    }).join("");
  }

  function resetConflict(form) {
    var box = form.querySelector(".tpl-conflict");
    if (box) { box.hidden = true; }
  }

  function insert(form, mode) {
    var data = templateData(form);
    if (!data) { return; }
    if (!editor()) {
      status("The report editor is not open on this page; claim the study to write its report.");
      return;
    }
    var values = fieldValues(form);
    var texts = {};
    var occupied = [];
    var missing = [];
    Object.keys(data.sections).forEach(function (name) {
      var box = sectionBox(name);
      if (!box) { missing.push(data.labels[name] || name); return; }
      texts[name] = filled(data.sections[name], values, data.unfilled);
      if (box.value.trim()) { occupied.push(data.labels[name] || name); }
    });
    if (occupied.length && !mode) {
      var conflict = form.querySelector(".tpl-conflict");
      conflict.querySelector(".tpl-conflict-text").textContent =
        "These sections already have text: " + occupied.join(", ") +
        ". Replace it with the template's, or add the template's after it?";
      conflict.hidden = false;
      conflict.querySelector("button").focus();
      return;
    }
    var first = null;
    var unfilled = null;
    Object.keys(texts).forEach(function (name) {
      var box = sectionBox(name);
      var current = box.value.replace(/\s+$/, "");
      box.value = (mode === "append" && current) ? current + "\n\n" + texts[name] : texts[name];
      changed(box);
      if (!first) { first = box; }
      if (!unfilled && box.value.indexOf(data.unfilled) >= 0) { unfilled = box; }
    });
    resetConflict(form);
    form.hidden = true;
    var note = missing.length ? " (this editor has no " + missing.join(", ") + " section)" : "";
    status("Inserted " + data.name + " into the report" + note + ".");
    if (unfilled) {
      // Select the first field left empty, ready to be typed over.
      var at = unfilled.value.indexOf(data.unfilled);
      unfilled.focus();
      unfilled.setSelectionRange(at, at + data.unfilled.length);
    } else if (first) {
      first.focus();
    }
  }

  // ---- text blocks --------------------------------------------------------------------------

  function blocks() {
    var script = document.getElementById("templating-text-blocks");
    if (!script) { return {}; }
    try { return JSON.parse(script.textContent) || {}; } catch (e) { return {}; }
  }

  function expand(textarea, key) {
    var end = textarea.selectionStart;
    if (end !== textarea.selectionEnd) { return false; }
    var before = textarea.value.slice(0, end);
    var match = /(^|\s)(\.[A-Za-z0-9_-]+)$/.exec(before);
    if (!match) { return false; }
    var shortcut = match[2];
    var text = blocks()[shortcut.toLowerCase()];
    if (text === undefined) { return false; }
    var start = end - shortcut.length;
    var replacement = text + (key === " " ? " " : "");
    textarea.setRangeText(replacement, start, end, "end");
    changed(textarea);
    return true;
  }

  // ---- wiring -------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var use = event.target.closest && event.target.closest("button[data-template-use]");
    if (use) { showForm(use.getAttribute("data-template-use")); return; }
    var cancel = event.target.closest && event.target.closest("button[data-template-cancel]");
    if (cancel) { closeForm(cancel.form); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-template-form]")) { return; }
    event.preventDefault();
    var submitter = event.submitter;
    insert(form, submitter && submitter.name === "mode" ? submitter.value : "");
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Escape" && target.closest && target.closest("form[data-template-form]")) {
      closeForm(target.closest("form[data-template-form]"));
      return;
    }
    if (event.key !== " " && event.key !== "Tab") { return; }
    if (event.ctrlKey || event.altKey || event.metaKey || event.shiftKey) { return; }
    if (!target.matches || !target.matches("form#report-editor textarea[data-report-section]")) {
      return;
    }
    if (expand(target, event.key)) { event.preventDefault(); }
  });

  window.skylightTemplating = {expand: expand, insert: insert};
})();
