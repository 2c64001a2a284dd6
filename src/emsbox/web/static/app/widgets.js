// Dashboard widgets. Each shows something of one load: main values as tiles, one value, a
// gauge, the per-phase table, THD bars, the counters, or a chart (from charts.js, loaded when
// a chart is first shown). ``mountWidget`` fills an element and returns ``{ stop() }``.

import { h, replace, svg } from "./dom.js";
import { num, t } from "./i18n.js";
import * as live from "./live.js";
import { display, formatValue, label } from "./variables.js";

// Kind: label key, how many variables it takes (0: none chosen), whether it has a range or a
// period, and whether it is wide (a chart).
export const KINDS = {
  overview: { label: "widget.overview", vars: 0, site: true, wide: true },
  tiles: { label: "widget.tiles", vars: 0 },
  value: { label: "widget.value", vars: 1 },
  gauge: { label: "widget.gauge", vars: 1 },
  phases: { label: "widget.phases", vars: 0 },
  thd: { label: "widget.thd", vars: 0 },
  counters: { label: "widget.counters", vars: 0 },
  live_chart: { label: "widget.live_chart", vars: 4, wide: true },
  history_chart: { label: "widget.history_chart", vars: 4, range: true, wide: true },
  energy_chart: { label: "widget.energy_chart", period: true, wide: true },
};
export const RANGES = ["hour", "day", "week", "month", "year"];
export const PERIODS = ["day", "month"];

// The main values of a load, as tiles.
const TILES = ["p_sys", "q_sys", "s_sys", "pf_sys", "v_ln_sys", "i_sys", "freq", "kwh_imp", "kwh_exp"];
// Rows of the per-phase table: variable stem (name = stem_l1...).
const PHASE_ROWS = ["v", "i", "p", "q", "s", "pf", "thd_v", "thd_i"];
const PHASES = ["l1", "l2", "l3"];
// The counters a counters widget shows, in order.
export const MAIN_COUNTERS = [
  "kwh_imp",
  "kwh_exp",
  "kwh_imp_t1",
  "kwh_imp_t2",
  "kvarh_imp",
  "kvarh_exp",
  "kvah",
  "kwh_imp_partial",
  "kwh_exp_partial",
  "hours_imp",
  "hours_on",
];

/** A tile: label, value and unit of one variable (``data-variable`` names it). */
export function tile(name, values) {
  const { unit } = display(name);
  return h(
    "div",
    { class: "tile", dataset: { variable: name } },
    h("span", { class: "tile-label" }, label(name)),
    h(
      "span",
      { class: "tile-value" },
      h("output", {}, formatValue(name, values[name])),
      unit ? h("small", {}, ` ${unit}`) : null,
    ),
  );
}

/** The per-phase table of a load's values (only rows and phases its wiring has). */
export function phaseTable(values) {
  const phases = PHASES.filter((p) => `v_${p}` in values || `i_${p}` in values);
  if (!phases.length) return h("p", { class: "muted" }, t("widget.no_phases"));
  const rows = PHASE_ROWS.filter((stem) => phases.some((p) => `${stem}_${p}` in values));
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "phases" },
      h("caption", { class: "sr-only" }, t("dash.phases")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, t("dash.phase")),
          phases.map((p) => h("th", {}, p.toUpperCase())),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((stem) => {
          const { unit } = display(`${stem}_l1`);
          return h(
            "tr",
            {},
            h("th", { scope: "row" }, `${t(`var.${stem}`)}${unit ? ` (${unit})` : ""}`),
            phases.map((p) =>
              h("td", { dataset: { variable: `${stem}_${p}` } }, formatValue(`${stem}_${p}`, values[`${stem}_${p}`])),
            ),
          );
        }),
      ),
    ),
  );
}

