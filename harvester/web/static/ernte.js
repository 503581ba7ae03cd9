// ernte search page: the only script. The page works without it; with it, ticking a facet or
// changing the sort order submits the search form at once.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-autosubmit]").forEach(function (element) {
    element.addEventListener("change", function () {
      var form = element.form;
      if (form) {
        if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      }
    });
  });
  document.querySelectorAll("button.apply").forEach(function (button) {
    button.hidden = true;  // facets submit themselves
  });
});
