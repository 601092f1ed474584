// circuitpress — attention patterns: hovering (or focusing) a query token marks the key tokens
// it attends to most. The pattern itself is in the HTML (every cell has data-weight).
(function () {
  "use strict";
  function mark(table, row) {
    table.querySelectorAll(".cp-attended").forEach(function (th) {
      th.classList.remove("cp-attended");
    });
    table.querySelectorAll("tr.cp-active").forEach(function (tr) {
      tr.classList.remove("cp-active");
    });
    if (!row) return;
    row.classList.add("cp-active");
    var heads = table.querySelectorAll("thead th");
    var cells = row.querySelectorAll("td[data-weight]");
    cells.forEach(function (td) {
      var w = parseFloat(td.getAttribute("data-weight"));
      var k = parseInt(td.getAttribute("data-key"), 10);
      if (w >= 0.2 && heads[k + 1]) heads[k + 1].classList.add("cp-attended");
    });
  }
  document.querySelectorAll("table.cp-attention").forEach(function (table) {
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var th = row.querySelector("th");
      if (th) th.tabIndex = 0;
      row.addEventListener("mouseenter", function () { mark(table, row); });
      row.addEventListener("focusin", function () { mark(table, row); });
    });
    table.addEventListener("mouseleave", function () { mark(table, null); });
  });
})();
