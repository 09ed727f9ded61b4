// mdp web UI: remembers the server token for this tab, and draws the KPI charts with uPlot.
(function () {
  "use strict";

  // Token fields: prefilled from this tab's session storage, saved on submit (never sent elsewhere).
  document.querySelectorAll("input.token").forEach(function (input) {
    var saved = window.sessionStorage.getItem("mdp-token");
    if (saved) input.value = saved;
    if (input.form) {
      input.form.addEventListener("submit", function () {
        window.sessionStorage.setItem("mdp-token", input.value);
      });
    }
  });

  var source = document.getElementById("kpi-data");
  if (!source || typeof window.uPlot === "undefined") return;
  var data = JSON.parse(source.textContent);
  var colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  var xs = data.dates.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  var charts = [];

  document.querySelectorAll(".chart[data-metric]").forEach(function (el) {
    var metric = el.getAttribute("data-metric");
    var perPlatform = data.series[metric] || {};
    var series = [{}];
    var columns = [xs];
    var points = 0;
    data.platforms.forEach(function (platform, i) {
      var values = perPlatform[platform] || [];
      values.forEach(function (v) { if (v !== null && v !== undefined) points += 1; });
      columns.push(values);
      series.push({
        label: platform,
        stroke: colors[i % colors.length],
        width: 2,
        value: function (u, v) { return v == null ? "–" : v.toLocaleString(undefined, { maximumFractionDigits: 2 }); }
      });
    });
    var options = {
      title: el.getAttribute("data-title") || metric,
      width: Math.max(el.clientWidth || 0, 320),
      height: 260,
      series: series,
      scales: { x: { time: true } },
      axes: [{}, { size: 70 }]
    };
    var chart = new window.uPlot(options, columns, el);
    charts.push({ chart: chart, el: el });
    // Tests and users can see that data was drawn.
    el.setAttribute("data-points", String(points));
  });

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.chart.setSize({ width: Math.max(c.el.clientWidth, 320), height: 260 }); });
  });
})();
