/* Circuit diagrams (circuitpress): hover or focus an edge to see its kernel, hover or focus a
 * unit to see its name and top dataset examples; clicking a unit follows its link (plain SVG
 * <a>, so it also works with JavaScript off). No dependencies, no network. */
(function () {
  "use strict";

  function color(v, scale) {
    var t = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
    var end = t >= 0 ? [178, 24, 43] : [33, 102, 172];
    var a = Math.abs(t);
    return "rgb(" + end.map(function (c) { return Math.round(255 + (c - 255) * a); }).join(",") + ")";
  }

  function kernelGrid(kernel, scale) {
    var grid = document.createElement("div");
    grid.className = "cp-card-kernel";
    var cols = kernel.length ? kernel[0].length : 0;
    grid.style.gridTemplateColumns = "repeat(" + cols + ", 1fr)";
    kernel.forEach(function (row) {
      row.forEach(function (v) {
        var cell = document.createElement("span");
        cell.style.background = color(v, scale);
        cell.title = String(v);
        grid.appendChild(cell);
      });
    });
    return grid;
  }

  var MARGIN = 8; // px kept between a card and the window's edge

  function overlap(a, b) {
    var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 0 && h > 0 ? w * h : 0;
  }

  /* The card's place in window coordinates: below, above, right or left of the target,
     each moved inside the window, whichever covers least of the other units' pictures (and
     of the target); ties go to the earlier. A card taller than the window starts at its top. */
  function bestPlace(figure, anchor, width, height, skip) {
    var viewW = document.documentElement.clientWidth;
    var viewH = window.innerHeight;
    var gap = 6;
    var cx = (anchor.left + anchor.right) / 2;
    var cy = (anchor.top + anchor.bottom) / 2;
    var candidates = [
      [cx - width / 2, anchor.bottom + gap],
      [cx - width / 2, anchor.top - gap - height],
      [anchor.right + gap, cy - height / 2],
      [anchor.left - gap - width, cy - height / 2]
    ];
    var others = [];
    figure.querySelectorAll(".cp-node").forEach(function (node) {
      if (node === skip) return;
      var r = node.getBoundingClientRect();
      if (r.width && r.height) others.push(r);
    });
    var best = null;
    candidates.forEach(function (c) {
      var left = Math.max(MARGIN, Math.min(c[0], viewW - width - MARGIN));
      var top = Math.max(MARGIN, Math.min(c[1], viewH - height - MARGIN));
      var box = { left: left, top: top, right: left + width, bottom: top + height };
      var cost = 4 * overlap(box, anchor);
      others.forEach(function (r) { cost += overlap(box, r); });
      if (!best || cost < best.cost) best = { left: left, top: top, cost: cost };
    });
    return best;
  }

  /* An edge's card goes beside the middle of its curve, not around its whole bounding box. */
  function anchorOf(target) {
    var line = target.querySelector && target.querySelector(".cp-edge-line");
    if (line && line.getTotalLength && line.getScreenCTM()) {
      var p = line.getPointAtLength(line.getTotalLength() / 2).matrixTransform(line.getScreenCTM());
      return { left: p.x - 4, right: p.x + 4, top: p.y - 4, bottom: p.y + 4 };
    }
    var frame = target.querySelector && target.querySelector(".cp-node-frame");
    return (frame || target).getBoundingClientRect();
  }

  function show(figure, target, build) {
    var card = figure.querySelector(".cp-circuit-card");
    if (!card) return;
    card.textContent = "";
    build(card);
    card.style.left = "0px";
    card.style.top = "0px";
    card.hidden = false;
    var place = bestPlace(figure, anchorOf(target), card.offsetWidth, card.offsetHeight, target);
    // The card is positioned in the figure (position: relative): window coordinates minus the
    // figure's, so it stays put when the page scrolls.
    var box = figure.getBoundingClientRect();
    card.style.left = place.left - box.left + "px";
    card.style.top = place.top - box.top + "px";
  }

  function hide(figure) {
    var card = figure.querySelector(".cp-circuit-card");
    if (card) card.hidden = true;
  }

  function edgeCard(edge) {
    return function (card) {
      var title = document.createElement("p");
      title.className = "cp-card-title";
      title.textContent = edge.getAttribute("data-src") + " → " + edge.getAttribute("data-dst");
      card.appendChild(title);
      var kernel = [];
      try { kernel = JSON.parse(edge.getAttribute("data-kernel") || "[]"); } catch (e) { kernel = []; }
      card.appendChild(kernelGrid(kernel, parseFloat(edge.getAttribute("data-scale")) || 1));
      var note = document.createElement("p");
      var w = parseFloat(edge.getAttribute("data-weight"));
      // An edge may say what its strength is (a head's composition scores); a weight is
      // excitatory or inhibitory.
      note.textContent = edge.getAttribute("data-note") ||
        (w >= 0 ? "excitatory" : "inhibitory") + ", strength " + edge.getAttribute("data-norm");
      card.appendChild(note);
      card.setAttribute("data-showing", "edge");
    };
  }

  function nodeCard(node) {
    return function (card) {
      var title = document.createElement("p");
      title.className = "cp-card-title";
      title.textContent = node.getAttribute("data-name");
      card.appendChild(title);
      var urls = (node.getAttribute("data-examples") || "").split(" ").filter(Boolean);
      if (urls.length) {
        var row = document.createElement("div");
        row.className = "cp-card-examples";
        urls.forEach(function (u) {
          var img = document.createElement("img");
          img.src = u;
          img.alt = "dataset example";
          img.width = 40;
          img.height = 40;
          row.appendChild(img);
        });
        card.appendChild(row);
      }
      card.setAttribute("data-showing", "node");
    };
  }

  function init(figure) {
    figure.querySelectorAll(".cp-edge").forEach(function (edge) {
      var open = function () { figure.classList.add("cp-focus-edge"); edge.classList.add("cp-active"); show(figure, edge, edgeCard(edge)); };
      var close = function () { edge.classList.remove("cp-active"); figure.classList.remove("cp-focus-edge"); hide(figure); };
      edge.addEventListener("mouseenter", open);
      edge.addEventListener("focus", open);
      edge.addEventListener("mouseleave", close);
      edge.addEventListener("blur", close);
    });
    figure.querySelectorAll(".cp-node").forEach(function (node) {
      var open = function () {
        var id = node.getAttribute("data-node");
        figure.querySelectorAll(".cp-edge").forEach(function (e) {
          var on = e.getAttribute("data-src") === id || e.getAttribute("data-dst") === id;
          e.classList.toggle("cp-dim", !on);
        });
        show(figure, node, nodeCard(node));
      };
      var close = function () {
        figure.querySelectorAll(".cp-edge").forEach(function (e) { e.classList.remove("cp-dim"); });
        hide(figure);
      };
      node.addEventListener("mouseenter", open);
      node.addEventListener("focus", open);
      node.addEventListener("mouseleave", close);
      node.addEventListener("blur", close);
    });
    figure.addEventListener("keydown", function (ev) { if (ev.key === "Escape") hide(figure); });
  }

  /* The tall layout wherever the column is narrower than the wide one's data-fits step (the
     stylesheet alone knows the column's width only on phones). */
  function fit(figure) {
    var box = figure.querySelector(".cp-circuit-diagram");
    var wide = box && box.querySelector(".cp-circuit-wide[data-fits]");
    if (!wide) return;
    var step = wide.getAttribute("data-fits");
    var measure = function () {
      box.classList.toggle("cp-circuit-narrow", step === "never" || box.clientWidth < parseFloat(step));
    };
    measure();
    if (window.ResizeObserver) new ResizeObserver(measure).observe(box);
    else window.addEventListener("resize", measure);
  }

  function start() {
    document.querySelectorAll("figure.cp-circuit").forEach(function (figure) {
      fit(figure);
      init(figure);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
