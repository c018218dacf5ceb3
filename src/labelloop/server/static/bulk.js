// The bulk labelling page: "select all" checks or unchecks every previewed item; the count
// shows how many are checked, and Apply is disabled while none is.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  var count = document.getElementById("checked-count");
  var submit = document.getElementById("bulk-submit");
  if (!all) return;
  var picks = Array.prototype.slice.call(document.querySelectorAll("input.pick"));

  function update() {
    var n = picks.filter(function (p) { return p.checked; }).length;
    all.checked = n === picks.length;
    all.indeterminate = n > 0 && n < picks.length;
    if (count) count.textContent = n + " of " + picks.length + " checked";
    if (submit) submit.disabled = n === 0;
  }

  all.addEventListener("change", function () {
    picks.forEach(function (p) { p.checked = all.checked; });
    update();
  });
  picks.forEach(function (p) { p.addEventListener("change", update); });
  update();
})();
