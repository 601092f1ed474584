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

  function show(figure, target, build) {
    var card = figure.querySelector(".cp-circuit-card");
    if (!card) return;
    card.textContent = "";
    build(card);
    card.hidden = false;
    var box = figure.getBoundingClientRect();
    var r = target.getBoundingClientRect();
    card.style.left = Math.max(0, r.left - box.left + r.width / 2 - 90) + "px";
    card.style.top = (r.bottom - box.top + 6) + "px";
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
      note.textContent = (w >= 0 ? "excitatory" : "inhibitory") + ", strength " + edge.getAttribute("data-norm");
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
          img.width = 48;
          img.height = 48;
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

  function start() { document.querySelectorAll("figure.cp-circuit").forEach(init); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
