// Referral CRM front-end behaviour: small and dependency-free besides htmx and Bootstrap.
(function () {
  "use strict";

  // Provider picker: choosing a match fills the hidden input and the search box.
  document.addEventListener("click", function (event) {
    var option = event.target.closest("[data-picker-choice]");
    if (!option) return;
    event.preventDefault();
    var picker = option.closest("[data-picker]");
    var chosen = picker.querySelector("input[type=hidden]");
    chosen.value = option.dataset.pickerChoice;
    chosen.dataset.inNetwork = option.dataset.pickerInNetwork || "";
    // A form that reacts to changes (the queue's filters) hears of the choice.
    chosen.dispatchEvent(new Event("change", { bubbles: true }));
    var search = picker.querySelector("input[type=search]");
    search.value = option.dataset.pickerLabel;
    picker.querySelector("[data-picker-options]").innerHTML = "";
    search.classList.add("is-valid");
    // A choice answers the error the form came back with.
    search.classList.remove("is-invalid");
    search.removeAttribute("aria-invalid");
    picker.classList.remove("is-invalid");
  });

  // The words typed in a picker's search box are not a choice: their change (on leaving the
  // box, as when a match is clicked) must not reach a form that reacts to changes.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-picker] input[type=search]")) {
      event.stopPropagation();
    }
  }, true);

  // Typing a new search clears a previous choice so a stale id is never submitted.
  document.addEventListener("input", function (event) {
    var search = event.target.closest("[data-picker] input[type=search]");
    if (!search) return;
    var picker = search.closest("[data-picker]");
    var chosen = picker.querySelector("input[type=hidden]");
    if (chosen.value) {
      chosen.value = "";
      delete chosen.dataset.inNetwork;
      chosen.dispatchEvent(new Event("change", { bubbles: true }));
    }
    search.classList.remove("is-valid");
  });

  // "Why out of network" is asked only where it applies: a referral sent out (the direction
  // chosen, or the refer-out form, which has none) to a partner not known to be in network.
  // Shown whenever the server asked for it; without JavaScript it is always there.
  function showNetworkReason(form) {
    var box = form.querySelector("#div_id_out_of_network_reason");
    if (!box) return;
    if (box.querySelector(".is-invalid")) {
      box.hidden = false;
      return;
    }
    var direction = form.querySelector("select[name=direction]");
    var chosen = form.querySelector("[data-picker] input[type=hidden][name=provider]");
    var outbound = !direction || direction.value === "outbound";
    box.hidden = !outbound || (chosen !== null && chosen.dataset.inNetwork === "true");
  }
  document.addEventListener("change", function (event) {
    var form = event.target.form || (event.target.closest && event.target.closest("form"));
    if (form) showNetworkReason(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(showNetworkReason);
  });

  // A faxed or scanned document chosen for a new referral is shown beside the form, so the
  // coordinator types the referral from it. It never leaves the browser until the form is sent.
  function showDocument(pane, blob, name) {
    if (pane.dataset.url) URL.revokeObjectURL(pane.dataset.url);
    var url = URL.createObjectURL(blob);
    pane.dataset.url = url;
    var shown;
    if (blob.type === "application/pdf") {
      shown = document.createElement("iframe");
      shown.title = "Preview of " + name;
    } else if (/^image\/(png|jpeg)$/.test(blob.type)) {
      shown = document.createElement("img");
      shown.alt = "Preview of " + name;
      shown.className = "img-fluid";
    } else {
      shown = document.createElement("p");
      shown.className = "small text-body-secondary mb-0";
      shown.textContent = name + " cannot be shown here (a TIFF, say); it is attached all the same.";
      pane.replaceChildren(shown);
      return;
    }
    shown.src = url;
    shown.dataset.previewOf = name;
    pane.replaceChildren(shown);
  }

  document.addEventListener("change", function (event) {
    var input = event.target.closest("input[type=file][data-preview]");
    if (!input) return;
    var pane = document.getElementById(input.dataset.preview);
    var file = input.files[0];
    if (pane && file) showDocument(pane, file, file.name);
  });

  // A form that came back (a typo, a possible duplicate) keeps its documents on the server:
  // the first one kept is fetched from there and shown beside the form again.
  document.addEventListener("DOMContentLoaded", function () {
    var input = document.querySelector("input[type=file][data-preview]");
    var kept = input && input.form && input.form.querySelector("[data-kept-preview]");
    var pane = input && document.getElementById(input.dataset.preview);
    if (!kept || !pane) return;
    fetch(kept.dataset.keptPreview, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.blob();
      })
      .then(function (blob) {
        if (!input.files.length) showDocument(pane, blob, kept.dataset.keptName);
      })
      .catch(function () { /* the list still names it; the preview is a convenience */ });
  });

  // A form marked data-confirm asks before it is sent (an event handler, not an inline
  // onsubmit attribute, which the Content-Security-Policy refuses to run). It listens in the
  // capture phase and stops a refused submit there: htmx's own listener on the form would
  // otherwise send it first, whatever the answer.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // A form posted the ordinary way (not by htmx, whose forms disable their own button) is
  // sent once: a second tap while the next page loads would post it again (two tasks, two
  // offices). Sending is allowed again after a few seconds, in case the answer was a file
  // that left the page where it was, and when the page comes back from the history.
  var SEND_AGAIN_AFTER_MS = 4000;
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.matches || form.method !== "post") return;
    if (form.closest("[hx-post],[hx-put],[hx-patch],[hx-delete],[hx-get],[hx-boost]")) return;
    if (Date.now() - Number(form.dataset.sentAt || 0) < SEND_AGAIN_AFTER_MS) {
      event.preventDefault();
      return;
    }
    form.dataset.sentAt = String(Date.now());
  });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent-at]").forEach(function (form) {
      delete form.dataset.sentAt;
    });
  });

  // A step's form opened from its <details> closes again from its own Close button.
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-details]");
    if (!close) return;
    var details = close.closest("details");
    details.open = false;
    details.querySelector("summary").focus();
  });

  // A request that fails (offline, server error) says so instead of failing silently.
  document.body.addEventListener("htmx:sendError", function () {
    showProblem("The connection dropped; nothing was saved. Please try again.");
  });
  document.body.addEventListener("htmx:responseError", function (event) {
    showProblem("The server could not do that (" + event.detail.xhr.status + "). Please try again.");
  });
  document.body.addEventListener("htmx:timeout", function () {
    showProblem("The server did not answer in time. Please try again.");
  });

  function showProblem(text) {
    var box = document.getElementById("htmx-problem");
    if (!box) {
      box = document.createElement("div");
      box.id = "htmx-problem";
      box.className = "alert alert-danger position-fixed bottom-0 start-50 translate-middle-x m-3";
      box.setAttribute("role", "alert");
      document.body.appendChild(box);
    }
    box.textContent = text;
  }
  // Drafts: a form marked data-draft-key (which names the user, so a colleague signing in
  // on the same device never gets them) keeps what was typed on this device until the
  // server has saved it, so a dropped connection or a reload in a parking lot loses nothing.
  function draftStoreKey(form) { return "draft:" + form.dataset.draftKey; }

  function draftFields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrfmiddlewaretoken" && el.type !== "hidden" &&
        el.type !== "submit" && el.type !== "button";
    });
  }

  function saveDraft(form) {
    var data = {};
    draftFields(form).forEach(function (el) {
      if (el.type === "checkbox" || el.type === "radio") {
        data[el.name] = data[el.name] || [];
        if (el.checked) data[el.name].push(el.value);
      } else {
        data[el.name] = el.value;
      }
    });
    try { localStorage.setItem(draftStoreKey(form), JSON.stringify(data)); } catch (e) { /* storage full or blocked: the form itself still holds the text */ }
  }

  function restoreDraft(form) {
    var raw = null;
    try { raw = localStorage.getItem(draftStoreKey(form)); } catch (e) { return; }
    if (!raw) return;
    var data;
    try { data = JSON.parse(raw); } catch (e) { return; }
    draftFields(form).forEach(function (el) {
      if (!(el.name in data)) return;
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = data[el.name].indexOf(el.value) !== -1;
      } else {
        el.value = data[el.name];
      }
    });
    var notice = form.querySelector("[data-draft-notice]");
    if (notice) notice.classList.remove("d-none");
  }

  function initDrafts(root) {
    var forms = root.querySelectorAll ? root.querySelectorAll("form[data-draft-key]") : [];
    if (root.matches && root.matches("form[data-draft-key]")) forms = [root];
    Array.prototype.forEach.call(forms, function (form) {
      if (form.hasAttribute("data-draft-restore")) restoreDraft(form);
    });
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form[data-draft-key]");
    if (form) saveDraft(form);
  });
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-draft-key]");
    if (form) saveDraft(form);
  });

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form[data-draft-key]");
    if (!form) return;
    saveDraft(form);
    var notice = form.querySelector("[data-offline-notice]");
    if (notice) notice.classList.add("d-none");
  });
  // A failed save does not swap anything (htmx swaps no 4xx/5xx answer), so the typed
  // text stays; say it was not saved, and why, and offer to retry right there.
  function showNotSaved(event, reason, title) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form[data-draft-key]");
    if (!form) return;
    var notice = form.querySelector("[data-offline-notice]");
    if (!notice) return;
    var why = notice.querySelector("[data-offline-reason]");
    if (why) why.textContent = reason;
    var heading = notice.querySelector("[data-offline-title]");
    if (heading) heading.textContent = title || "Not saved:";
    notice.classList.remove("d-none");
    notice.scrollIntoView({ block: "nearest" });
  }
  document.body.addEventListener("htmx:sendError", function (event) {
    showNotSaved(event, "the connection dropped.");
  });
  document.body.addEventListener("htmx:timeout", function (event) {
    // The save may have reached the server; a retry is safe (a visit is logged once).
    showNotSaved(event, "the server did not answer in time. Retrying is safe: a visit is never logged twice.", "Maybe not saved:");
  });
  document.body.addEventListener("htmx:responseError", function (event) {
    showNotSaved(event, "the server could not save it (error " + event.detail.xhr.status + ").");
  });
  // Saved: the server answers with a redirect to the plan; only then drop the draft.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form[data-draft-key]");
    var xhr = event.detail.xhr;
    // (htmx follows HX-Redirect before it sets detail.successful, so read the status.)
    if (form && xhr && xhr.status >= 200 && xhr.status < 300 && xhr.getResponseHeader("HX-Redirect")) {
      try { localStorage.removeItem(draftStoreKey(form)); } catch (e) { /* nothing stored */ }
    }
  });

  initDrafts(document);

  // A form sent back in place with an error (htmx swaps the whole form, the focused Save
  // button with it) takes the focus to the first field to correct: left on the page's
  // body, a keyboard or screen-reader user starts again from the top, and on a phone the
  // field in error may be off screen.
  var FIELD_IN_ERROR = "input.is-invalid, select.is-invalid, textarea.is-invalid, [aria-invalid=true]";
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target;
    if (!root || !root.querySelector) return;
    var active = document.activeElement;
    if (active && active !== document.body && document.body.contains(active)) return;
    var field = root.matches(FIELD_IN_ERROR) ? root : root.querySelector(FIELD_IN_ERROR);
    if (field) field.focus();
  });

  // Copy buttons: data-copy-target names the input whose value goes to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.dataset.copyTarget);
    input.select();
    if (navigator.clipboard) {
      navigator.clipboard.writeText(input.value).then(function () { button.textContent = "Copied"; }, function () { /* selected for manual copy */ });
    }
  });
})();

// Copy buttons: <button data-copy="#input-id"> copies that input's value.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    if (!input) return;
    input.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {});
    } else {
      // Plain http (a development machine): the older API still copies the selection.
      try { document.execCommand("copy"); done(); } catch (error) { /* selected: copy by hand */ }
    }
  });

  // A shared patient patterns file named as CMS names it ("…-2014-days180.txt") fills in
  // its year and window, still editable; the server reads the name the same way when they
  // are left empty. What an earlier file's name filled in goes with that file.
  document.addEventListener("change", function (event) {
    var input = event.target.closest("input[type=file][data-year-window]");
    if (!input || !input.files.length) return;
    var found = /(20\d\d)[-_](?:20\d\d[-_])?days(\d+)/i.exec(input.files[0].name);
    [["year", 1], ["window_days", 2]].forEach(function (pair) {
      var field = input.form.querySelector("[name=" + pair[0] + "]");
      if (!field || (field.value && field.value !== field.dataset.guessed)) return;
      var value = found ? found[pair[1]] : "";
      if (field.tagName === "SELECT" && !field.querySelector('option[value="' + value + '"]')) {
        value = "";  // a window CMS does not publish: the server says so
      }
      field.value = value;
      field.dataset.guessed = value;
    });
  });
})();
