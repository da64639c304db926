// The reading room: autosave of the report editor, the sign dialog, report actions, the viewer
// beside the report or in a second window, dictation (Web Speech API, where the browser has it)
// and the keyboard. Talks to the reports API (/api/reports/items/<id>/…) with the session and
// its CSRF token. Nothing here calls any service but our own.
(function () {
  "use strict";

  var AUTOSAVE_MS = 4000;

  function $(id) { return document.getElementById(id); }

  function start() {
    var room = $("reading-room");
    if (!room) return;
    var api = {
      draft: room.dataset.apiDraft, sign: room.dataset.apiSign, finalise: room.dataset.apiFinalise,
      changes: room.dataset.apiChanges, revise: room.dataset.apiRevise, review: room.dataset.apiReview
    };
    var csrf = room.dataset.csrf;
    var editor = $("report-editor");
    var state = $("save-state");
    var errorBox = $("report-error");
    var dirty = false, saving = null, stopped = false;
    var etag = editor ? editor.dataset.etag || "" : "";

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
    }

    function call(method, url, body, headers) {
      var h = { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" };
      Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
      return fetch(url, {
        method: method, headers: h, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body)
      }).then(function (response) {
        return response.text().then(function (text) {
          var data = {};
          try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {}; }
          return { ok: response.ok, status: response.status, data: data, response: response };
        });
      });
    }

    function message(result) {
      if (result.data && result.data.detail) return result.data.detail;
      if (result.status === 403) return "You are not allowed to do this (log in again?).";
      return "The server did not accept this (HTTP " + result.status + "). Try again.";
    }

    // ---- Autosave ------------------------------------------------------------------------
    function content() {
      var body = {};
      editor.querySelectorAll("textarea[data-report-section]").forEach(function (area) {
        body[area.name] = area.value;
      });
      var keys = editor.querySelector("input[name=key_images]");
      if (keys && keys.value) {
        try { body.key_images = JSON.parse(keys.value); } catch (e) { /* the evidence panel owns it */ }
      }
      return body;
    }

    function hhmm(date) {
      return String(date.getHours()).padStart(2, "0") + ":" + String(date.getMinutes()).padStart(2, "0");
    }

    function save() {
      if (!editor || stopped) return Promise.resolve(false);
      if (saving) return saving.then(function () { return dirty ? save() : true; });
      dirty = false;
      state.textContent = "Saving…";
      var headers = etag ? { "If-Match": etag } : {};
      var first = !etag;
      saving = call("PUT", api.draft, content(), headers).then(function (result) {
        saving = null;
        if (result.ok) {
          etag = result.response.headers.get("ETag") || result.data.etag || etag;
          editor.dataset.etag = etag;
          state.textContent = "Saved " + hhmm(new Date());
          showError("");
          if (first) {  // the report now exists: it can be signed (no reload: the caret stays)
            ["open-sign", "discard-draft"].forEach(function (id) { if ($(id)) $(id).hidden = false; });
            if ($("starts-on-save")) $("starts-on-save").hidden = true;
          }
          return true;
        }
        dirty = true;
        if (result.status === 409 || result.status === 403 || result.status === 404) {
          stopped = true;  // saving again would not help; say so plainly and keep the text
          state.textContent = "Not saved";
          showError(message(result) + " Your text is still on this page: copy it before you reload.");
        } else {
          state.textContent = "Not saved";
          showError(message(result));
        }
        return false;
      }, function () {
        saving = null;
        dirty = true;
        state.textContent = "Not saved (offline?) — trying again";
        return false;
      });
      return saving;
    }

    if (editor) {
      editor.addEventListener("input", function () {
        dirty = true;
        if (!stopped) state.textContent = "Editing…";
      });
      editor.addEventListener("focusout", function () { if (dirty) save(); });
      setInterval(function () { if (dirty) save(); }, AUTOSAVE_MS);
      window.addEventListener("beforeunload", function (event) {
        if (!dirty) return;
        if (!stopped) save();  // a last try; the browser asks whether to leave meanwhile
        event.preventDefault();
        event.returnValue = "";
      });
      var saveNow = $("save-now");
      if (saveNow) saveNow.addEventListener("click", function () { dirty = true; save(); });
      var discard = $("discard-draft");
      if (discard) discard.addEventListener("click", function () {
        if (!window.confirm("Throw this draft away? It cannot be recovered.")) return;
        call("DELETE", api.draft).then(function (result) {
          if (result.ok) { dirty = false; window.location.reload(); } else { showError(message(result)); }
        });
      });
    }

    // ---- Signing ---------------------------------------------------------------------------
    var dialog = $("sign-dialog");
    var signForm = $("sign-form");
    var mode = "sign";

    function openDialog(which) {
      if (!dialog) return;
      mode = which;
      $("sign-title").textContent =
        which === "finalise" ? "Make the report final" :
        which === "review" ? "Send the preliminary for review" : "Sign the report";
      $("sign-status").hidden = which !== "sign";
      $("review-fields").hidden = which === "finalise";
      var passwordNeeded = which !== "review";
      $("sign-password").required = passwordNeeded;
      $("sign-password").closest("form").querySelector("label[for=sign-password]").hidden = !passwordNeeded;
      $("sign-password").hidden = !passwordNeeded;
      if (which === "review") $("send-for-review").checked = true;
      $("sign-error").hidden = true;
      $("sign-submit").textContent = which === "finalise" ? "Sign final" : which === "review" ? "Send" : "Sign";
      var go = function () { dialog.showModal(); (passwordNeeded ? $("sign-password") : $("reviewer")).focus(); };
      // Sign what is on the screen: only once it is saved (a refused save says why).
      if (which === "sign" && editor) { save().then(function (saved) { if (saved) go(); }); } else { go(); }
    }

    function submitDialog() {
      var data = new FormData(signForm);
      var body, url;
      if (mode === "finalise") {
        url = api.finalise; body = { password: data.get("password"), mfa_code: data.get("mfa_code") || "" };
      } else if (mode === "review") {
        url = api.review; body = { reviewer: data.get("reviewer") || "", message: data.get("message") || "" };
      } else {
        url = api.sign;
        body = {
          status: data.get("status") || "preliminary", password: data.get("password"),
          mfa_code: data.get("mfa_code") || "", send_for_review: $("send-for-review").checked,
          reviewer: data.get("reviewer") || "", message: data.get("message") || ""
        };
        if (body.status === "final") body.send_for_review = false;
      }
      $("sign-submit").disabled = true;
      call("POST", url, body).then(function (result) {
        $("sign-submit").disabled = false;
        if (result.ok) { dirty = false; window.location.reload(); return; }
        $("sign-password").value = "";
        $("sign-error").textContent = message(result);
        $("sign-error").hidden = false;
      }, function () {
        $("sign-submit").disabled = false;
        $("sign-error").textContent = "The server could not be reached; nothing was signed. Try again.";
        $("sign-error").hidden = false;
      });
    }

    if (dialog) {
      signForm.addEventListener("submit", function (event) { event.preventDefault(); submitDialog(); });
      $("sign-cancel").addEventListener("click", function () { dialog.close(); });
      signForm.querySelectorAll("input[name=status]").forEach(function (radio) {
        radio.addEventListener("change", function () {
          var final = signForm.querySelector("input[name=status]:checked").value === "final";
          $("review-fields").disabled = final;
        });
      });
    }
    [["open-sign", "sign"], ["open-finalise", "finalise"], ["open-review", "review"]].forEach(function (pair) {
      var button = $(pair[0]);
      if (button) button.addEventListener("click", function () { openDialog(pair[1]); });
    });

    function action(url, body) {
      call("POST", url, body).then(function (result) {
        if (result.ok) { window.location.reload(); } else { showError(message(result)); }
      });
    }
    var revise = $("revise");
    if (revise) revise.addEventListener("click", function () { action(api.revise, {}); });
    document.querySelectorAll("[data-change]").forEach(function (button) {
      button.addEventListener("click", function () { action(api.changes, { kind: button.dataset.change }); });
    });

    // ---- The viewer: beside the report, or in a second window (second monitor) -------------
    var beside = $("viewer-beside");
    var panel = $("viewer-panel");
    if (beside && panel) beside.addEventListener("click", function () {
      var frame = panel.querySelector("iframe");
      if (!frame.src) frame.src = frame.dataset.src;  // loaded only when asked for
      panel.hidden = !panel.hidden;
      document.body.classList.toggle("with-viewer", !panel.hidden);
      beside.setAttribute("aria-expanded", String(!panel.hidden));
    });
    var second = $("viewer-window");
    if (second) second.addEventListener("click", function () {
      var w = window.open(second.dataset.url, "skylight-viewer-" + room.dataset.item,
        "popup,width=" + Math.round(screen.availWidth * 0.9) + ",height=" + Math.round(screen.availHeight * 0.9));
      if (w) w.focus();
    });

    // ---- Dictation (progressive enhancement) ------------------------------------------------
    var Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
    if (Recognition && editor) {
      var active = null;
      editor.querySelectorAll("button.dictate").forEach(function (button) {
        button.hidden = false;
        button.addEventListener("click", function () {
          if (active) { active.stop(); return; }
          var area = $(button.dataset.for);
          var recognition = new Recognition();
          recognition.lang = document.documentElement.lang || "en-US";
          recognition.continuous = true;
          recognition.interimResults = false;
          recognition.onresult = function (event) {
            for (var i = event.resultIndex; i < event.results.length; i++) {
              if (event.results[i].isFinal) insertAtCaret(area, event.results[i][0].transcript.trim());
            }
          };
          recognition.onend = function () {
            active = null;
            button.setAttribute("aria-pressed", "false");
            button.classList.remove("listening");
          };
          recognition.onerror = function (event) {
            showError("Dictation stopped: " + (event.error === "not-allowed"
              ? "the browser may not use the microphone." : event.error) + "");
          };
          active = recognition;
          button.setAttribute("aria-pressed", "true");
          button.classList.add("listening");
          area.focus();
          recognition.start();
        });
      });
    }

    function insertAtCaret(area, text) {
      if (!text) return;
      var start = area.selectionStart, end = area.selectionEnd, value = area.value;
      if (start === undefined || start === null) { start = end = value.length; }
      var before = value.slice(0, start), after = value.slice(end);
      var piece = (before && !/\s$/.test(before) ? " " : "") + text;
      area.value = before + piece + after;
      area.selectionStart = area.selectionEnd = (before + piece).length;
      area.dispatchEvent(new Event("input", { bubbles: true }));
    }

    // ---- Keyboard -------------------------------------------------------------------------
    document.addEventListener("keydown", function (event) {
      var mod = event.ctrlKey || event.metaKey;
      if (mod && (event.key === "s" || event.key === "S") && editor) {
        event.preventDefault(); dirty = true; save();
      } else if (mod && event.key === "Enter" && $("open-sign")) {
        event.preventDefault(); openDialog("sign");
      } else if (event.altKey && !mod && /^Digit[1-5]$/.test(event.code) && editor) {
        var areas = editor.querySelectorAll("textarea[data-report-section]");
        var area = areas[Number(event.code.slice(5)) - 1];
        if (area) { event.preventDefault(); area.focus(); }
      }
    });

    room.dataset.ready = "true";  // for tests and panels: the editor's handlers are in place

    // ---- Feature panels: a 404 (not built yet, or not yours) shows as nothing ---------------
    document.body.addEventListener("htmx:responseError", function (event) {
      var target = event.detail && event.detail.target;
      if (target && target.classList && target.classList.contains("room-panel")) {
        target.hidden = true;
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
