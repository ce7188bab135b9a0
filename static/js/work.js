// What every expert work page (grading, review) does the same way: the keyboard dispatch
// and its dialogs, the status line, active time, autosave of the draft (revision and tab,
// a copy in localStorage, a beacon when the page is left, "signed out" detection), the
// lease heartbeat's signed-out case and the guard on an unsaved edit of committed work.
// The page's own script describes itself and calls ProofdeskWork.start(page).
//
// `page` (the kind's script fills in what it has):
//   root, form            the page's element (data-draft-key, data-draft-revision,
//                         data-editing, data-read-only) and its work form
//   submit()              submit the work (Enter, Ctrl+Enter)
//   keys(key, event)      the kind's own shortcuts: true when the key was one
//   actions               {name: function (element)} for the kind's [data-action] buttons
//   readOnlyKeys          keys refused, with readOnlyMessage, while committed work is shown
//   nextMessage           what "n" says while the item is still being worked on
//   snapshot()            the form's content for the local copy of the draft
//   restore(local)        put a local copy back into the form
// and it gets: editing, readOnly, submitting, edits, savedEdits, tab, base, revision.
(function () {
  "use strict";

  var IDLE_MS = 120 * 1000; // no input for this long: reading has stopped, time stops
  var RETRY_MS = 5000;

  function $(id) { return document.getElementById(id); }

  function json(id) {
    var el = $(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function status(text, isError) {
    var el = $("draft-status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function openDialog(id) {
    var dialog = $(id);
    if (dialog && !dialog.open) dialog.showModal();
  }

  function start(page) {
    var root = page.root, form = page.form;
    page.editing = !!root && root.dataset.editing === "true";
    // Committed work shown read-only: its keys do nothing until "Edit".
    page.readOnly = !!root && root.dataset.readOnly === "true";
    page.submitting = false;
    page.edits = 0;
    page.savedEdits = 0;
    page.actions = page.actions || {};
    if (form) {
      if (!page.readOnly) trackActiveTime();
      autosave(page);
    }
    // Back to a page kept in the back/forward cache shows the form as it was before it was
    // submitted (uncommitted work that is committed by now): draw it afresh instead.
    window.addEventListener("pageshow", function (e) { if (e.persisted && form) location.reload(); });
    document.addEventListener("keydown", function (e) { onKey(e, page); });
    // A closed dialog may keep focus until the next rendering update: let it go at once, so
    // the next shortcut is not typed into a hidden field. The close event comes in a task of
    // its own: if the dialog was opened again meanwhile (Esc, then i at once), its focus stays.
    document.querySelectorAll("dialog").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        if (!dialog.open && dialog.contains(document.activeElement)) document.activeElement.blur();
      });
    });
    document.addEventListener("click", function (e) {
      var action = e.target.closest("[data-action]");
      if (!action) return;
      var name = action.getAttribute("data-action");
      if (name === "close") action.closest("dialog").close();
      else if (name === "help") openDialog("help-dialog");
      else if (name === "skip") openDialog("skip-dialog");
      else if (page.actions[name]) page.actions[name](action);
    });
  }

  function onKey(e, page) {
    if (e.defaultPrevented || e.altKey || e.metaKey) return;
    var t = e.target.closest("dialog:not([open])") ? document.body : e.target;
    var dialog = document.querySelector("dialog[open]");
    if (dialog) {
      // Enter on a radio or Ctrl+Enter anywhere submits the dialog; Esc is native.
      var dform = dialog.querySelector("form");
      if (e.key === "Enter" && dform && (e.ctrlKey || t.matches("input[type=radio]"))) {
        e.preventDefault();
        dform.requestSubmit();
      }
      return;
    }
    if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); page.submit(); return; }
    if (t.matches("textarea, select, input:not([type=radio]):not([type=checkbox]), [contenteditable]")) {
      if (e.key === "Escape") t.blur();
      return;
    }
    if (e.ctrlKey) return;
    if (e.key === "Enter" && t.matches("button, a, summary")) return; // activate what has focus
    if (page.readOnly && (page.readOnlyKeys || []).includes(e.key)) {
      // Committed work changes only through its edit form, opened on purpose.
      status(page.readOnlyMessage, false);
      e.preventDefault();
      return;
    }
    if (!(page.keys && page.keys(e.key, e))) {
      switch (e.key) {
        case "Enter": page.submit(); break;
        case "n":
          if ($("next-form")) $("next-form").submit();
          else if (page.form) status(page.nextMessage, false);
          break;
        case "e": if ($("edit-link")) $("edit-link").click(); break;
        case "s": openDialog("skip-dialog"); break;
        case "?": openDialog("help-dialog"); break;
        default: return;
      }
    }
    e.preventDefault();
  }

  // ---- Active time and autosave --------------------------------------------------------

  function trackActiveTime() {
    var field = $("active-seconds"), seconds = +field.value || 0, lastInput = Date.now();
    ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "selectionchange"].forEach(function (name) {
      document.addEventListener(name, function () { lastInput = Date.now(); }, { passive: true, capture: true });
    });
    setInterval(function () {
      if (document.visibilityState === "visible" && Date.now() - lastInput < IDLE_MS) {
        seconds += 1;
        field.value = seconds;
      }
    }, 1000);
  }

  // htmx posts the form to the draft URL a few seconds after each change (hx-trigger on the
  // form). This adds what htmx does not:
  // - every change gets a revision that only grows (ms since the epoch * 1000, or one more
  //   than the last), and is kept at once in localStorage: a draft typed a moment before a
  //   reload, a closed tab or a lost connection is restored by the next page of this item
  //   and sent again; the server keeps the newest revision and refuses an older one;
  // - a flush with a beacon (carrying the form's CSRF token) when the page is hidden or left;
  // - a retry until the server has the latest edit;
  // - an answer is taken as saved only when it is the draft endpoint's (its header says so):
  //   a login page that an expired session redirected to means "signed out", never "saved";
  // - another tab of the same expert on the same item is told, and the server refuses a
  //   write that would overwrite the other tab's newer draft unseen.
  function autosave(page) {
    if (page.editing) return guardEdit(page);
    var form = page.form, root = page.root, retry = null, inFlight = 0;
    var key = root.dataset.draftKey, signedOut = false;
    // This tab's id survives its reloads (sessionStorage), so a reloaded page may take up
    // its own draft; each tab keeps its local copy under its own key, so that one tab's
    // refused draft is never restored, and sent, by another.
    page.tab = tabId(false);
    function localKey() { return key + ":" + page.tab; }
    page.base = +root.dataset.draftRevision || 0; // the server's draft this page has seen
    page.revision = page.base;
    field(form, "tab").value = page.tab;
    field(form, "base_revision").value = page.base;
    field(form, "revision").value = page.revision;

    var local = readLocal(localKey());
    if (local && local.revision > page.base) {
      // Newer than the server's copy: typed here before a reload, or while signed out.
      page.restore(local);
      var seconds = $("active-seconds");
      seconds.value = Math.max(+seconds.value || 0, +local.active_seconds || 0);
      page.revision = local.revision;
      field(form, "revision").value = page.revision;
      page.edits += 1;
      status("Restored your latest draft from this browser; saving it…", false);
      // Sent as it is, under its own revision: if the previous page's flush arrives too,
      // the server sees the same revision twice and keeps one.
      setTimeout(function () { form.dispatchEvent(new Event("proofdesk:resend", { bubbles: true })); }, 0);
    } else if (local) {
      forgetLocal(localKey());
    }

    ["input", "change", "proofdesk:dirty"].forEach(function (name) {
      form.addEventListener(name, function () {
        page.edits += 1;
        page.revision = Math.max(page.revision + 1, Date.now() * 1000);
        field(form, "revision").value = page.revision;
        keepLocal(localKey(), page);
      });
    });
    form.addEventListener("submit", function () { forgetLocal(localKey()); });
    form.addEventListener("htmx:beforeRequest", function () { inFlight = page.edits; });
    form.addEventListener("htmx:beforeSwap", function (e) {
      var xhr = e.detail.xhr;
      if (!xhr.getResponseHeader("Proofdesk-Draft")) {
        // Not the draft endpoint's answer (a login page after a redirect, a proxy's page).
        e.detail.shouldSwap = false;
        e.detail.isError = false;
        if (isSignedOut(xhr)) showSignedOut();
        return;
      }
      // A 400 or 409 carries a message worth showing (and retrying would not help).
      if (xhr.status === 400 || xhr.status === 409) {
        e.detail.shouldSwap = true;
        e.detail.isError = false;
      }
    });
    function retryLater() {
      if (!signedOut) status("Offline: your draft is not saved yet (it is kept in this browser). Retrying…", true);
      clearTimeout(retry);
      retry = setTimeout(function () {
        if (page.edits > page.savedEdits && !page.submitting) {
          form.dispatchEvent(new Event("proofdesk:resend", { bubbles: true }));
        }
      }, RETRY_MS);
    }
    function showSignedOut() {
      signedOut = true;
      $("signed-out").hidden = false;
      status("Signed out — your draft is kept in this browser.", true);
    }
    form.addEventListener("htmx:sendError", retryLater);
    document.addEventListener("htmx:beforeSwap", function (e) {
      // The lease heartbeat after the session expired: the login page is not a banner.
      if (e.target.id === "lease" && isSignedOut(e.detail.xhr)) {
        e.detail.shouldSwap = false;
        showSignedOut();
      }
    });
    form.addEventListener("htmx:afterRequest", function (e) {
      var xhr = e.detail.xhr, code = xhr ? xhr.status : 0;
      var ours = xhr && xhr.getResponseHeader("Proofdesk-Draft");
      var revision = xhr && +xhr.getResponseHeader("Proofdesk-Draft-Revision");
      if (ours === "saved") {
        page.savedEdits = Math.max(page.savedEdits, inFlight);
        page.base = Math.max(page.base, revision || 0);
        field(form, "base_revision").value = page.base;
        var kept = readLocal(localKey());
        if (kept && kept.revision <= page.base) forgetLocal(localKey());
      } else if (ours === "refused" && xhr.getResponseHeader("Proofdesk-Draft-Conflict") === "other-tab") {
        $("other-tab").hidden = false;
      } else if (!ours && (code === 401 || code === 403 || isSignedOut(xhr))) {
        showSignedOut();
      } else if (!ours || code === 0 || code >= 500) {
        retryLater();
      }
    });
    function beacon() {
      if (page.submitting || signedOut || page.edits <= page.savedEdits) return;
      if (navigator.sendBeacon(form.getAttribute("hx-post"), new FormData(form))) {
        page.savedEdits = page.edits;
      }
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") beacon();
    });
    window.addEventListener("pagehide", beacon);
    otherTabs(page, key);
  }

  function isSignedOut(xhr) {
    if (xhr.status === 401 || xhr.status === 403) return true;
    var login = $("signed-out") && $("signed-out").querySelector("a");
    if (!login || !xhr.responseURL) return false;
    return new URL(xhr.responseURL).pathname === new URL(login.href).pathname;
  }

  function field(form, name) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    return input;
  }

  // A random id for this tab, kept in sessionStorage; `fresh` makes a new one (a duplicated
  // tab starts with a copy of the original's sessionStorage).
  function tabId(fresh) {
    var id = null;
    try { id = fresh ? null : sessionStorage.getItem("proofdesk-tab"); } catch (e) { /* none */ }
    if (!id) {
      id = Math.random().toString(36).slice(2) + Date.now().toString(36);
      try { sessionStorage.setItem("proofdesk-tab", id); } catch (e) { /* per page then */ }
    }
    return id;
  }

  function readLocal(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function keepLocal(key, page) {
    var copy = Object.assign(page.snapshot(), {
      revision: page.revision,
      active_seconds: +$("active-seconds").value || 0,
    });
    try {
      localStorage.setItem(key, JSON.stringify(copy));
    } catch (e) { /* storage full or disabled: the server copy is all there is */ }
  }

  function forgetLocal(key) {
    try { localStorage.removeItem(key); } catch (e) { /* nothing kept */ }
  }

  // Tabs of this browser showing the same item tell each other (the server refuses the
  // write that would overwrite the other's draft; this says why before it happens).
  function otherTabs(page, key) {
    if (!window.BroadcastChannel) return;
    var channel = new BroadcastChannel("proofdesk-work"), others = {};
    var instance = Math.random().toString(36).slice(2);
    function shown() { $("other-tab").hidden = Object.keys(others).length === 0; }
    function send(type) {
      channel.postMessage({ type: type, key: key, tab: page.tab, instance: instance });
    }
    channel.onmessage = function (e) {
      var m = e.data || {};
      if (m.key !== key || m.instance === instance) return;
      if (m.tab === page.tab && m.type === "here") {
        // A duplicated tab (same sessionStorage): the newcomer takes an id of its own.
        page.tab = tabId(true);
        field(page.form, "tab").value = page.tab;
      }
      if (m.type === "closed") delete others[m.instance];
      else others[m.instance] = true;
      if (m.type === "open") send("here");
      shown();
    };
    send("open");
    window.addEventListener("pagehide", function () { send("closed"); });
  }

  // An edit of committed work is saved only by "Save" (it must name the version it started
  // from): leaving the page with a changed, unsaved edit asks first.
  function guardEdit(page) {
    // Committed: the copies the drafts of this item left in this browser are done with.
    var prefix = page.root.dataset.draftKey + ":";
    try {
      Object.keys(localStorage).forEach(function (k) { if (k.startsWith(prefix)) localStorage.removeItem(k); });
    } catch (e) { /* storage disabled: nothing kept */ }
    ["input", "change", "proofdesk:dirty"].forEach(function (name) {
      page.form.addEventListener(name, function () { page.edits += 1; });
    });
    page.form.addEventListener("submit", function () { page.submitting = true; });
    window.addEventListener("beforeunload", function (e) {
      if (page.submitting || page.edits === 0) return;
      e.preventDefault();
      e.returnValue = "";
    });
  }

  // Sets a radio of `form` and tells the form (autosave) as typing would.
  function check(radio) {
    if (!radio || radio.checked) return;
    radio.checked = true;
    radio.dispatchEvent(new Event("input", { bubbles: true }));
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // The caret goes to the end: what the expert types next adds to what is there.
  function focusEnd(textarea) {
    if (!textarea || textarea.disabled) return;
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }

  function onReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  window.ProofdeskWork = {
    $: $,
    json: json,
    status: status,
    openDialog: openDialog,
    start: start,
    check: check,
    focusEnd: focusEnd,
    onReady: onReady,
  };
})();
