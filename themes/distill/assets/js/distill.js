/* circuitpress — hover cards for citations and footnotes.
 *
 * The page already works without this file: `a.cp-cite` and `sup.cp-fn-ref a` are links that
 * jump to the reference or footnote in the appendix. This script adds a card with the entry's
 * text, shown on hover or keyboard focus, near the anchor, and dismissed on leave or Escape.
 */
(function () {
  "use strict";

  var SHOW_DELAY = 120; // ms: passing the pointer over a link should not flash a card
  var HIDE_DELAY = 200; // ms: time to move the pointer from the link into the card
  var card = null;
  var current = null;
  var showTimer = 0;
  var hideTimer = 0;

  function ensureCard() {
    if (card) return card;
    card = document.createElement("div");
    card.className = "cp-card";
    card.id = "cp-hover-card";
    card.setAttribute("role", "tooltip");
    card.hidden = true;
    card.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
    card.addEventListener("mouseleave", scheduleHide);
    document.body.appendChild(card);
    return card;
  }

  function entryById(id) {
    if (!id) return null;
    return document.getElementById(id) || document.getElementById("ref-" + id);
  }

  /* The appendix entries a trigger points at: data-refs for citations (ids, space or comma
     separated), else the fragment of its href (footnotes). */
  function entriesFor(anchor) {
    var ids = (anchor.getAttribute("data-refs") || "").split(/[\s,]+/).filter(Boolean);
    if (!ids.length) {
      var href = anchor.getAttribute("href") || "";
      if (href.charAt(0) === "#") ids = [decodeURIComponent(href.slice(1))];
    }
    var out = [];
    ids.forEach(function (id) {
      var el = entryById(id);
      if (el) out.push(el);
    });
    return out;
  }

  function fill(anchor, entries) {
    var c = ensureCard();
    c.textContent = "";
    var list = document.createElement(entries.length > 1 || anchor.matches("a.cp-cite") ? "ol" : "div");
    entries.forEach(function (entry) {
      var item = document.createElement(list.tagName === "OL" ? "li" : "div");
      if (entry.value) item.value = entry.value;
      // Cloned, so ids inside the entry would repeat: drop them.
      Array.prototype.forEach.call(entry.childNodes, function (node) {
        item.appendChild(node.cloneNode(true));
      });
      Array.prototype.forEach.call(item.querySelectorAll("[id]"), function (el) {
        el.removeAttribute("id");
      });
      list.appendChild(item);
    });
    c.appendChild(list);
  }

  function place(anchor) {
    var c = card;
    var r = anchor.getBoundingClientRect();
    var width = c.offsetWidth;
    var height = c.offsetHeight;
    var viewW = document.documentElement.clientWidth;
    var left = Math.min(Math.max(8, r.left + r.width / 2 - width / 2), viewW - width - 8);
    var below = r.bottom + 8;
    var viewH = window.innerHeight;
    // Below the link unless it would run past the window's bottom and there is more room
    // above; then above it, never past the window's top.
    var top = below + height > viewH && r.top - 8 > viewH - below ? Math.max(8, r.top - height - 8) : below;
    c.style.left = Math.max(8, left) + window.scrollX + "px";
    c.style.top = top + window.scrollY + "px";
  }

  function show(anchor) {
    var entries = entriesFor(anchor);
    if (!entries.length) return;
    clearTimeout(hideTimer);
    fill(anchor, entries);
    card.hidden = false;
    place(anchor);
    if (current && current !== anchor) current.removeAttribute("aria-describedby");
    current = anchor;
    anchor.setAttribute("aria-describedby", card.id);
  }

  function hide() {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    if (card) card.hidden = true;
    if (current) current.removeAttribute("aria-describedby");
    current = null;
  }

  function scheduleHide() {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, HIDE_DELAY);
  }

  function trigger(target) {
    return target && target.closest ? target.closest("a.cp-cite, sup.cp-fn-ref a") : null;
  }

  document.addEventListener("mouseover", function (event) {
    var anchor = trigger(event.target);
    if (!anchor) return;
    clearTimeout(hideTimer);
    if (anchor === current) return;
    clearTimeout(showTimer);
    showTimer = setTimeout(function () { show(anchor); }, SHOW_DELAY);
  });

  document.addEventListener("mouseout", function (event) {
    var anchor = trigger(event.target);
    if (anchor && !anchor.contains(event.relatedTarget)) scheduleHide();
  });

  document.addEventListener("focusin", function (event) {
    var anchor = trigger(event.target);
    if (anchor) show(anchor);
  });

  document.addEventListener("focusout", function (event) {
    if (trigger(event.target)) scheduleHide();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && card && !card.hidden) hide();
  });

  window.addEventListener("resize", function () {
    if (current && card && !card.hidden) place(current);
  });
})();
