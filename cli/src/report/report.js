// Draws the tripline report from the JSON in #tripline-data. Everything from the logs is
// put into the page as text (text nodes, attribute values), never parsed as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tripline-data").textContent);
  var root = document.getElementById("report");
  var SVGNS = "http://www.w3.org/2000/svg";
  var SEVERITIES = ["critical", "high", "medium", "low", "informational"];
  var SEV_RANK = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
  var SEV_COLOR = { critical: "#67000d", high: "#cb181d", medium: "#f16913", low: "#4292c6", informational: "#969696" };

  function add(node, children) {
    if (!Array.isArray(children)) children = [children];
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) add(node, c);
      else if (typeof c === "object") node.appendChild(c);
      else node.appendChild(document.createTextNode(String(c)));
    }
    return node;
  }
  // el("td", {class: "num", title: "..."}, child, ...): attributes by setAttribute, so a
  // value is only ever an attribute's value.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    }
    return add(node, Array.prototype.slice.call(arguments, 2));
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    return add(node, Array.prototype.slice.call(arguments, 2));
  }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function plural(n, one, many) { return fmt(n) + " " + (n === 1 ? one : many); }
  function parentOf(id) { return id.split(".")[0]; }
  function techName(id) { var t = data.techniques[id]; return t ? t.name : ""; }
  function sevBadge(s) { return el("span", { class: "sev sev-" + s }, s); }
  function capNote(shown, total, what) {
    if (total <= shown) return null;
    return el("p", { class: "note warn" }, fmt(total - shown) + " more " + what +
      " not shown: the page embeds the first " + fmt(shown) + ".");
  }

  // Sequential colour scale on a log axis: 0 -> light, max -> dark.
  function ramp(from, to, value, max) {
    var t = max > 0 ? Math.log(1 + value) / Math.log(1 + max) : 0;
    var c = [0, 1, 2].map(function (i) {
      var a = parseInt(from.substr(1 + 2 * i, 2), 16), b = parseInt(to.substr(1 + 2 * i, 2), 16);
      return Math.round(a + (b - a) * t);
    });
    return { color: "rgb(" + c.join(",") + ")", dark: t > 0.55 };
  }
  var SCALES = {
    observed: { from: "#deebf7", to: "#08306b", label: "events observed" },
    alerts: { from: "#fee0d2", to: "#67000d", label: "alerts" }
  };

  // ---- header and totals -------------------------------------------------------------
  var p = data.parse, totals = data.totals;
  add(root, [
    el("header", null,
      el("h1", null, el("span", null, "tripline"), " report"),
      el("p", null, "Generated " + data.meta.generated + " by tripline " + data.meta.tripline +
        " from " + data.meta.paths.join(", ") + " (" + plural(data.meta.objects, "object", "objects") +
        "); ATT&CK Enterprise v" + data.meta.attack + ".")),
    el("div", { class: "cards" },
      card(fmt(p.records), "records"),
      card(fmt(p.events), "events"),
      card(fmt(p.quarantined + p.objects_quarantined), "quarantined"),
      card(fmt(totals.alerts), "alerts", "alerts"),
      card(fmt(totals.hosts), "hosts"),
      card(fmt(totals.queries), "queries"),
      card(fmt(totals.observed), "techniques observed"),
      card(fmt(totals.alerted), "techniques alerted"),
      severityChart())
  ]);
  function card(value, label, cls) {
    return el("div", { class: "card" + (cls ? " " + cls : "") }, el("b", null, value), el("span", null, label));
  }
  function severityChart() {
    var max = 0;
    SEVERITIES.forEach(function (s) { max = Math.max(max, totals.by_severity[s] || 0); });
    var w = 260, barH = 12, g = svg("svg", { width: w, height: SEVERITIES.length * (barH + 4) + 4, role: "img", "aria-label": "alerts by severity" });
    SEVERITIES.forEach(function (s, i) {
      var n = totals.by_severity[s] || 0, y = 2 + i * (barH + 4);
      var len = max ? Math.max(n ? 2 : 0, Math.round((w - 140) * n / max)) : 0;
      add(g, [
        svg("text", { x: 0, y: y + barH - 2 }, s),
        svg("rect", { x: 90, y: y, width: len, height: barH, rx: 2, fill: SEV_COLOR[s] }),
        svg("text", { x: 94 + len, y: y + barH - 2 }, fmt(n))
      ]);
    });
    return el("div", { class: "card" }, g, el("span", null, "alerts by severity"));
  }

  // ---- ATT&CK matrix -----------------------------------------------------------------
  // Each seen ID under its parent's cell.
  var byParent = {};
  Object.keys(data.techniques).forEach(function (id) {
    (byParent[parentOf(id)] = byParent[parentOf(id)] || []).push(id);
  });
  function cellStats(parent) {
    var ids = byParent[parent] || [], s = { observed: 0, alerts: 0, obsIds: [], alertIds: [], lines: [] };
    ids.sort().forEach(function (id) {
      var t = data.techniques[id];
      s.observed += t.observed;
      s.alerts += t.alerts;
      if (t.observed > 0) s.obsIds.push(id);
      if (t.alerts > 0) s.alertIds.push(id);
      var rules = Object.keys(t.rules).map(function (r) { return r + " (" + t.rules[r] + ")"; });
      s.lines.push(id + " " + t.name + ": " + plural(t.observed, "event", "events") + ", " +
        plural(t.alerts, "alert", "alerts") + (rules.length ? " from " + rules.join(", ") : ""));
    });
    return s;
  }
  var maxObs = 0, maxAlerts = 0, stats = {};
  data.matrix.forEach(function (tactic) {
    tactic.techniques.forEach(function (t) {
      var s = stats[t[0]] = stats[t[0]] || cellStats(t[0]);
      maxObs = Math.max(maxObs, s.observed);
      maxAlerts = Math.max(maxAlerts, s.alerts);
    });
  });

  var matrix = el("div", { class: "matrix" });
  matrix.style.setProperty("--tactics", String(data.matrix.length));
  var cells = [];
  data.matrix.forEach(function (tactic) {
    var col = el("div", { class: "tactic", "data-tactic": tactic.shortname });
    var seen = tactic.techniques.filter(function (t) { return stats[t[0]].observed + stats[t[0]].alerts > 0; }).length;
    add(col, el("h3", { title: tactic.id + " " + tactic.name }, tactic.name,
      el("small", null, seen + " / " + tactic.techniques.length)));
    tactic.techniques.forEach(function (t) {
      var s = stats[t[0]];
      var attrs = { class: "cell", "data-technique": t[0] };
      var title = t[0] + " " + t[1];
      if (s.lines.length) {
        attrs.class += " seen" + (s.obsIds.length ? " has-obs" : "") + (s.alertIds.length ? " has-alert" : "");
        attrs["data-observed"] = s.obsIds.join(" ");
        attrs["data-alerted"] = s.alertIds.join(" ");
        title += "\n" + plural(s.observed, "event", "events") + " observed, " + plural(s.alerts, "alert", "alerts") +
          "\n" + s.lines.join("\n");
      } else {
        title += "\nnot observed, no alerts";
      }
      attrs.title = title;
      var cell = el("div", attrs, el("span", { class: "n" }), t[1]);
      cell.addEventListener("click", function () {
        if (!s.lines.length) return;
        alertFilter.technique.value = techOptionFor(t[0]);
        renderAlerts();
        document.getElementById("alerts").scrollIntoView();
      });
      cells.push({ node: cell, stats: s });
      add(col, cell);
    });
    add(matrix, col);
  });

  var matrixSection = el("section", { id: "matrix", class: "mode-observed" });
  var legend = el("span", { class: "legend" });
  var modeSelect = el("select", { id: "matrix-mode" },
    el("option", { value: "observed" }, "events observed"),
    el("option", { value: "alerts" }, "alerts"));
  var onlySeen = el("input", { type: "checkbox", id: "only-seen" });
  add(matrixSection, [
    el("h2", null, "ATT&CK Enterprise matrix", el("small", null,
      "colour by the chosen count; a red edge marks alerts, a blue edge events observed. Sub-techniques roll up into their technique; hover a cell for the detail, click it to filter the alerts.")),
    el("div", { class: "controls" },
      el("label", null, "Colour by ", modeSelect),
      el("label", null, onlySeen, "only techniques with events or alerts"),
      legend),
    data.unresolved.length ? el("p", { class: "note warn" },
      "IDs the ATT&CK catalog does not know (left off the matrix): " + data.unresolved.join(", ")) : null,
    el("div", { class: "matrix-wrap" }, matrix)
  ]);
  add(root, matrixSection);

  function paintMatrix() {
    var mode = modeSelect.value, scale = SCALES[mode], max = mode === "observed" ? maxObs : maxAlerts;
    matrixSection.className = "mode-" + mode + (onlySeen.checked ? " only-seen" : "");
    cells.forEach(function (c) {
      var v = mode === "observed" ? c.stats.observed : c.stats.alerts;
      var n = c.node.firstChild;
      n.textContent = v > 0 ? fmt(v) : "";
      if (v > 0) {
        var r = ramp(scale.from, scale.to, v, max);
        c.node.style.background = r.color;
        c.node.style.color = r.dark ? "#fff" : "#111";
      } else {
        c.node.style.background = "";
        c.node.style.color = "";
      }
    });
    legend.textContent = "";
    var w = 160, g = svg("svg", { width: w + 70, height: 16, role: "img", "aria-label": "colour scale" });
    var grad = svg("linearGradient", { id: "legend-grad" },
      svg("stop", { offset: "0", "stop-color": scale.from }),
      svg("stop", { offset: "1", "stop-color": scale.to }));
    add(g, [svg("defs", null, grad), svg("rect", { x: 0, y: 2, width: w, height: 12, fill: "url(#legend-grad)", rx: 2 }),
      svg("text", { x: w + 6, y: 12 }, "1 \u2013 " + fmt(max))]);
    add(legend, [scale.label + ": ", g]);
  }
  modeSelect.addEventListener("change", paintMatrix);
  onlySeen.addEventListener("change", paintMatrix);
  paintMatrix();

  // ---- alerts ------------------------------------------------------------------------
  var alerts = data.alerts;
  function unique(values) {
    return Array.from(new Set(values)).sort();
  }
  function select(id, label, values, labelOf) {
    var s = el("select", { id: id }, el("option", { value: "" }, "all"));
    values.forEach(function (v) { add(s, el("option", { value: v }, labelOf ? labelOf(v) : v)); });
    return { node: el("label", null, label + " ", s), select: s };
  }
  var techValues = unique([].concat.apply([], alerts.map(function (a) {
    return a.techniques.concat(a.techniques.map(parentOf));
  })));
  function techOptionFor(parent) { return techValues.indexOf(parent) >= 0 ? parent : ""; }
  var sev = select("filter-severity", "Severity", SEVERITIES.filter(function (s) {
    return alerts.some(function (a) { return a.severity === s; });
  }));
  var rule = select("filter-rule", "Rule", unique(alerts.map(function (a) { return a.rule; })));
  var host = select("filter-host", "Host", unique([].concat.apply([], alerts.map(function (a) { return a.hosts; }))));
  var tech = select("filter-technique", "Technique", techValues, function (id) {
    var name = techName(id);
    return id.indexOf(".") < 0 && !data.techniques[id] ? id + " (any sub-technique)" : id + (name ? " " + name : "");
  });
  var search = el("input", { type: "search", id: "filter-text", placeholder: "search titles" });
  var reset = el("button", { type: "button" }, "clear filters");
  var alertFilter = { severity: sev.select, rule: rule.select, host: host.select, technique: tech.select };
  var shown = el("span", { class: "note", id: "alerts-shown" });
  var columns = [
    { key: "severity", label: "Severity", value: function (a) { return SEV_RANK[a.severity]; } },
    { key: "rule", label: "Rule", value: function (a) { return a.rule; } },
    { key: "title", label: "Title", value: function (a) { return a.title; } },
    { key: "hosts", label: "Hosts", value: function (a) { return a.hosts[0] || ""; } },
    { key: "techniques", label: "ATT&CK", value: function (a) { return a.techniques[0] || ""; } },
    { key: "count", label: "Events", num: true, value: function (a) { return a.count; } },
    { key: "first_seen", label: "First seen", value: function (a) { return a.first_seen; } },
    { key: "last_seen", label: "Last seen", value: function (a) { return a.last_seen; } }
  ];
  var sortBy = { key: "severity", dir: -1 };
  var headRow = el("tr");
  columns.forEach(function (c) {
    var th = el("th", { class: "sortable" + (c.num ? " num" : ""), "data-key": c.key }, c.label);
    th.addEventListener("click", function () {
      sortBy = { key: c.key, dir: sortBy.key === c.key ? -sortBy.dir : (c.key === "severity" || c.num ? -1 : 1) };
      renderAlerts();
    });
    c.th = th;
    add(headRow, th);
  });
  var tbody = el("tbody");
  add(root, el("section", { id: "alerts" },
    el("h2", null, "Alerts", el("small", null, "deduplicated, as notify would send them; click a heading to sort")),
    el("div", { class: "controls" }, sev.node, rule.node, host.node, tech.node, search, reset, shown),
    capNote(alerts.length, totals.alerts, "alerts (least severe)"),
    el("div", { class: "scroll" }, el("table", { id: "alerts-table" }, el("thead", null, headRow), tbody))));
  [sev.select, rule.select, host.select, tech.select].forEach(function (s) { s.addEventListener("change", renderAlerts); });
  search.addEventListener("input", renderAlerts);
  reset.addEventListener("click", function () {
    [sev.select, rule.select, host.select, tech.select].forEach(function (s) { s.value = ""; });
    search.value = "";
    renderAlerts();
  });

  function matches(a) {
    var t = tech.select.value, q = search.value.toLowerCase();
    return (!sev.select.value || a.severity === sev.select.value) &&
      (!rule.select.value || a.rule === rule.select.value) &&
      (!host.select.value || a.hosts.indexOf(host.select.value) >= 0) &&
      (!t || a.techniques.some(function (id) { return id === t || parentOf(id) === t; })) &&
      (!q || (a.title + " " + a.rule + " " + a.hosts.join(" ")).toLowerCase().indexOf(q) >= 0);
  }
  function techChips(ids, alerted) {
    return ids.map(function (id) {
      return el("span", { class: "chip" + (alerted ? " alerted" : ""), title: techName(id) }, id);
    });
  }
  function renderAlerts() {
    var col = columns.filter(function (c) { return c.key === sortBy.key; })[0];
    columns.forEach(function (c) { c.th.className = "sortable" + (c.num ? " num" : "") + (c === col ? (sortBy.dir > 0 ? " asc" : " desc") : ""); });
    var rows = alerts.map(function (a, i) { return { a: a, i: i }; }).filter(function (r) { return matches(r.a); });
    rows.sort(function (x, y) {
      var a = col.value(x.a), b = col.value(y.a);
      var c = a < b ? -1 : a > b ? 1 : 0;
      return c * sortBy.dir || x.i - y.i;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) {
      var a = r.a;
      var more = a.host_count - a.hosts.length;
      add(frag, el("tr", { "data-alert": a.id, "data-severity": a.severity },
        el("td", null, sevBadge(a.severity)),
        el("td", null, a.rule),
        el("td", { class: "title" }, a.title, a.query ? el("div", { class: "note" }, "query " + a.query) : null),
        el("td", null, a.hosts.join(", "), more > 0 ? " +" + fmt(more) : ""),
        el("td", null, techChips(a.techniques, true)),
        el("td", { class: "num" }, fmt(a.count)),
        el("td", { class: "time" }, a.first_seen),
        el("td", { class: "time" }, a.last_seen)));
    });
    tbody.textContent = "";
    tbody.appendChild(frag);
    shown.textContent = "showing " + fmt(rows.length) + " of " + plural(alerts.length, "alert", "alerts");
  }
  renderAlerts();

  // ---- hosts -------------------------------------------------------------------------
  var hostBody = el("tbody");
  data.hosts.forEach(function (h) {
    var observed = Object.keys(h.techniques);
    var obsChips = observed.map(function (id) {
      return el("span", { class: "chip" + (h.alerted.indexOf(id) >= 0 ? " alerted" : ""),
        title: techName(id) + ": " + plural(h.techniques[id], "event", "events") }, id);
    });
    var alertOnly = h.alerted.filter(function (id) { return observed.indexOf(id) < 0; });
    var list = el("ul");
    h.alerts.forEach(function (i) {
      var a = alerts[i];
      add(list, el("li", null, sevBadge(a.severity), " ", a.title, " ", el("span", { class: "note" }, a.rule)));
    });
    var unlisted = h.alert_count - h.alerts.length;
    if (unlisted > 0) add(list, el("li", { class: "note" }, fmt(unlisted) + " more not embedded"));
    var name = h.name === "" ? "(no host identifier)" : h.name;
    add(hostBody, el("tr", { "data-host": h.name },
      el("td", null, h.alert_count > 0 ? el("details", null, el("summary", null, name), list) : name),
      el("td", { class: "num" }, fmt(h.events)),
      el("td", { class: "num" }, fmt(h.alert_count)),
      el("td", null, obsChips, techChips(alertOnly, true))));
  });
  add(root, el("section", { id: "hosts" },
    el("h2", null, "Hosts", el("small", null, "with alerts first; red techniques alerted, blue only observed; open a host for its alerts")),
    capNote(data.hosts.length, totals.hosts, "hosts"),
    el("div", { class: "scroll" }, el("table", null,
      el("thead", null, el("tr", null, el("th", null, "Host"), el("th", { class: "num" }, "Events"),
        el("th", { class: "num" }, "Alerts"), el("th", null, "Techniques"))),
      hostBody))));

  // ---- queries -----------------------------------------------------------------------
  var queryBody = el("tbody");
  data.queries.forEach(function (q) {
    add(queryBody, el("tr", { "data-query": q.name },
      el("td", { class: "title" }, q.name),
      el("td", null, q.pack || ""),
      el("td", null, q.tables.map(function (t) { return el("span", { class: "chip table" }, t); })),
      el("td", null, techChips(q.techniques, false)),
      el("td", { class: "num" }, fmt(q.events)),
      el("td", { class: "num" }, fmt(q.hosts))));
  });
  add(root, el("section", { id: "queries" },
    el("h2", null, "Queries seen", el("small", null, "by logged name and the osquery tables its rows came from")),
    capNote(data.queries.length, totals.queries, "queries"),
    el("div", { class: "scroll" }, el("table", null,
      el("thead", null, el("tr", null, el("th", null, "Query"), el("th", null, "Pack"), el("th", null, "Tables"),
        el("th", null, "Techniques"), el("th", { class: "num" }, "Events"), el("th", { class: "num" }, "Hosts"))),
      queryBody))));

  // ---- parse accounting --------------------------------------------------------------
  function kv(title, rows) {
    return el("div", null, el("h3", null, title), el("table", { class: "kv" }, el("tbody", null, rows.map(function (r) {
      return el("tr", null, el("td", null, r[0]), el("td", { class: "num" }, fmt(r[1])));
    }))));
  }
  function reasons(title, m) {
    var keys = Object.keys(m);
    if (!keys.length) return null;
    return el("div", null, el("h3", null, title), el("table", { class: "kv" }, el("tbody", null, keys.map(function (k) {
      return el("tr", { "data-reason": k }, el("td", null, k), el("td", { class: "num" }, fmt(m[k])));
    }))));
  }
  var addsUp = p.records === p.decoded + p.quarantined;
  var barW = 420, decodedW = p.records ? Math.round(barW * p.decoded / p.records) : barW;
  var bar = svg("svg", { width: barW + 2, height: 22, role: "img", "aria-label": "records decoded and quarantined" },
    svg("rect", { x: 1, y: 1, width: decodedW, height: 20, fill: "#41ab5d" }),
    svg("rect", { x: 1 + decodedW, y: 1, width: barW - decodedW, height: 20, fill: "#cb181d" }),
    svg("title", null, fmt(p.decoded) + " decoded, " + fmt(p.quarantined) + " quarantined"));
  var d = data.detect;
  add(root, el("section", { id: "parse" },
    el("h2", null, "Parse accounting"),
    el("p", { class: addsUp ? "note ok" : "note bad" }, "records " + fmt(p.records) + " = decoded " + fmt(p.decoded) +
      " + quarantined " + fmt(p.quarantined) + (addsUp ? " \u2713" : " \u2717 (does not add up)")),
    bar,
    el("div", { class: "row" },
      kv("Decoding", [["objects", p.objects], ["bytes read", p.bytes_in], ["bytes decoded", p.bytes_decoded],
        ["records", p.records], ["decoded", p.decoded], ["quarantined records", p.quarantined],
        ["events", p.events], ["status log events", p.status_events], ["warnings", p.warnings],
        ["rows with unknown tables", p.tables_unknown], ["objects quarantined as a whole", p.objects_quarantined],
        ["objects with errors", p.objects_with_errors]]),
      kv("Detection", [["rule matches", d.matches], ["alerts", totals.alerts], ["suppressed: stale", d.suppressed_stale],
        ["suppressed: initial run", d.suppressed_initial], ["suppressed by filters", d.suppressed_by_filter],
        ["below threshold", d.below_threshold], ["rule errors", d.rule_errors], ["IOC hits", d.ioc_hits]]),
      reasons("Quarantined records by reason", p.quarantined_by_reason),
      reasons("Objects quarantined by reason", p.objects_quarantined_by_reason))));
})();
