/* circuitpress — hover cards of unit chips.
 *
 * Without this script the card still shows on :hover and :focus-within (units.css). The
 * script adds what CSS cannot: a short delay (a pointer passing over a chip does not flash a
 * card), a grace period to move into the card, keeping the card inside the viewport (above
 * the chip near the window's bottom, shifted sideways near its edges), and
 * Escape to dismiss. It marks the page with .cp-js-units so CSS hands showing over to it.
 */
(function () {
  "use strict";
  var SHOW_DELAY = 120;
  var HIDE_DELAY = 200;
  var open = null;
  var timer = null;
  var counter = 0;

  function show(unit) {
    if (open && open !== unit) hide(open);
    open = unit;
    unit.classList.add("cp-open");
    var card = unit.querySelector(".cp-unit-card");
    var chip = unit.querySelector(".cp-unit-chip");
    if (chip) chip.setAttribute("aria-expanded", "true");
    if (card) place(unit, card);
  }

  /* Inside the window: below the chip when it fits there, else above it (else on the side
     with more room); shifted sideways by as much as it would stick out. Inline styles, reset
     on every showing, so the stylesheet's own placement is the starting point. */
  function place(unit, card) {
    var margin = 4;
    card.classList.remove("cp-flip");
    card.style.top = "";
    card.style.bottom = "";
    card.style.left = "";
    card.style.right = "";
    var chip = unit.getBoundingClientRect();
    var rect = card.getBoundingClientRect();
    var viewW = document.documentElement.clientWidth;
    var viewH = window.innerHeight;
    var below = viewH - chip.bottom - margin;
    var above = chip.top - margin;
    if (rect.bottom > viewH - margin && above > below) {
      card.style.top = "auto";
      card.style.bottom = "calc(100% + 4px)";
    }
    var shift = 0;
    if (rect.right > viewW - margin) shift = viewW - margin - rect.right;
    if (rect.left + shift < margin) shift = margin - rect.left;
    if (shift) card.style.left = shift + "px";
  }

  function hide(unit) {
    unit.classList.remove("cp-open");
    var chip = unit.querySelector(".cp-unit-chip");
    if (chip) chip.setAttribute("aria-expanded", "false");
    if (open === unit) open = null;
  }

  function later(fn, ms) {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  }

  function init() {
    var units = document.querySelectorAll(".cp-unit");
    if (!units.length) return;
    document.documentElement.classList.add("cp-js-units");
    Array.prototype.forEach.call(units, function (unit) {
      var chip = unit.querySelector(".cp-unit-chip");
      var card = unit.querySelector(".cp-unit-card");
      if (chip && card) {
        card.id = card.id || "cp-unit-card-" + (++counter);
        chip.setAttribute("aria-describedby", card.id);
        chip.setAttribute("aria-expanded", "false");
      }
      unit.addEventListener("mouseenter", function () { later(function () { show(unit); }, SHOW_DELAY); });
      unit.addEventListener("mouseleave", function () { later(function () { hide(unit); }, HIDE_DELAY); });
      unit.addEventListener("focusin", function () { clearTimeout(timer); show(unit); });
      unit.addEventListener("focusout", function (event) {
        if (!unit.contains(event.relatedTarget)) hide(unit);
      });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && open) hide(open);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
