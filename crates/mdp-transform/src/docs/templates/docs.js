// mdp data docs: the index's filter, the lineage graph's zoom and edge highlighting, SQL tabs.
(function () {
  "use strict";

  // Filter: hide list items and table rows that do not match; dim graph nodes that do not.
  var input = document.getElementById("filter");
  if (input) {
    var items = Array.prototype.slice.call(document.querySelectorAll(".item"));
    var sections = Array.prototype.slice.call(document.querySelectorAll("[data-section]"));
    var count = document.getElementById("filter-count");
    var apply = function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0, matched = {};
      items.forEach(function (el) {
        var text = el.getAttribute("data-search") || "";
        var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
        el.classList.toggle("hidden", !ok);
        if (ok) { shown++; var id = el.getAttribute("data-id"); if (id) matched[id] = true; }
      });
      sections.forEach(function (s) {
        s.classList.toggle("hidden", words.length > 0 && !s.querySelector(".item:not(.hidden)"));
      });
      document.querySelectorAll("svg.mdp-lineage g.node").forEach(function (g) {
        g.classList.toggle("dim", words.length > 0 && !matched[g.getAttribute("data-id")]);
      });
      if (count) count.textContent = words.length ? shown + " of " + items.length : "";
    };
    input.addEventListener("input", apply);
    if (location.hash.indexOf("#q=") === 0) { input.value = decodeURIComponent(location.hash.slice(3)); apply(); }
  }

  // Zoom of the big graph: fit to the frame, 50 %, 100 %.
  document.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      var frame = button.closest(".card").querySelector(".graph-frame");
      var svg = frame && frame.querySelector("svg");
      if (!svg) return;
      var box = svg.viewBox.baseVal, zoom = button.getAttribute("data-zoom");
      var scale = zoom === "fit" ? Math.min(1, (frame.clientWidth - 2) / box.width) : parseFloat(zoom);
      svg.setAttribute("width", Math.round(box.width * scale));
      svg.setAttribute("height", Math.round(box.height * scale));
    });
  });

  // Hovering a node highlights its edges.
  document.querySelectorAll("svg.mdp-lineage").forEach(function (svg) {
    var edges = Array.prototype.slice.call(svg.querySelectorAll(".edge"));
    svg.querySelectorAll("g.node").forEach(function (g) {
      var id = g.getAttribute("data-id");
      g.addEventListener("mouseenter", function () {
        edges.forEach(function (e) {
          if (e.getAttribute("data-from") === id || e.getAttribute("data-to") === id) e.classList.add("hot");
        });
      });
      g.addEventListener("mouseleave", function () { edges.forEach(function (e) { e.classList.remove("hot"); }); });
    });
  });

  // Compiled / source SQL tabs.
  document.querySelectorAll("[data-tabs]").forEach(function (tabs) {
    var card = tabs.parentNode;
    tabs.querySelectorAll("[data-tab]").forEach(function (button) {
      button.addEventListener("click", function () {
        tabs.querySelectorAll("[data-tab]").forEach(function (b) { b.classList.toggle("on", b === button); });
        card.querySelectorAll("[data-pane]").forEach(function (p) {
          p.hidden = p.getAttribute("data-pane") !== button.getAttribute("data-tab");
        });
      });
    });
  });
})();