/** Horizontal bars of the THD of voltage and current per phase. */
export function thdBars(values) {
  const names = [
    "thd_v_l1",
    "thd_v_l2",
    "thd_v_l3",
    "thd_v_l12",
    "thd_v_l23",
    "thd_v_l31",
    "thd_i_l1",
    "thd_i_l2",
    "thd_i_l3",
  ].filter((n) => n in values);
  if (!names.length) return h("p", { class: "muted" }, t("widget.no_thd"));
  // The scale grows with the largest value so small distortions stay visible.
  const top = Math.max(5, ...names.map((n) => Math.ceil(values[n] / 5) * 5));
  return h(
    "ul",
    { class: "bars" },
    names.map((n) => {
      const bar = h("span", { class: "bar-fill" });
      bar.style.width = `${Math.min(100, (100 * values[n]) / top)}%`;
      return h(
        "li",
        { dataset: { variable: n } },
        h("span", { class: "bar-label" }, label(n)),
        h("span", { class: "bar-track" }, bar),
        h("output", {}, `${num(values[n], 1)} %`),
      );
    }),
  );
}

// Fixed gauge ranges where the quantity has natural limits; others scale to what they show.
const GAUGE_RANGE = { pf_sys: [-1, 1], pf_l1: [-1, 1], pf_l2: [-1, 1], pf_l3: [-1, 1], freq: [45, 65] };

/** A nice round number at or above ``x`` (1, 2 or 5 times a power of ten). */
function niceCeil(x) {
  if (!(x > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].find((m) => m * power >= x) * power;
}

function gauge(name) {
  const { unit, scale } = display(name);
  let [low, high] = GAUGE_RANGE[name] || [0, 0];
  const fixed = name in GAUGE_RANGE;
  const arc = (from, to) => {
    // A half circle from the left (from = 0) to the right (to = 1), centre (60, 60), radius 50.
    const point = (f) => [60 - 50 * Math.cos(Math.PI * f), 60 - 50 * Math.sin(Math.PI * f)];
    const [x1, y1] = point(from);
    const [x2, y2] = point(to);
    return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A 50 50 0 0 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
  };
  const fill = svg("path", { class: "gauge-fill", d: arc(0, 0.001) });
  const text = svg("text", { x: 60, y: 56, "text-anchor": "middle", class: "gauge-value" }, "–");
  const lowText = svg("text", { x: 10, y: 72, "text-anchor": "middle", class: "gauge-limit" }, "");
  const highText = svg("text", { x: 110, y: 72, "text-anchor": "middle", class: "gauge-limit" }, "");
  const el = h(
    "div",
    { class: "gauge", dataset: { variable: name } },
    svg(
      "svg",
      { viewBox: "0 0 120 78", role: "img", "aria-label": label(name) },
      svg("path", { class: "gauge-track", d: arc(0, 1) }),
      fill,
      text,
      lowText,
      highText,
    ),
    h("span", { class: "gauge-unit" }, unit),
  );
  return {
    el,
    update(values) {
      const value = values[name];
      if (typeof value !== "number") return;
      const shown = value * scale;
      if (!fixed) {
        // Grows only, so the needle does not jump with every reading.
        const bound = niceCeil(Math.abs(shown) * 1.2);
        if (bound > high) high = bound;
        if (shown < 0 && -bound < low) low = -bound;
      }
      const f = Math.min(1, Math.max(0, (shown - low) / (high - low || 1)));
      fill.setAttribute("d", arc(0, Math.max(f, 0.001)));
      text.textContent = formatValue(name, value);
      lowText.textContent = num(low, 0);
      highText.textContent = num(high, 0);
      el.dataset.value = String(shown);
    },
  };
}

/** The main counters of a load as a definition list. */
export function countersList(values) {
  const names = MAIN_COUNTERS.filter((n) => n in values);
  return h(
    "dl",
    { class: "counters" },
    names.map((n) => [
      h("dt", {}, label(n)),
      h("dd", { dataset: { variable: n } }, `${formatValue(n, values[n])} ${display(n).unit}`),
    ]),
  );
}

// The columns of the overview of all loads.
const OVERVIEW = ["p_sys", "pf_sys", "v_ln_sys", "i_sys", "freq", "kwh_imp", "kwh_exp"];

/** A table of every load's main values (the site's overview); rows are ``data-load``. */
export function loadsTable(app) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "loads-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, t("dash.load")),
          OVERVIEW.map((n) => h("th", {}, `${label(n)}${display(n).unit ? ` (${display(n).unit})` : ""}`)),
        ),
      ),
      h(
        "tbody",
        {},
        app.loads.map((l) => {
          const v = live.latestOf(l.name)?.values || {};
          return h(
            "tr",
            { dataset: { load: l.name } },
            h("th", { scope: "row" }, h("a", { href: `#/dashboard?load=${encodeURIComponent(l.name)}` }, l.name)),
            OVERVIEW.map((n) => h("td", { dataset: { variable: n } }, formatValue(n, v[n]))),
          );
        }),
      ),
    ),
  );
}

