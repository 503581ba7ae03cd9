// ernte search page: the only script. The page works without it; with it, ticking a facet or
// changing the sort order submits the search form at once, and after the new page has loaded
// the keyboard focus is back on the control that was used (not at the top of the page).
"use strict";
var FOCUS_KEY = "ernte-focus";

function controlKey(element) {
  return element.type === "checkbox" ? "value:" + element.value : "id:" + element.id;
}

document.addEventListener("DOMContentLoaded", function () {
  var controls = Array.prototype.slice.call(document.querySelectorAll("[data-autosubmit]"));
  controls.forEach(function (element) {
    element.addEventListener("change", function () {
      var form = element.form;
      if (!form) { return; }
      try { window.sessionStorage.setItem(FOCUS_KEY, controlKey(element)); } catch (e) { /* private mode */ }
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    });
  });
  var wanted = null;
  try {
    wanted = window.sessionStorage.getItem(FOCUS_KEY);
    window.sessionStorage.removeItem(FOCUS_KEY);
  } catch (e) { /* private mode */ }
  if (wanted) {
    var match = controls.filter(function (element) { return controlKey(element) === wanted; })[0];
    if (match) { match.focus(); }
  }
  document.querySelectorAll("button.apply").forEach(function (button) {
    button.hidden = true;  // facets submit themselves
  });
});
