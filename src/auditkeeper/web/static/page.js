// auditkeeper's log viewer: a click anywhere in a table row opens the row's log.
// Every row already holds a real link to it (reachable with Tab, opened with Enter);
// this only makes the rest of the row a larger target for the mouse and touch.
"use strict";

document.addEventListener("click", function (event) {
  var target = event.target;
  if (!(target instanceof Element) || target.closest("a, button, input, select, label")) {
    return;
  }
  var row = target.closest("tr[data-href]");
  if (row === null || String(window.getSelection()) !== "") {
    return; // not a row, or the user is selecting text to copy
  }
  window.location.assign(row.getAttribute("data-href"));
});