/** Tabs for a page with one load at a time: links to ``#/<page>?load=<name>``, ``load`` pressed. */
export function loadTabs(app, page, load) {
  return h(
    "nav",
    { class: "tabs", "aria-label": t("nav.loads") },
    app.loads.map((l) =>
      h(
        "a",
        {
          class: "tab",
          href: `#/${page}?load=${encodeURIComponent(l.name)}`,
          dataset: { load: l.name },
          "aria-pressed": String(l.name === load),
        },
        l.name,
      ),
    ),
  );
}

/** Follow a load's live readings: ``draw(values)`` now (if any) and at each new reading. */
function follow(el, spec, draw) {
  const last = live.latestOf(spec.load);
  if (last) draw(last.values);
  else replace(el, h("p", { class: "muted waiting" }, t("dash.waiting")));
  return live.subscribe((reading) => {
    if (reading.load === spec.load) draw(reading.values);
  });
}

/** The title of a widget. */
export function widgetTitle(spec) {
  const kind = KINDS[spec.kind];
  const vars = (spec.vars || []).map(label).join(", ");
  // A value or gauge is named by its variable alone; the other kinds by what they are.
  const what = kind && kind.vars === 1 ? null : t(kind ? kind.label : "widget.unknown");
  return [what, vars, spec.load].filter(Boolean).join(" · ");
}

/** Show the widget ``spec`` ({kind, load, vars, range, period}) in ``el``; returns ``{ stop() }``. */
export function mountWidget(el, app, spec) {
  if (spec.kind === "overview") {
    replace(el, loadsTable(app));
    return { stop: live.subscribe(() => replace(el, loadsTable(app))) };
  }
  if (!app.loads.some((l) => l.name === spec.load)) {
    replace(el, h("p", { class: "warning" }, t("widget.no_load", { load: spec.load })));
    return { stop() {} };
  }
  const vars = spec.vars || [];
  switch (spec.kind) {
    case "tiles":
      return {
        stop: follow(el, spec, (v) =>
          replace(
            el,
            h(
              "div",
              { class: "tiles" },
              TILES.filter((n) => n in v).map((n) => tile(n, v)),
            ),
          ),
        ),
      };
    case "value":
      return { stop: follow(el, spec, (v) => replace(el, tile(vars[0], v))) };
    case "gauge": {
      const g = gauge(vars[0]);
      let shown = false;
      const stop = follow(el, spec, (v) => {
        if (!shown) replace(el, g.el);
        shown = true;
        g.update(v);
      });
      return { stop };
    }
    case "phases":
      return { stop: follow(el, spec, (v) => replace(el, phaseTable(v))) };
    case "thd":
      return { stop: follow(el, spec, (v) => replace(el, thdBars(v))) };
    case "counters":
      return { stop: follow(el, spec, (v) => replace(el, countersList(v))) };
    case "live_chart":
    case "history_chart":
    case "energy_chart":
      return chartWidget(el, app, spec);
    default:
      replace(el, h("p", { class: "warning" }, t("widget.unknown")));
      return { stop() {} };
  }
}

function chartWidget(el, app, spec) {
  let mounted = null;
  let stopped = false;
  replace(el, h("p", { class: "muted" }, "…"));
  import("./charts.js")
    .then((charts) => {
      if (stopped) return;
      el.replaceChildren();
      if (spec.kind === "live_chart") mounted = charts.mountLiveChart(el, app, { load: spec.load, vars: spec.vars });
      else if (spec.kind === "history_chart")
        mounted = charts.mountHistoryChart(el, app, { load: spec.load, vars: spec.vars, range: spec.range || "day" });
      else mounted = charts.mountEnergyChart(el, app, { load: spec.load, period: spec.period || "day" });
    })
    .catch((error) =>
      replace(el, h("p", { class: "warning" }, t("common.error.unexpected", { detail: error.message }))),
    );
  return {
    stop() {
      stopped = true;
      mounted?.stop();
    },
  };
}
