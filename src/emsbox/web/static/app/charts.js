// Charts: a thin layer over uPlot (static/vendor/uplot) with the app's theme, the user's locale
// and container-sized resizing, plus widgets any page can mount (live, history, energy) and
// the CSV export shared by the History and Energy pages.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import * as live from "./live.js";
import { locale, t } from "./i18n.js";
import { label, shownUnit, variable } from "./variables.js";

const UPLOT_CSS = "/static/vendor/uplot/uPlot.min.css";
// The rolling windows of the range presets, in seconds ("live": the live chart's window).
export const RANGES = { live: 300, hour: 3600, day: 86400, week: 7 * 86400, month: 31 * 86400, year: 366 * 86400 };
const LIVE_WINDOW_S = RANGES.live;
const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
// Most buckets one history request asks for (the API's limit).
const MAX_POINTS = 10000;

/** The device's unit of a variable (VARIABLES.md); "" for ratios and states. */
export function unitOf(name) {
  return variable(name)?.unit ?? "";
}

/** Whether the History page can chart a variable (numbers, not states such as the tariff). */
export function chartable(name, value) {
  const kind = variable(name)?.kind;
  return typeof value === "number" && kind !== "state" && name !== "partial_running";
}

let cssLinked = false;

/** Link uPlot's stylesheet once, on first use. */
export function ensureStyles() {
  if (cssLinked || document.querySelector(`link[href="${UPLOT_CSS}"]`)) {
    cssLinked = true;
    return;
  }
  document.head.append(h("link", { rel: "stylesheet", href: UPLOT_CSS }));
  cssLinked = true;
}

// Fetched as soon as a page or widget loads this module, in parallel with its data.
ensureStyles();

/** The chart colours from the CSS variables of the theme in use (light or dark). */
export function theme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  const palette = [];
  for (let i = 1; i <= 8; i += 1) palette.push(v(`--chart-${i}`) || "#0b6e4f");
  return {
    text: v("--text"),
    muted: v("--muted"),
    line: v("--line"),
    card: v("--card"),
    accent: v("--accent"),
    palette,
  };
}

