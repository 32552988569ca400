// rung dashboard: reads /admin/api/* and draws SVG charts. No dependencies, no build step.
"use strict";

(function () {
  const KEY = "rung.adminKey";
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#3f6fd8", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];
  const ERR = "#d64545";
  const $ = (id) => document.getElementById(id);
  const state = { summary: null, before: null, selected: null, pending: [], timer: null };

  // --- DOM helpers (data goes in as text, never as markup) ------------------------------
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined)
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return node;
  }
  function s(tag, attrs, ...kids) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v; else node.setAttribute(k, String(v));
    }
    for (const kid of kids.flat()) if (kid) node.append(kid);
    return node;
  }
  const tip = (text) => s("title", { text });
  function swatch(color, kind) {
    const sw = el("span", { class: "sw" + (kind ? " " + kind : "") });
    sw.style.background = color;
    sw.style.borderColor = color;
    return sw;
  }
  function legend(id, items) {
    $(id).replaceChildren(...items.map(([label, color, kind]) =>
      el("span", {}, swatch(color, kind), label)));
  }

  // --- formatting ----------------------------------------------------------------------
  const pct = (x) => x === null || x === undefined ? "–" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + "%";
  const int = (x) => Number(x || 0).toLocaleString("en-US");
  function money(x) {
    if (x === null || x === undefined) return "–";
    const a = Math.abs(x);
    if (a === 0) return "$0";
    if (a >= 100) return "$" + x.toFixed(0);
    if (a >= 1) return "$" + x.toFixed(2);
    if (a >= 0.01) return "$" + x.toFixed(3);
    return "$" + x.toPrecision(2);
  }
  function ms(x) {
    if (x === null || x === undefined) return "–";
    if (x >= 10000) return (x / 1000).toFixed(0) + " s";
    if (x >= 1000) return (x / 1000).toFixed(1) + " s";
    return x.toFixed(x < 10 ? 1 : 0) + " ms";
  }
  function clock(t, withDate) {
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    const hm = p(d.getHours()) + ":" + p(d.getMinutes());
    return withDate ? p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + hm : hm;
  }
  function stamp(t) {
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
      p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
    return 10 * e;
  }
  const tierColor = (tiers, name) => PALETTE[Math.max(0, tiers.indexOf(name)) % PALETTE.length];

  // --- the API -------------------------------------------------------------------------
  function showLogin(message) {
    $("login-msg").textContent = message;
    $("login").hidden = false;
    $("login-key").focus();
    return new Promise((resolve) => { state.pending.push(resolve); });
  }
  async function api(path) {
    for (;;) {
      const key = sessionStorage.getItem(KEY);
      const headers = key ? { Authorization: "Bearer " + key } : {};
      const resp = await fetch(path, { headers, cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        let msg = "";
        try { msg = (await resp.json()).error.message; } catch (e) { msg = resp.statusText; }
        if (key) sessionStorage.removeItem(KEY);
        await showLogin((resp.status === 403 ? "That key is not an admin key. " : "") +
          (key ? msg + " " : "") + "Paste an admin key (rung keys create --admin); " +
          "it is kept in this tab only.");
        continue;
      }
      if (!resp.ok) {
        let msg = resp.statusText;
        try { msg = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
        throw new Error(resp.status + ": " + msg);
      }
      return resp.json();
    }
  }
  function banner(text) {
    $("banner").hidden = !text;
    $("banner").textContent = text || "";
  }

  // --- charts --------------------------------------------------------------------------
  function frame(id, height) {
    const box = $(id);
    const width = Math.max(260, box.clientWidth || 600);
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    box.replaceChildren(svg);
    return { svg, width, height, m: { l: 52, r: 44, t: 10, b: 24 } };
  }
  function timeAxis(f, buckets, step) {
    const { svg, width, height, m } = f;
    const n = buckets.length;
    const bw = (width - m.l - m.r) / n;
    const withDate = step >= 3600;
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor((width - m.l - m.r) / 70))));
    for (let i = 0; i < n; i += every) {
      svg.append(s("text", { x: m.l + i * bw + bw / 2, y: height - 6, "text-anchor": "middle",
        text: clock(buckets[i].t, withDate) }));
    }
    svg.append(s("line", { class: "axis", x1: m.l, x2: width - m.r, y1: height - m.b,
      y2: height - m.b }));
    return bw;
  }
  function valueAxis(f, max, fmt, right, whole) {
    const { svg, width, height, m } = f;
    const h = height - m.t - m.b;
    // counts get whole-number ticks: 4 steps when they divide evenly, else 5, else 2
    const mant = max / Math.pow(10, Math.floor(Math.log10(max)));
    const n = whole ? [4, 5, 2].find((k) => Number.isInteger(max / k)) || 1
      : Math.abs(mant - 2) < 1e-9 ? 4 : 5;
    for (let k = 0; k <= n; k++) {
      const v = (max * k) / n;
      const y = height - m.b - (h * k) / n;
      if (!right && k > 0) svg.append(s("line", { class: "grid-line", x1: m.l, x2: width - m.r, y1: y, y2: y }));
      svg.append(s("text", { x: right ? width - m.r + 6 : m.l - 6, y: y + 4,
        "text-anchor": right ? "start" : "end", text: fmt(v) }));
    }
    return (v) => height - m.b - (h * v) / max;
  }
  function stackedBars(f, buckets, series, step, fmtTip) {
    const bw = timeAxis(f, buckets, step);
    const totals = buckets.map((b) => series.reduce((a, [, get]) => a + get(b), 0));
    const max = Math.ceil(niceMax(Math.max(...totals, 1)));
    const y = valueAxis(f, max, (v) => int(v), false, true);
    buckets.forEach((b, i) => {
      let acc = 0;
      for (const [name, get, color] of series) {
        const v = get(b);
        if (!v) continue;
        const y0 = y(acc), y1 = y(acc + v);
        f.svg.append(s("rect", { class: "bar", x: f.m.l + i * bw + bw * 0.12, y: y1,
          width: Math.max(1, bw * 0.76), height: Math.max(0.5, y0 - y1), fill: color },
          tip(`${clock(b.t, step >= 3600)} · ${name}: ${fmtTip ? fmtTip(v) : int(v)}`)));
        acc += v;
      }
    });
    return { bw, y };
  }
  function line(f, points, color, opts) {
    const pts = points.filter((p) => p[1] !== null && p[1] !== undefined && !Number.isNaN(p[1]));
    if (!pts.length) return;
    const d = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
    f.svg.append(s("path", { class: "line", d, fill: "none", stroke: color,
      "stroke-width": (opts && opts.width) || 2, "stroke-dasharray": opts && opts.dash,
      "stroke-linejoin": "round" }));
    if (pts.length < 40) for (const p of pts) f.svg.append(s("circle", { cx: p[0], cy: p[1], r: 2.2, fill: color }));
  }

  function drawTraffic(sm) {
    const f = frame("chart-traffic", 210);
    const series = sm.tiers.map((t) => [t, (b) => b.by_tier[t] || 0, tierColor(sm.tiers, t)]);
    series.push(["errors", (b) => b.errors, ERR]);
    stackedBars(f, sm.buckets, series, sm.bucket_s);
    legend("legend-traffic", series.map(([n, , c]) => [n, c]));
  }
  function drawShare(sm) {
    const box = $("chart-share");
    const width = Math.max(200, box.clientWidth || 300), height = 200;
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    box.replaceChildren(svg);
    const cx = width / 2, cy = height / 2, r = 82, w = 26;
    const total = sm.tiers.reduce((a, t) => a + (sm.answered[t] || 0), 0);
    svg.append(s("circle", { cx, cy, r: r - w / 2, fill: "none", stroke: "#eef0f4", "stroke-width": w }));
    let a0 = -Math.PI / 2;
    for (const t of sm.tiers) {
      const n = sm.answered[t] || 0;
      if (!n) continue;
      const frac = n / total;
      const a1 = a0 + frac * 2 * Math.PI - (frac < 1 ? 0.0001 : 0.001);
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const rr = r - w / 2;
      const p = (a) => `${(cx + rr * Math.cos(a)).toFixed(2)} ${(cy + rr * Math.sin(a)).toFixed(2)}`;
      svg.append(s("path", { class: "slice", d: `M ${p(a0)} A ${rr} ${rr} 0 ${large} 1 ${p(a1)}`,
        fill: "none", stroke: tierColor(sm.tiers, t), "stroke-width": w },
        tip(`${t}: ${int(n)} (${pct(frac)})`)));
      a0 += frac * 2 * Math.PI;
    }
    const first = sm.tiers[0];
    svg.append(s("text", { class: "center-big", x: cx, y: cy + 2, "text-anchor": "middle",
      text: total ? pct(sm.share[first] || 0) : "–" }));
    svg.append(s("text", { x: cx, y: cy + 20, "text-anchor": "middle",
      text: total ? "on " + first : "no answers" }));
    legend("legend-share", sm.tiers.map((t) => [`${t} ${int(sm.answered[t] || 0)} · ${pct(sm.share[t] || 0)}`,
      tierColor(sm.tiers, t)]));
  }
  function drawEscalations(sm) {
    const f = frame("chart-esc", 210);
    const reasons = Object.keys(sm.reasons);
    const colors = ["#f28e2b", "#e15759", "#b07aa1", "#edc948", "#9c755f", "#76b7b2"];
    const series = reasons.map((r, i) => [r, (b) => b.reasons[r] || 0, colors[i % colors.length]]);
    const { bw } = stackedBars(f, sm.buckets, series, sm.bucket_s);
    const rates = sm.buckets.map((b) => b.escalation_rate);
    const maxRate = Math.min(1, niceMax(Math.max(0.05, ...rates.filter((x) => x !== null))));
    const y = valueAxis(f, maxRate, (v) => pct(v), true);
    line(f, sm.buckets.map((b, i) => [f.m.l + i * bw + bw / 2, b.escalation_rate === null ? null : y(b.escalation_rate)]), "#1d2330", { width: 1.6 });
    legend("legend-esc", [...series.map(([n, , c]) => [n, c]), ["escalation rate (right axis)", "#1d2330", "line"]]);
  }
  function drawLatency(sm) {
    const f = frame("chart-latency", 200);
    const bw = timeAxis(f, sm.buckets, sm.bucket_s);
    const keys = [["p50", "#59a14f"], ["p95", "#f28e2b"], ["p99", ERR]];
    const all = sm.buckets.flatMap((b) => keys.map(([k]) => b.latency_ms[k]).concat([b.ttft_ms.p50]))
      .filter((x) => x !== null);
    const y = valueAxis(f, niceMax(Math.max(1, ...all)), (v) => ms(v));
    const x = (i) => f.m.l + i * bw + bw / 2;
    // p99 first and thinner: in sparse buckets p95 and p99 coincide, and p95 stays visible
    for (const [k, c] of keys.slice().reverse()) line(f, sm.buckets.map((b, i) => [x(i), b.latency_ms[k] === null ? null : y(b.latency_ms[k])]), c, { width: k === "p99" ? 1.4 : 2 });
    line(f, sm.buckets.map((b, i) => [x(i), b.ttft_ms.p50 === null ? null : y(b.ttft_ms.p50)]), "#3f6fd8", { dash: "4 3", width: 1.6 });
    legend("legend-latency", [...keys.map(([k, c]) => [`${k} ${ms(sm.latency_ms[k])}`, c, "line"]),
      [`TTFT p50 ${ms(sm.ttft_ms.p50)} (streams)`, "#3f6fd8", "dash"]]);
  }
  function drawCost(sm) {
    const f = frame("chart-cost", 200);
    const bw = timeAxis(f, sm.buckets, sm.bucket_s);
    let c = 0, b = 0;
    const cum = sm.buckets.map((k) => { c += k.cost; b += k.baseline_cost; return [c, b]; });
    const y = valueAxis(f, niceMax(Math.max(1e-9, b, c)), (v) => money(v));
    const x = (i) => f.m.l + i * bw + bw / 2;
    if (cum.length) {
      const top = cum.map((p, i) => `${x(i).toFixed(1)} ${y(p[1]).toFixed(1)}`);
      const bottom = cum.map((p, i) => `${x(i).toFixed(1)} ${y(p[0]).toFixed(1)}`).reverse();
      f.svg.append(s("path", { class: "saved-area", d: "M" + top.join(" L") + " L" + bottom.join(" L") + " Z",
        fill: "#2f9e5a", "fill-opacity": 0.12, stroke: "none" }, tip("saved: " + money(b - c))));
    }
    line(f, cum.map((p, i) => [x(i), y(p[1])]), "#9aa3b5", { dash: "5 4" });
    line(f, cum.map((p, i) => [x(i), y(p[0])]), "#3f6fd8");
    legend("legend-cost", [[`actual ${money(c)}`, "#3f6fd8", "line"],
      [`always ${sm.top_tier || "top tier"} ${money(b)}`, "#9aa3b5", "dash"],
      [`saved ${money(b - c)}`, "#2f9e5a"]]);
  }
  function fillTable(id, title, counts, total) {
    const rows = Object.entries(counts);
    $(id).replaceChildren(el("tr", {}, el("th", { text: title }), el("th", { class: "num", text: "count" }),
      el("th", { class: "num", text: "share" })),
    ...(rows.length ? rows.map(([k, v]) => el("tr", {}, el("td", { text: k }),
      el("td", { class: "num", text: int(v) }), el("td", { class: "num", text: total ? pct(v / total) : "–" })))
      : [el("tr", {}, el("td", { class: "muted", text: "none" }), el("td"), el("td"))]));
  }
  function drawTiles(sm) {
    const t = sm.totals;
    const win = sm.until - sm.since;
    $("t-requests").textContent = int(t.requests);
    $("t-requests-s").textContent = (t.requests / (win / 60)).toFixed(1) + " / min";
    $("t-errors").textContent = int(t.errors);
    $("t-errors-s").textContent = t.requests ? pct(t.errors / t.requests) + " of requests" : "";
    $("t-esc").textContent = pct(t.escalation_rate);
    $("t-esc-s").textContent = int(t.escalated) + " escalated";
    const p50 = ms(sm.latency_ms.p50), p95 = ms(sm.latency_ms.p95);
    $("t-lat").textContent = p50.endsWith(" ms") && p95.endsWith(" ms")
      ? p50.slice(0, -3) + " / " + p95 : p50 + " / " + p95;
    $("t-lat-s").textContent = "p99 " + ms(sm.latency_ms.p99) + " · TTFT " + ms(sm.ttft_ms.p50);
    $("t-cost").textContent = money(t.cost);
    $("t-cost-s").textContent = t.requests ? money(t.cost / t.requests) + " / request" : "";
    $("t-saved").textContent = money(t.cost_saved);
    $("t-saved-s").textContent = t.baseline_cost > 0 ? pct(t.cost_saved / t.baseline_cost) + " vs always " + (sm.top_tier || "top") : "";
    const tile = $("drift-tile");
    const d = sm.drift;
    if (d === undefined || d === null) {
      tile.className = "tile drift-none";
      $("t-drift").textContent = "not configured";
      $("t-drift-s").textContent = "";
    } else {
      const status = String(d.status ?? d.state ?? "unknown");
      tile.className = "tile " + (/^(ok|stable|none|no_drift)$/i.test(status) ? "drift-ok" : "drift-bad");
      $("t-drift").textContent = status;
      const extra = Object.entries(d).filter(([k, v]) => k !== "status" && k !== "state" && (typeof v !== "object" || v === null));
      $("t-drift-s").textContent = extra.slice(0, 3).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(3) : v}`).join(" · ");
    }
  }
  function drawTools(sm) {
    const tl = sm.tools || { steps: 0, share: null, calls: 0, tools: 0, by_tool: [] };
    $("tools-s").textContent = `${int(tl.steps)} tool-call steps, ${pct(tl.share)} of requests · ` +
      `${int(tl.calls)} calls` + (tl.tools > tl.by_tool.length ? ` · top ${tl.by_tool.length} of ${int(tl.tools)} tools` : "");
    const head = el("tr", {}, el("th", { text: "tool" }), el("th", { class: "num", text: "offered" }),
      el("th", { class: "num", text: "calls" }), el("th", { class: "num", text: "steps calling it" }),
      el("th", { class: "num", text: "escalated" }), el("th", { class: "num", text: "escalation rate" }));
    const rows = tl.by_tool.map((x) => el("tr", { "data-tool": x.name }, el("td", { text: x.name }),
      el("td", { class: "num", text: int(x.offered) }), el("td", { class: "num", text: int(x.calls) }),
      el("td", { class: "num", text: int(x.steps) }), el("td", { class: "num", text: int(x.escalated) }),
      el("td", { class: "num", text: pct(x.escalation_rate) })));
    $("tools").replaceChildren(head, ...(rows.length ? rows
      : [el("tr", {}, el("td", { class: "muted", text: "no tools offered in this window" }))]));
  }
  function drawPrompts(sm) {
    const cols = ["prompt", "labels", "requests", "p50", "p99", "tokens in/out", "cost", "small tier enough",
      "share by tier", "escalation rate", "verifier", "judge", "feedback"];
    const head = el("tr", {}, ...cols.map((c, i) => el("th", { class: i > 1 ? "num" : "", text: c })));
    const num = (x) => x === null || x === undefined ? "–" : (+x).toFixed(2);
    const rows = (sm.prompts || []).map((p) => el("tr", { "data-prompt": `${p.name}@${p.version}` },
      el("td", { text: `${p.name}@${p.version}` }),
      el("td", { text: Object.keys(p.labels).join(", ") || "–" }),
      el("td", { class: "num", text: int(p.requests) }), el("td", { class: "num", text: ms(p.latency_ms.p50) }),
      el("td", { class: "num", text: ms(p.latency_ms.p99) }),
      el("td", { class: "num", text: `${int(p.input_tokens)} / ${int(p.output_tokens)}` }),
      el("td", { class: "num", text: money(p.cost) }), el("td", { class: "num", text: pct(p.small_share) }),
      el("td", { class: "num", text: Object.entries(p.share).map(([t, x]) => `${t} ${pct(x)}`).join(" · ") || "–" }),
      el("td", { class: "num", text: pct(p.escalation_rate) }), el("td", { class: "num", text: num(p.verifier_score) }),
      el("td", { class: "num", text: num(p.judge_score) }),
      el("td", { class: "num", text: p.feedback.n ? `${num(p.feedback.mean)} (${int(p.feedback.n)})` : "–" })));
    $("prompts").replaceChildren(head, ...(rows.length ? rows
      : [el("tr", {}, el("td", { class: "muted", text: "no registered prompt used in this window" }))]));
  }
  function drawSatisfaction(sm) {
    const sat = sm.satisfaction || { n: 0, mean: null, by_tier: {}, buckets: [] };
    $("sat-s").textContent = sat.n ? `${int(sat.n)} ratings, mean ${sat.mean.toFixed(2)} (1 = good)`
      : "no feedback in this window (POST /v1/feedback)";
    const f = frame("chart-sat", 180);
    const bw = timeAxis(f, sm.buckets, sm.bucket_s);
    const y = valueAxis(f, 1, (v) => v.toFixed(2));
    const x = (i) => f.m.l + i * bw + bw / 2;
    const rated = sm.tiers.filter((t) => sat.by_tier[t]);
    for (const t of rated) line(f, sat.buckets.map((b, i) => [x(i), b[t] ? y(b[t].mean) : null]), tierColor(sm.tiers, t));
    legend("legend-sat", rated.map((t) => [`${t} ${sat.by_tier[t].mean.toFixed(2)} (n ${int(sat.by_tier[t].n)})`,
      tierColor(sm.tiers, t), "line"]));
  }
  function drawAll() {
    const sm = state.summary;
    if (!sm) return;
    drawTiles(sm);
    drawTraffic(sm);
    drawShare(sm);
    drawEscalations(sm);
    drawLatency(sm);
    drawCost(sm);
    drawTools(sm);
    drawPrompts(sm);
    drawSatisfaction(sm);
    const ok = sm.totals.requests - sm.totals.errors;
    fillTable("reasons", "escalation reason", sm.reasons, ok);
    fillTable("errors", "error", sm.errors, sm.totals.requests);
    const sel = $("f-tier");
    const current = sel.value;
    sel.replaceChildren(el("option", { value: "", text: "any tier" }),
      ...sm.tiers.map((t) => el("option", { value: t, text: t, selected: t === current })));
  }

  async function loadSummary() {
    try {
      state.summary = await api("/admin/api/summary?since=" + encodeURIComponent($("window").value));
      banner("");
      drawAll();
      $("updated").textContent = "updated " + clock(Date.now() / 1000) + ":" +
        String(new Date().getSeconds()).padStart(2, "0");
      document.body.dataset.loaded = "summary";
    } catch (e) {
      banner("Could not load the summary: " + e.message);
    }
  }

  // --- traces --------------------------------------------------------------------------
  function traceQuery(before) {
    const p = new URLSearchParams();
    const q = $("q").value.trim();
    if (q) p.set("q", q);
    if ($("f-tier").value) p.set("tier", $("f-tier").value);
    if ($("f-status").value) p.set("status", $("f-status").value);
    if ($("f-esc").value) p.set("escalated", $("f-esc").value);
    p.set("limit", "50");
    if (before !== null && before !== undefined) p.set("before", String(before));
    return "/admin/api/traces?" + p.toString();
  }
  function traceRow(t) {
    const status = t.status === "ok" ? el("span", { class: "pill ok", text: "ok" })
      : el("span", { class: "pill err", text: t.status });
    return el("tr", { "data-id": t.id, onclick: () => openTrace(t.id) },
      el("td", { text: stamp(t.time), title: t.id }),
      el("td", {}, status, t.escalated ? el("span", { class: "pill esc", text: "escalated" }) : null,
        t.stream ? el("span", { class: "pill stream", text: "stream" }) : null),
      el("td", { text: t.tier || "–" }),
      el("td", { text: t.prompt || t.model, title: t.prompt || t.model }),
      el("td", { class: "num", text: int(t.input_tokens) + " / " + int(t.output_tokens) }),
      el("td", { class: "num", text: ms(t.latency_ms) }),
      el("td", { class: "num", text: money(t.cost) }));
  }
  async function loadTraces(append) {
    try {
      const page = await api(traceQuery(append ? state.before : null));
      const rows = page.data.map(traceRow);
      if (append) $("trace-rows").append(...rows); else $("trace-rows").replaceChildren(...rows);
      state.before = page.next_before;
      $("more").hidden = page.next_before === null;
      $("trace-empty").hidden = $("trace-rows").children.length > 0;
      document.body.dataset.traces = String($("trace-rows").children.length);
    } catch (e) {
      banner("Could not load traces: " + e.message);
    }
  }

  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "")
      .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  }
  function attemptBox(a) {
    const ok = a.outcome === "answered";
    const verdicts = (a.verdicts || []).map((v) => el("div", { class: "verdict" },
      el("span", { class: v.accept ? "pill ok" : "pill err", text: v.accept ? "accept" : "reject" }),
      ` ${v.name} score ${Number(v.score).toFixed(3)}` + (v.detail ? " — " + v.detail : "")));
    return el("div", { class: "attempt " + (ok ? "answered" : "failed") },
      el("div", { class: "head", text: `${a.tier}: ${a.outcome}` }),
      a.usage ? el("div", { class: "muted", text: `usage ${a.usage[0]} in / ${a.usage[1]} out` }) : null,
      a.why ? el("div", { class: "muted", text: "why: " + a.why }) : null,
      verdicts);
  }
  function callLine(id, name, args) {
    return el("span", { class: "call", text: `${name}(${args === undefined ? "arguments redacted" : args})`, title: id });
  }
  function toolsBox(tools) {
    const choice = tools.choice === undefined ? null
      : typeof tools.choice === "string" ? tools.choice : "function " + tools.choice.function.name;
    const out = [kv([["offered", (tools.offered || []).join(", ")], ["tool_choice", choice]])];
    if ((tools.calls || []).length) out.push(el("div", { class: "msg answer" }, el("span", { class: "role", text: "tool calls" }),
      tools.calls.map((c) => callLine(c.id, c.name, c.arguments))));
    return out;
  }
  async function openTrace(id) {
    state.selected = id;
    for (const tr of $("trace-rows").children) tr.classList.toggle("selected", tr.dataset.id === id);
    $("detail").hidden = false;
    $("detail-title").textContent = id;
    $("detail-body").replaceChildren(el("p", { class: "muted", text: "loading…" }));
    let t;
    try { t = await api("/admin/api/traces/" + encodeURIComponent(id)); } catch (e) {
      $("detail-body").replaceChildren(el("p", { class: "msg error", text: e.message }));
      return;
    }
    if (state.selected !== id) return;
    const r = t.route || {};
    const body = [
      el("h3", { text: "Summary" }),
      kv([["time", stamp(t.time)], ["status", t.status], ["model asked", t.model],
        ["answered by", t.tier || "–"], ["escalated", t.escalated ? "yes" : "no"],
        ["stream", t.stream ? "yes" : "no"], ["key", t.key_id],
        ["tokens", `${t.input_tokens} in / ${t.output_tokens} out`],
        ["latency", ms(t.latency_ms)], ["TTFT", t.ttft_ms === null ? null : ms(t.ttft_ms)],
        ["cost", money(t.cost)],
        ["on top tier", t.top_tier_cost === undefined ? null : money(t.top_tier_cost)],
        ["prompt hash", t.prompt_hash]]),
      el("h3", { text: "Route" }),
      kv([["reason", r.reason], ["router score", r.score === null || r.score === undefined ? null : Number(r.score).toFixed(3)],
        ["router time", r.router_ms === undefined ? null : r.router_ms + " ms"],
        ["start tier", r.start], ["escalations", r.escalations],
        ["route cost", r.cost === undefined ? null : money(r.cost)]]),
      el("h3", { text: "Attempts" }),
      ...((r.attempts || []).length ? r.attempts.map((a) => attemptBox(a)) : [el("p", { class: "muted", text: "none" })]),
    ];
    if (t.escalation_reasons && t.escalation_reasons.length)
      body.push(el("h3", { text: "Escalation reasons" }), el("ul", {}, t.escalation_reasons.map((x) => el("li", { text: x }))));
    if (t.tools) body.push(el("h3", { text: "Tools" }), ...toolsBox(t.tools));
    body.push(el("h3", { text: "Messages" }));
    if (t.messages === null) body.push(el("p", { class: "muted", text: "redacted" }));
    else for (const m of t.messages) body.push(el("div", { class: "msg" },
      el("span", { class: "role", text: m.role + (m.tool_call_id ? " · " + m.tool_call_id : "") }), m.content,
      (m.tool_calls || []).map((c) => callLine(c.id, c.function.name, c.function.arguments))));
    body.push(el("h3", { text: "Answer" }));
    if (t.error) body.push(el("div", { class: "msg error" }, el("span", { class: "role", text: "error" }), t.error));
    if (t.response !== null && t.response !== undefined) body.push(el("div", { class: "msg answer" }, el("span", { class: "role", text: "assistant" }), t.response));
    else if (!t.error) body.push(el("p", { class: "muted", text: t.messages === null ? "redacted" : "none" }));
    $("detail-body").replaceChildren(...body);
  }
  function closeTrace() {
    $("detail").hidden = true;
    state.selected = null;
    for (const tr of $("trace-rows").children) tr.classList.remove("selected");
  }

  // --- wiring --------------------------------------------------------------------------
  function refresh() {
    loadSummary();
    loadTraces(false);
  }
  function schedule() {
    clearInterval(state.timer);
    if ($("auto").checked) state.timer = setInterval(loadSummary, 15000);
  }
  function start() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const key = $("login-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      $("login-key").value = "";
      $("login").hidden = true;
      const waiting = state.pending;
      state.pending = [];
      for (const resolve of waiting) resolve();
    });
    $("search").addEventListener("submit", (ev) => { ev.preventDefault(); loadTraces(false); });
    for (const id of ["f-tier", "f-status", "f-esc"]) $(id).addEventListener("change", () => loadTraces(false));
    let typing = null;
    $("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => loadTraces(false), 250); });
    $("more").addEventListener("click", () => loadTraces(true));
    $("window").addEventListener("change", loadSummary);
    $("refresh").addEventListener("click", refresh);
    $("auto").addEventListener("change", schedule);
    $("detail-close").addEventListener("click", closeTrace);
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeTrace(); });
    let resizing = null;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(drawAll, 150); });
    // one request first, so that a missing key is asked for once, not twice
    loadSummary().then(() => loadTraces(false));
    schedule();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
