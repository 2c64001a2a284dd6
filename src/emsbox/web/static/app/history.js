// The History page (#/history?load=&vars=&range=&start=&end=&zoom=): logged values of a load over
// a preset or chosen range, zoomable by dragging, exportable as CSV; its state lives in the hash.

import { api } from "./api.js";
import {
  RANGES,
  chartable,
  downloadCsv,
  fileTime,
  isoUtc,
  mountHistoryChart,
  mountLiveChart,
  toCsv,
  unitOf,
} from "./charts.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import * as live from "./live.js";
import { label } from "./variables.js";

const PRESETS = ["live", "hour", "day", "week", "month", "year", "custom"];
// The order of the unit groups in the variable chooser.
const UNIT_ORDER = ["W", "var", "VA", "V", "A", "Hz", "", "%", "kWh", "kvarh", "kVAh", "h"];
const DEFAULT_VARS = ["p_sys"];

/** The variables a load has, from its latest reading (live stream, else GET /now). */
async function variablesOf(load) {
  let reading = live.latestOf(load);
  if (!reading) reading = await api("GET", `/loads/${encodeURIComponent(load)}/now`);
  return Object.entries(reading.values)
    .filter(([name, value]) => chartable(name, value))
    .map(([name]) => name);
}

/** A datetime-local input's value (local time) of epoch seconds. */
function localInput(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A resolution in seconds as words ("1 s", "15 min", "1 h"). */
function resolution(seconds) {
  if (seconds % 3600 === 0) return t("charts.res.h", { n: seconds / 3600 });
  if (seconds % 60 === 0) return t("charts.res.min", { n: seconds / 60 });
  return t("charts.res.s", { n: seconds });
}

/** Show the History page. */
export async function render(main, app, params) {
  const loadNames = app.loads.map((l) => l.name);
  if (!loadNames.length) {
    replace(main, h("h2", {}, t("charts.history.title")), h("p", { class: "empty" }, t("charts.noloads")));
    return null;
  }
  const nowS = () => Math.floor(Date.now() / 1000);
  const state = {
    load: loadNames.includes(params.get("load")) ? params.get("load") : loadNames[0],
    vars: (params.get("vars") || "").split(",").filter(Boolean),
    range: PRESETS.includes(params.get("range")) ? params.get("range") : "hour",
    start: Number(params.get("start")) || null,
    end: Number(params.get("end")) || null,
    zoom: null,
  };
  const zoom = (params.get("zoom") || "").split(",").map(Number);
  if (zoom.length === 2 && zoom.every((v) => Number.isFinite(v) && v > 0) && zoom[0] < zoom[1]) state.zoom = zoom;
  if (state.range === "custom" && !(state.start && state.end)) {
    state.end = nowS();
    state.start = state.end - RANGES.day;
  }

  let available = [];
  let widget = null;
  let shown = null; // {result, table, start, end} of the chart on screen

  const heading = h("h2", {}, t("charts.history.title"));
  const loadSelect = h(
    "select",
    { id: "history-load", onchange: () => changeLoad(loadSelect.value) },
    loadNames.map((name) => h("option", { value: name, selected: name === state.load }, name)),
  );
  const rangeButtons = PRESETS.map((range) =>
    h(
      "button",
      {
        type: "button",
        class: "tab",
        dataset: { range },
        "aria-pressed": String(range === state.range),
        onclick: () => chooseRange(range),
      },
      t(`charts.range.${range}`),
    ),
  );
  const fromInput = h("input", { type: "datetime-local", id: "history-from", required: true, step: 60 });
  const toInput = h("input", { type: "datetime-local", id: "history-to", required: true, step: 60 });
  const customForm = h(
    "form",
    {
      class: "history-custom",
      onsubmit: (event) => {
        event.preventDefault();
        const start = Math.floor(new Date(fromInput.value).getTime() / 1000);
        const end = Math.floor(new Date(toInput.value).getTime() / 1000);
        if (!Number.isFinite(start) || !Number.isFinite(end)) return;
        state.start = start;
        state.end = end;
        state.zoom = null;
        show();
      },
    },
    h("div", {}, h("label", { for: "history-from" }, t("charts.history.from")), fromInput),
    h("div", {}, h("label", { for: "history-to" }, t("charts.history.to")), toInput),
    h("button", { type: "submit", class: "primary", id: "history-apply" }, t("charts.history.apply")),
  );
  const varsSummary = h("summary", {});
  const varsBody = h("div", { class: "history-vars-body" });
  const varsBox = h("details", { class: "history-vars" }, varsSummary, varsBody);
  const status = h("p", { class: "status history-status", role: "status" });
  const alert = h("p", { class: "form-error", role: "alert", id: "history-error" });
  const resetZoom = h(
    "button",
    {
      type: "button",
      id: "history-reset-zoom",
      onclick: () => {
        state.zoom = null;
        show();
      },
    },
    t("charts.history.resetzoom"),
  );
  const exportButton = h(
    "button",
    { type: "button", id: "history-export", onclick: () => exportCsv() },
    t("charts.export"),
  );
  const chartEl = h("div", {
    class: "history-chart",
    id: "history-chart",
    role: "group",
    "aria-label": t("charts.history.chart"),
  });
  const hint = h("p", { class: "hint" });

  replace(
    main,
    heading,
    h(
      "div",
      { class: "chart-controls" },
      h("div", { class: "chart-field" }, h("label", { for: "history-load" }, t("charts.load")), loadSelect),
      h(
        "div",
        { class: "chart-field chart-ranges", role: "group", "aria-labelledby": "history-range-label" },
        h("span", { class: "chart-field-label", id: "history-range-label" }, t("charts.range")),
        h("div", { class: "tabs" }, rangeButtons),
      ),
    ),
    customForm,
    varsBox,
    h("div", { class: "chart-toolbar" }, status, h("div", { class: "chart-buttons" }, resetZoom, exportButton)),
    alert,
    chartEl,
    hint,
  );

  function writeHash() {
    const p = new URLSearchParams({ load: state.load, vars: state.vars.join(","), range: state.range });
    if (state.range === "custom") {
      p.set("start", String(state.start));
      p.set("end", String(state.end));
    }
    if (state.zoom) p.set("zoom", state.zoom.join(","));
    history.replaceState(null, "", `#/history?${p}`);
  }

  function renderVars() {
    const groups = new Map();
    for (const name of available) {
      const unit = unitOf(name);
      if (!groups.has(unit)) groups.set(unit, []);
      groups.get(unit).push(name);
    }
    const units = [...groups.keys()].sort((a, b) => UNIT_ORDER.indexOf(a) - UNIT_ORDER.indexOf(b));
    // The chooser's order is the chart's: colours and axes do not depend on the clicks.
    available = units.flatMap((unit) => groups.get(unit));
    state.vars = available.filter((n) => state.vars.includes(n));
    replace(
      varsBody,
      units.map((unit) =>
        h(
          "fieldset",
          { class: "history-unit" },
          h("legend", {}, unit || t("charts.unit.none")),
          groups.get(unit).map((name) =>
            h(
              "label",
              { class: "check", for: `var-${name}` },
              h("input", {
                type: "checkbox",
                id: `var-${name}`,
                value: name,
                checked: state.vars.includes(name),
                onchange: (event) => toggleVar(name, event.target),
              }),
              h("span", {}, label(name), " ", h("code", {}, name)),
            ),
          ),
        ),
      ),
    );
    summarizeVars();
  }

  function summarizeVars() {
    replace(
      varsSummary,
      t("charts.history.variables", { n: state.vars.length }),
      ": ",
      h("span", { class: "muted" }, state.vars.map((n) => label(n)).join(", ")),
    );
  }

  let varsTimer = null;
  function toggleVar(name, box) {
    if (box.checked) state.vars = [...state.vars, name];
    else if (state.vars.length > 1) state.vars = state.vars.filter((n) => n !== name);
    else box.checked = true; // at least one variable stays chosen
    state.vars = available.filter((n) => state.vars.includes(n));
    summarizeVars();
    clearTimeout(varsTimer);
    varsTimer = setTimeout(() => {
      state.zoom = null;
      show();
    }, 250);
  }

  function chooseRange(range) {
    state.range = range;
    state.zoom = null;
    if (range === "custom" && !(state.start && state.end)) {
      state.end = nowS();
      state.start = state.end - RANGES.day;
    }
    show();
  }

  async function changeLoad(load) {
    state.load = load;
    state.zoom = null;
    await loadVariables();
    show();
  }

  async function loadVariables() {
    alert.textContent = "";
    try {
      available = await variablesOf(state.load);
    } catch (error) {
      available = [];
      alert.textContent = error.message;
    }
    const kept = state.vars.filter((n) => available.includes(n));
    state.vars = kept.length ? kept : DEFAULT_VARS.filter((n) => available.includes(n));
    if (!state.vars.length && available.length) state.vars = [available[0]];
    renderVars();
  }

  function stopWidget() {
    widget?.stop();
    widget = null;
    shown = null;
  }

  function show() {
    for (const b of rangeButtons) b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    customForm.hidden = state.range !== "custom";
    if (state.range === "custom") {
      fromInput.value = localInput(state.start);
      toInput.value = localInput(state.end);
    }
    resetZoom.hidden = !state.zoom;
    exportButton.disabled = true;
    alert.textContent = "";
    writeHash();
    stopWidget();
    chartEl.replaceChildren();
    delete chartEl.dataset.renderMs;
    delete chartEl.dataset.count;
    delete chartEl.dataset.buckets;
    chartEl.classList.remove("no-data");
    status.classList.remove("warning");
    if (!state.vars.length) {
      status.textContent = t("charts.history.novars");
      return;
    }
    if (state.range === "live") {
      exportButton.hidden = true;
      hint.textContent = t("charts.history.livehint");
      status.textContent = t("charts.history.live");
      widget = mountLiveChart(chartEl, app, { load: state.load, vars: state.vars });
      return;
    }
    exportButton.hidden = false;
    hint.textContent = t("charts.history.zoomhint");
    status.textContent = t("charts.loading");
    const range = state.zoom
      ? { start: state.zoom[0], end: state.zoom[1] }
      : state.range === "custom"
        ? { start: state.start, end: state.end }
        : state.range;
    widget = mountHistoryChart(chartEl, app, {
      load: state.load,
      vars: state.vars,
      range,
      onSelect: (start, end) => {
        if (end - start < 2) return;
        state.zoom = [start, end];
        show();
      },
      onData: (result, table, window) => {
        shown = { result, table, vars: [...state.vars], load: state.load, ...window };
        const empty = table.count === 0;
        chartEl.classList.toggle("no-data", empty);
        status.classList.toggle("warning", empty);
        exportButton.disabled = empty;
        status.textContent = empty
          ? t("charts.nodata")
          : t("charts.history.summary", { count: table.count, resolution: resolution(result.tier_resolution_s) });
      },
      onError: (error) => {
        status.textContent = "";
        alert.textContent = t("charts.failed", { detail: error.message });
      },
    });
  }

  function exportCsv() {
    if (!shown) return;
    const { table, vars, load, start, end } = shown;
    const columns = ["time (UTC)"];
    for (const name of vars) {
      const unit = unitOf(name);
      for (const stat of ["avg", "min", "max"]) columns.push(unit ? `${name} ${stat} (${unit})` : `${name} ${stat}`);
    }
    const rows = [];
    table.x.forEach((tt, k) => {
      if (!table.real[k]) return;
      const row = [isoUtc(tt)];
      for (const name of vars) {
        const c = table.columns[name];
        row.push(c.avg[k], c.min[k], c.max[k]);
      }
      rows.push(row);
    });
    downloadCsv(`${load}-history-${fileTime(start)}-${fileTime(end)}.csv`, toCsv(columns, rows));
  }

  await loadVariables();
  show();
  return () => {
    clearTimeout(varsTimer);
    stopWidget();
  };
}