/** ``color`` (#rgb or #rrggbb) with an opacity. */
export function alpha(color, opacity) {
  let hex = color.replace("#", "");
  if (hex.length === 3) hex = [...hex].map((c) => c + c).join("");
  if (!/^[0-9a-f]{6}$/i.test(hex)) return color;
  const n = parseInt(hex, 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${opacity})`;
}

/** A number in the user's language with up to ``decimals`` decimals. */
function fmt(value, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return value.toLocaleString(locale(), { maximumFractionDigits: decimals, minimumFractionDigits: 0 });
}

/** Decimals that tell apart values ``step`` apart. */
function decimalsFor(step) {
  if (!step || !Number.isFinite(step)) return 2;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(Math.abs(step)) + 0.001)));
}

/** Decimals for a value shown on its own (legend, tables). */
function decimalsOf(value) {
  const a = Math.abs(value);
  if (!Number.isFinite(a) || a >= 1000) return 0;
  if (a >= 100) return 1;
  if (a >= 1) return 2;
  return 3;
}

const dateFormats = {};
/** An Intl.DateTimeFormat of the user's locale, kept per options (and time zone). */
function dateFormat(options) {
  const key = `${locale()}|${JSON.stringify(options)}`;
  dateFormats[key] ||= new Intl.DateTimeFormat(locale(), options);
  return dateFormats[key];
}

/** A time (seconds) as the locale writes it, with detail suited to a span of ``spanS``. */
export function timeLabel(seconds, spanS = 0) {
  const options =
    spanS < 60
      ? { dateStyle: "short", timeStyle: "medium" }
      : spanS < 28 * 86400
        ? { dateStyle: "short", timeStyle: "short" }
        : { dateStyle: "medium" };
  return dateFormat(options).format(new Date(seconds * 1000));
}

/** Time axis labels: time of day, with the date under the first tick of each day. */
function timeAxisValues(u, splits, axisIdx, space, incr) {
  const date = dateFormat({ day: "numeric", month: "short" });
  let previousDay = null;
  return splits.map((s) => {
    const d = new Date(s * 1000);
    if (incr >= 28 * 86400) return dateFormat({ month: "short", year: "numeric" }).format(d);
    if (incr >= 86400) return date.format(d);
    const time = dateFormat(
      incr < 60 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" },
    ).format(d);
    const day = d.toDateString();
    const withDate = day !== previousDay;
    previousDay = day;
    return withDate ? `${time}\n${date.format(d)}` : time;
  });
}

/** Number axis labels in the user's language. */
function numberAxisValues(u, splits, axisIdx, space, incr) {
  const decimals = decimalsFor(incr);
  return splits.map((v) => fmt(v, decimals));
}

/** Axis width from its longest label, so large numbers are never clipped. */
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1 && axis._size) return axis._size;
  let size = axis.ticks.size + axis.gap + 8;
  const longest = (values || []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size);
}

/** How to show values of ``unit``: powers in kW, kvar and kVA as everywhere in the app. */
function displayUnit(unit) {
  const shown = shownUnit(unit);
  return { unit: shown.unit, factor: shown.scale };
}

/** Call ``fn`` when the light/dark preference changes; returns the function that stops it. */
function onThemeChange(fn) {
  const query = matchMedia("(prefers-color-scheme: dark)");
  query.addEventListener("change", fn);
  return () => query.removeEventListener("change", fn);
}

/**
 * A time chart: one line per variable (and optionally a min/max band), one y axis per unit,
 * sized to its container, with a legend that shows the values under the cursor.
 * ``variables`` = [name]; ``options`` = {band, drag, onSelect(startS, endS)}.
 */
class TimeChart {
  constructor(el, variables, options = {}) {
    ensureStyles();
    this.el = el;
    this.variables = variables;
    this.options = options;
    this.plot = h("div", { class: "chart-plot" });
    this.legend = h("ul", { class: "chart-legend", "aria-label": t("charts.legend") });
    this.hidden = new Set();
    // Widgets say here that a range is empty or a request failed (pages have their own place).
    this.message = h("p", { class: "chart-message", role: "status" });
    replace(el, this.message, this.plot, this.legend);
    el.classList.add("chart");
    this.u = null;
    this.raw = null;
    this.xRange = null;
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.plot);
    this.stopTheme = onThemeChange(() => this.raw && this.build());
  }

  /**
   * Show data: ``x`` seconds and per variable ``{avg, min, max}`` arrays (min/max optional);
   * ``range`` = [start, end] of the x axis (default: the data's span).
   */
  setData(x, columns, range = null, renderStart = performance.now()) {
    this.raw = { x, columns };
    this.xRange = range;
    this.renderStart = renderStart;
    if (this.u && this.sameShape()) this.update();
    else this.build();
  }

  sameShape() {
    // Same variables: the chart can take the new data as it is.
    return this.groupsKey === this.groupKey(this.groups());
  }

  groups() {
    const byUnit = new Map();
    for (const name of this.variables) {
      const unit = unitOf(name);
      if (!byUnit.has(unit)) byUnit.set(unit, []);
      byUnit.get(unit).push(name);
    }
    return [...byUnit].map(([unit, names]) => ({ unit, names, ...displayUnit(unit) }));
  }

  groupKey(groups) {
    return groups.map((g) => `${g.unit}:${g.factor}:${g.names.join("+")}`).join("|");
  }

  data() {
    const { x, columns } = this.raw;
    const data = [x];
    for (const g of this.currentGroups) {
      const scale = (a) =>
        a ? (g.factor === 1 ? a : a.map((v) => (v === null ? null : v * g.factor))) : x.map(() => null);
      for (const name of g.names) {
        const c = columns[name] || {};
        data.push(scale(c.avg));
        if (this.options.band) data.push(scale(c.min), scale(c.max));
      }
    }
    return data;
  }

  build() {
    this.u?.destroy();
    const th = theme();
    this.currentGroups = this.groups();
    this.groupsKey = this.groupKey(this.currentGroups);
    const band = !!this.options.band;
    const series = [{}];
    const axes = [
      {
        stroke: th.muted,
        font: FONT,
        grid: { stroke: th.line, width: 1 },
        ticks: { stroke: th.line, width: 1 },
        values: timeAxisValues,
        size: 44,
        space: 70,
      },
    ];
    const scales = {
      x: { time: true, range: (u, min, max) => (this.xRange ? this.xRange : [min, max]) },
    };
    const bands = [];
    const legendItems = [];
    let color = 0;
    this.currentGroups.forEach((g, gi) => {
      const key = `y${gi}`;
      scales[key] = {};
      axes.push({
        scale: key,
        side: gi % 2 === 0 ? 3 : 1,
        label: g.unit,
        labelSize: 18,
        labelFont: FONT,
        stroke: th.muted,
        font: FONT,
        grid: { show: gi === 0, stroke: th.line, width: 1 },
        ticks: { stroke: th.line, width: 1 },
        values: numberAxisValues,
        size: axisSize,
      });
      for (const name of g.names) {
        const stroke = th.palette[color % th.palette.length];
        color += 1;
        const avgIdx = series.length;
        // Points appear by themselves where the data is sparse (uPlot's default).
        series.push({
          label: name,
          scale: key,
          stroke,
          width: 1.5,
          points: { fill: stroke },
          show: !this.hidden.has(name),
        });
        if (band) {
          const minIdx = series.length;
          for (const edge of ["min", "max"]) {
            series.push({
              label: `${name} ${edge}`,
              scale: key,
              stroke: "transparent",
              width: 0,
              points: { show: false },
              show: !this.hidden.has(name),
            });
          }
          bands.push({ series: [minIdx + 1, minIdx], fill: alpha(stroke, 0.18) });
        }
        legendItems.push({ name, unit: g.unit, factor: g.factor, color: stroke, idx: avgIdx });
      }
    });
    const drag = this.options.drag ? { x: true, y: false, setScale: false } : { x: false, y: false, setScale: false };
    const opts = {
      width: Math.max(100, this.plot.clientWidth),
      height: Math.max(120, this.plot.clientHeight),
      series,
      axes,
      scales,
      bands,
      legend: { show: false },
      cursor: { drag, points: { size: 7 } },
      hooks: {
        setCursor: [(u) => this.showLegend(u.cursor.idx)],
        setSelect: [(u) => this.selected(u)],
        draw: [() => this.drawn()],
      },
    };
    this.legendItems = legendItems;
    this.renderLegend();
    this.u = new uPlot(opts, this.data(), this.plot);
    this.el.dataset.series = String(this.variables.length);
  }

  update() {
    this.u.setData(this.data());
    this.showLegend(this.u.cursor.idx);
  }

  drawn() {
    if (this.renderStart !== null && this.renderStart !== undefined) {
      this.el.dataset.renderMs = (performance.now() - this.renderStart).toFixed(1);
      this.renderStart = null;
    }
    this.el.dataset.count = String(this.raw.x.length);
    this.options.onDrawn?.();
  }

  selected(u) {
    const { left, width } = u.select;
    if (width < 4) return;
    const a = u.posToVal(left, "x");
    const b = u.posToVal(left + width, "x");
    u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
    this.options.onSelect?.(Math.floor(a), Math.ceil(b));
  }

  renderLegend() {
    this.legendTime = h("li", { class: "chart-legend-time" });
    this.legendValues = new Map();
    replace(
      this.legend,
      this.legendTime,
      this.legendItems.map((item) => {
        const value = h("span", { class: "chart-legend-value" });
        this.legendValues.set(item.name, value);
        const swatch = h("span", { class: "chart-swatch", "aria-hidden": "true" });
        swatch.style.background = item.color;
        const button = h(
          "button",
          {
            type: "button",
            class: "chart-legend-item",
            "aria-pressed": String(!this.hidden.has(item.name)),
            title: `${label(item.name)} – ${t("charts.legend.toggle")}`,
            onclick: () => this.toggle(item, button),
          },
          swatch,
          h("span", { class: "chart-legend-name" }, label(item.name)),
          value,
        );
        return h("li", {}, button);
      }),
    );
  }

  toggle(item, button) {
    const show = this.hidden.has(item.name);
    if (show) this.hidden.delete(item.name);
    else this.hidden.add(item.name);
    button.setAttribute("aria-pressed", String(show));
    const count = this.options.band ? 3 : 1;
    for (let k = 0; k < count; k += 1) this.u.setSeries(item.idx + k, { show });
  }

  showLegend(idx) {
    if (!this.u || !this.legendItems) return;
    const data = this.u.data;
    const n = data[0].length;
    let i = idx;
    if (i === null || i === undefined) {
      // Away from the chart: the latest values.
      i = n - 1;
      while (i > 0 && this.legendItems.every((it) => data[it.idx][i] === null || data[it.idx][i] === undefined)) i -= 1;
    }
    this.legendTime.textContent = n && i >= 0 ? timeLabel(data[0][i], 0) : "";
    for (const item of this.legendItems) {
      const el = this.legendValues.get(item.name);
      const v = n && i >= 0 ? data[item.idx][i] : null;
      let text = v === null || v === undefined ? "–" : fmt(v, decimalsOf(v));
      if (this.options.band && v !== null && v !== undefined) {
        const lo = data[item.idx + 1][i];
        const hi = data[item.idx + 2][i];
        const range = lo !== null && hi !== null ? [fmt(lo, decimalsOf(v)), fmt(hi, decimalsOf(v))] : null;
        if (range && range[0] !== range[1]) text += ` (${range[0]} … ${range[1]})`;
      }
      el.textContent = ` ${text}${item.unit ? ` ${this.currentGroups.find((g) => g.unit === item.unit).unit}` : ""}`;
    }
  }

  /** Width of the plotting area in CSS pixels (the chart less its axes). */
  plotWidth() {
    if (this.u) return Math.round(this.u.bbox.width / devicePixelRatio);
    return Math.max(50, this.plot.clientWidth - 100);
  }

  fit() {
    if (!this.u) return;
    const width = Math.max(100, this.plot.clientWidth);
    const height = Math.max(120, this.plot.clientHeight);
    if (width !== this.u.width || height !== this.u.height) this.u.setSize({ width, height });
  }

  destroy() {
    this.resize.disconnect();
    this.stopTheme();
    this.u?.destroy();
    this.u = null;
  }
}

/** GET the history of ``vars`` of ``load`` in [startS, endS) with at most ``points`` buckets. */
export function fetchHistory(load, vars, startS, endS, points) {
  const query = new URLSearchParams({
    vars: vars.join(","),
    start: String(Math.floor(startS)),
    end: String(Math.ceil(endS)),
    points: String(Math.max(1, Math.min(MAX_POINTS, Math.round(points)))),
  });
  return api("GET", `/loads/${encodeURIComponent(load)}/history?${query}`);
}

/**
 * The history answer as one table: the union of the series' bucket times and per variable
 * ``{avg, min, max}`` (null where a series has no bucket). A null row is put into gaps longer
 * than a few buckets so lines break there instead of bridging missing data.
 */
export function historyTable(result, vars) {
  const times = new Set();
  for (const name of vars) for (const tt of result.series[name]?.t || []) times.add(tt);
  const sorted = [...times].sort((a, b) => a - b);
  const width = (Date.parse(result.end) - Date.parse(result.start)) / 1000 / result.points;
  const gap = Math.max(width, result.tier_resolution_s) * 2.5;
  const x = [];
  const real = [];
  for (let k = 0; k < sorted.length; k += 1) {
    if (k > 0 && sorted[k] - sorted[k - 1] > gap) {
      x.push(sorted[k - 1] + Math.max(width, result.tier_resolution_s));
      real.push(false);
    }
    x.push(sorted[k]);
    real.push(true);
  }
  const index = new Map(x.map((tt, k) => [tt, k]).filter((_, k) => real[k]));
  const columns = {};
  for (const name of vars) {
    const s = result.series[name];
    const col = { avg: x.map(() => null), min: x.map(() => null), max: x.map(() => null) };
    if (s) {
      s.t.forEach((tt, k) => {
        const j = index.get(tt);
        col.avg[j] = s.avg[k];
        col.min[j] = s.min[k];
        col.max[j] = s.max[k];
      });
    }
    columns[name] = col;
  }
  return { x, columns, real, count: sorted.length };
}

/** The [start, end] seconds of a range preset ending now. */
export function rangeWindow(range, nowS = Date.now() / 1000) {
  return [Math.floor(nowS - (RANGES[range] || RANGES.day)), Math.ceil(nowS)];
}

/**
 * Live line chart of the last five minutes of ``vars`` of ``load``, one series per variable,
 * seeded from the stored history and then fed by the live stream.
 */
export function mountLiveChart(el, app, { load, vars }) {
  const chart = new TimeChart(el, vars, { band: false, drag: false });
  el.dataset.load = load;
  let x = [];
  const columns = Object.fromEntries(vars.map((n) => [n, { avg: [] }]));
  let seeded = false;
  const pending = [];
  let stopped = false;

  function push(reading) {
    const tt = reading.timestamp_s;
    if (x.length && tt <= x[x.length - 1]) return;
    x.push(tt);
    for (const n of vars) {
      const v = reading.values[n];
      columns[n].avg.push(typeof v === "number" ? v : null);
    }
  }

  function draw() {
    const now = x.length ? Math.max(x[x.length - 1], Date.now() / 1000) : Date.now() / 1000;
    const from = now - LIVE_WINDOW_S;
    let cut = 0;
    while (cut < x.length && x[cut] < from) cut += 1;
    if (cut) {
      x = x.slice(cut);
      for (const n of vars) columns[n].avg = columns[n].avg.slice(cut);
    }
    chart.setData(x, columns, [from, now]);
  }

  const unsubscribe = live.subscribe((reading) => {
    if (reading.load !== load) return;
    if (!seeded) pending.push(reading);
    else {
      push(reading);
      draw();
    }
  });

  (async () => {
    const end = Date.now() / 1000;
    try {
      const result = await fetchHistory(load, vars, end - LIVE_WINDOW_S, end + 1, LIVE_WINDOW_S);
      if (stopped) return;
      const table = historyTable(result, vars);
      table.x.forEach((tt, k) => {
        if (!table.real[k]) return;
        x.push(tt);
        for (const n of vars) columns[n].avg.push(table.columns[n].avg[k]);
      });
    } catch (error) {
      chart.message.textContent = t("charts.failed", { detail: error.message });
    }
    if (stopped) return;
    seeded = true;
    const latest = live.latestOf(load);
    if (latest) pending.push(latest);
    pending.sort((a, b) => a.timestamp_s - b.timestamp_s).forEach(push);
    draw();
  })();

  return {
    /** Stop the chart and its subscription. */
    stop() {
      stopped = true;
      unsubscribe();
      chart.destroy();
    },
  };
}

/**
 * Requests of a chart where only the latest counts: ``run(spec, fetch, show)`` fetches, hands the
 * answer to ``show`` (which draws it and returns {report, empty}) unless a newer run began, and
 * then calls ``spec.onData(...report)`` or says in ``message`` that there is no data; a failure
 * goes to ``spec.onError`` or ``message``. The chart is ``aria-busy`` while its latest run is.
 */
function latestOnly(el, message) {
  let request = 0;
  return {
    /** Ignore the answers of every run so far. */
    cancel() {
      request += 1;
    },
    /** Fetch, then show the answer if no newer run began. */
    async run(spec, fetch, show) {
      const mine = ++request;
      el.setAttribute("aria-busy", "true");
      try {
        const answer = await fetch();
        if (mine !== request) return;
        const { report, empty } = show(answer);
        if (spec.onData) spec.onData(...report);
        else message.textContent = empty ? t("charts.nodata") : "";
      } catch (error) {
        if (mine !== request) return;
        if (spec.onError) spec.onError(error);
        else message.textContent = t("charts.failed", { detail: error.message });
      } finally {
        if (mine === request) el.removeAttribute("aria-busy");
      }
    },
  };
}

/**
 * History of several variables with min/max bands. ``spec`` = {load, vars, range} with range a
 * preset (hour, day, week, month, year) or {start, end} in seconds; ``onData(result, table)``
 * and ``onError(error)`` report each answer, ``onSelect(start, end)`` a range dragged on it.
 * Returns {stop(), chart, load(spec)}.
 */
export function mountHistoryChart(el, app, spec) {
  const chart = new TimeChart(el, spec.vars, { band: true, drag: !!spec.onSelect, onSelect: spec.onSelect });
  const requests = latestOnly(el, chart.message);

  function load(s) {
    chart.variables = s.vars;
    const [start, end] = typeof s.range === "string" ? rangeWindow(s.range) : [s.range.start, s.range.end];
    // About one bucket per pixel: full resolution however far the range is zoomed.
    const points = Math.max(50, Math.min(MAX_POINTS, chart.plotWidth()));
    el.dataset.start = String(start);
    el.dataset.end = String(end);
    el.dataset.points = String(points);
    return requests.run(
      s,
      () => fetchHistory(s.load, s.vars, start, end, points),
      (result) => {
        const arrived = performance.now();
        const table = historyTable(result, s.vars);
        el.dataset.buckets = String(table.count);
        chart.setData(table.x, table.columns, [start, end], arrived);
        return { report: [result, table, { start, end, points }], empty: !table.count };
      },
    );
  }

  load(spec);
  return {
    /** Stop the chart. */
    stop() {
      requests.cancel();
      chart.destroy();
    },
    /** Fetch and show another range or other variables. */
    load,
    chart,
  };
}

/** The [start, end] seconds of the energy periods to show: 31 days or 12 months to now. */
export function energyWindow(period, now = new Date()) {
  const first =
    period === "month"
      ? new Date(now.getFullYear(), now.getMonth() - 11, 1)
      : new Date(now.getFullYear(), now.getMonth(), now.getDate() - 30);
  return [Math.floor(first.getTime() / 1000), Math.ceil(now.getTime() / 1000)];
}

/** GET the energy per ``period`` (day: the last 31 days, month: the last 12 months). */
export function fetchEnergy(load, period) {
  const [start, end] = energyWindow(period);
  // Noon of the first day: inside the same local day or month in any nearby time zone.
  const query = new URLSearchParams({ period, start: String(start + 12 * 3600), end: String(end) });
  return api("GET", `/loads/${encodeURIComponent(load)}/energy?${query}`);
}

// The energy bars and table columns, in order: counter name, colour slot, label key.
export const ENERGY_SERIES = [
  ["kwh_imp", 0, "charts.energy.import"],
  ["kwh_exp", 1, "charts.energy.export"],
  ["kwh_imp_t1", 2, "charts.energy.t1"],
  ["kwh_imp_t2", 3, "charts.energy.t2"],
];

/** The label of an energy period's start in the site's time zone ("25 Nov", "Nov 2026"). */
export function periodLabel(iso, period, timeZone, long = false) {
  const options =
    period === "month"
      ? { month: long ? "long" : "short", year: "numeric", timeZone }
      : long
        ? { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone }
        : { day: "numeric", month: "short", timeZone };
  try {
    return dateFormat(options).format(new Date(iso));
  } catch {
    return dateFormat({ ...options, timeZone: undefined }).format(new Date(iso));
  }
}

/**
 * Energy bars per day (period "day", the last 31 days) or month ("month", the last 12):
 * import, export and import per tariff, side by side. ``spec.onData(result)`` receives the
 * answer, ``spec.onError(error)`` a failure. Returns {stop(), load(spec)}.
 */
export function mountEnergyChart(el, app, spec) {
  ensureStyles();
  el.classList.add("chart", "energy-chart");
  const plot = h("div", { class: "chart-plot" });
  const legend = h("ul", { class: "chart-legend", "aria-label": t("charts.legend") });
  const message = h("p", { class: "chart-message", role: "status" });
  replace(el, message, plot, legend);
  const requests = latestOnly(el, message);
  let u = null;
  let result = null;
  let renderStart = null;
  const hidden = new Set();
  const resize = new ResizeObserver(() => {
    if (u && (plot.clientWidth !== u.width || plot.clientHeight !== u.height)) {
      u.setSize({ width: Math.max(100, plot.clientWidth), height: Math.max(120, plot.clientHeight) });
    }
  });
  resize.observe(plot);
  const stopTheme = onThemeChange(() => result && build());

  function build() {
    u?.destroy();
    const th = theme();
    const periods = result.periods;
    // Always the whole window (31 days, 12 months), the periods logged at its right end.
    const n = Math.max(result.period === "month" ? 12 : 31, periods.length);
    const offset = n - periods.length;
    periodAt = (j) => periods[j - offset];
    const present = ENERGY_SERIES.filter(([name]) => periods.some((p) => name in p.values));
    const group = 0.8;
    const width = group / Math.max(1, present.length);
    const x = Array.from({ length: n }, (_, j) => j);
    const data = [x, ...present.map(([name]) => x.map((j) => periodAt(j)?.values[name] ?? null))];
    const firstMs = periods.length ? Date.parse(periods[0].start) : energyWindow(result.period)[1] * 1000;
    const labels = x.map((j) => {
      const p = periodAt(j);
      if (p) return periodLabel(p.start, result.period, result.timezone);
      const back = offset - j;
      const d = new Date(firstMs + 12 * 3600 * 1000);
      if (result.period === "month") d.setMonth(d.getMonth() - back, 15);
      else d.setTime(d.getTime() - back * 86400 * 1000);
      return periodLabel(d.toISOString(), result.period, result.timezone);
    });
    const series = [{}];
    present.forEach(([name, slot], k) => {
      const color = th.palette[slot];
      series.push({
        label: name,
        stroke: color,
        fill: alpha(color, 0.85),
        width: 0,
        points: { show: false },
        show: !hidden.has(name),
        paths: uPlot.paths.bars({
          size: [1, Infinity, 1],
          disp: {
            x0: { unit: 1, values: () => x.map((v) => v - group / 2 + k * width) },
            size: { unit: 1, values: () => [width] },
          },
        }),
      });
    });
    const opts = {
      width: Math.max(100, plot.clientWidth),
      height: Math.max(120, plot.clientHeight),
      series,
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(0.5, n - 0.5)] },
        y: { range: (self, min, max) => [Math.min(0, min ?? 0), Math.max(1e-3, (max ?? 1) * 1.08)] },
      },
      axes: [
        {
          stroke: th.muted,
          font: FONT,
          grid: { show: false },
          ticks: { stroke: th.line, width: 1 },
          space: 64,
          incrs: [1, 2, 3, 5, 7, 10, 14],
          values: (self, splits) =>
            splits.map((s) => (Number.isInteger(s) && labels[s] !== undefined ? labels[s] : "")),
          size: 36,
        },
        {
          label: "kWh",
          labelSize: 18,
          labelFont: FONT,
          stroke: th.muted,
          font: FONT,
          grid: { stroke: th.line, width: 1 },
          ticks: { stroke: th.line, width: 1 },
          values: numberAxisValues,
          size: axisSize,
        },
      ],
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false }, y: false },
      hooks: {
        setCursor: [(self) => showLegend(self.cursor.idx)],
        draw: [
          () => {
            if (renderStart !== null) el.dataset.renderMs = (performance.now() - renderStart).toFixed(1);
            renderStart = null;
            el.dataset.count = String(periods.length);
          },
        ],
      },
    };
    legendItems = present.map(([name, slot, key], k) => ({ name, key, color: th.palette[slot], idx: k + 1 }));
    renderLegend();
    u = new uPlot(opts, data, plot);
    el.dataset.series = String(present.length);
    showLegend(null);
  }

  let legendItems = [];
  let periodAt = () => undefined;
  let legendTime = null;
  const legendValues = new Map();

  function renderLegend() {
    legendTime = h("li", { class: "chart-legend-time" });
    replace(
      legend,
      legendTime,
      legendItems.map((item) => {
        const value = h("span", { class: "chart-legend-value" });
        legendValues.set(item.name, value);
        const swatch = h("span", { class: "chart-swatch", "aria-hidden": "true" });
        swatch.style.background = item.color;
        const button = h(
          "button",
          {
            type: "button",
            class: "chart-legend-item",
            "aria-pressed": String(!hidden.has(item.name)),
            title: `${label(item.name)} – ${t("charts.legend.toggle")}`,
            onclick: () => {
              const show = hidden.has(item.name);
              if (show) hidden.delete(item.name);
              else hidden.add(item.name);
              button.setAttribute("aria-pressed", String(show));
              u.setSeries(item.idx, { show });
            },
          },
          swatch,
          h("span", { class: "chart-legend-name" }, t(item.key)),
          value,
        );
        return h("li", {}, button);
      }),
    );
  }

  function showLegend(idx) {
    if (!u || !result) return;
    const p = idx === null || idx === undefined ? result.periods[result.periods.length - 1] : periodAt(idx);
    legendTime.textContent = p ? periodLabel(p.start, result.period, result.timezone, true) : "";
    for (const item of legendItems) {
      const v = p ? p.values[item.name] : undefined;
      legendValues.get(item.name).textContent = ` ${v === undefined ? "–" : fmt(v, 2)} kWh`;
    }
  }

  function load(s) {
    return requests.run(
      s,
      () => fetchEnergy(s.load, s.period),
      (answer) => {
        renderStart = performance.now();
        result = answer;
        build();
        return { report: [answer], empty: !answer.periods.length };
      },
    );
  }

  load(spec);
  return {
    /** Stop the chart. */
    stop() {
      requests.cancel();
      resize.disconnect();
      stopTheme();
      u?.destroy();
      u = null;
    },
    /** Fetch and show another load or period. */
    load,
  };
}

/** CSV text (RFC 4180: "," separated, "." decimals, CRLF) of a header row and data rows. */
export function toCsv(columns, rows) {
  const cell = (v) => {
    if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "";
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** Let the browser save ``csvText`` as ``filename``. */
export function downloadCsv(filename, csvText) {
  const url = URL.createObjectURL(new Blob([csvText], { type: "text/csv;charset=utf-8" }));
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A time (seconds) as ISO 8601 UTC ("2026-11-25T12:00:00Z"). */
export function isoUtc(seconds) {
  return new Date(Math.round(seconds * 1000)).toISOString().replace(".000Z", "Z");
}

/** A compact UTC time for file names ("20261125T120000Z"). */
export function fileTime(seconds) {
  return isoUtc(seconds).replace(/[-:]/g, "");
}
