// Referral CRM front-end behaviour: small and dependency-free besides htmx and Bootstrap.
(function () {
  "use strict";

  // Provider picker: choosing a match fills the hidden input and the search box.
  document.addEventListener("click", function (event) {
    var option = event.target.closest("[data-picker-choice]");
    if (!option) return;
    event.preventDefault();
    var picker = option.closest("[data-picker]");
    picker.querySelector("input[type=hidden]").value = option.dataset.pickerChoice;
    var search = picker.querySelector("input[type=search]");
    search.value = option.dataset.pickerLabel;
    picker.querySelector("[data-picker-options]").innerHTML = "";
    search.classList.add("is-valid");
  });

  // Typing a new search clears a previous choice so a stale id is never submitted.
  document.addEventListener("input", function (event) {
    var search = event.target.closest("[data-picker] input[type=search]");
    if (!search) return;
    var picker = search.closest("[data-picker]");
    picker.querySelector("input[type=hidden]").value = "";
    search.classList.remove("is-valid");
  });

  // A request that fails (offline, server error) says so instead of failing silently.
  document.body.addEventListener("htmx:sendError", function () {
    showProblem("The connection dropped; nothing was saved. Please try again.");
  });
  document.body.addEventListener("htmx:responseError", function (event) {
    showProblem("The server could not do that (" + event.detail.xhr.status + "). Please try again.");
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
})();
