// The Energy page (#/energy?load=&period=day|month): energy per day or month as bars and as a
// table (import, export, import per tariff), with the table exportable as CSV.

import {
  ENERGY_SERIES,
  downloadCsv,
  fileTime,
  isoUtc,
  mountEnergyChart,
  periodLabel,
  toCsv,
  unitOf,
} from "./charts.js";
import { h, replace } from "./dom.js";
import { num, t } from "./i18n.js";

const PERIODS = ["day", "month"];
// Table columns: counter name, heading key.
const COLUMNS = ENERGY_SERIES.map(([name, , key]) => [name, key]);

/** Show the Energy page. */
export async function render(main, app, params) {
  const loadNames = app.loads.map((l) => l.name);
  if (!loadNames.length) {
    replace(main, h("h2", {}, t("charts.energy.title")), h("p", { class: "empty" }, t("charts.noloads")));
    return null;
  }
  const state = {
    load: loadNames.includes(params.get("load")) ? params.get("load") : loadNames[0],
    period: PERIODS.includes(params.get("period")) ? params.get("period") : "day",
  };
  let widget = null;
  let shown = null;

  const loadSelect = h(
    "select",
    {
      id: "energy-load",
      onchange: () => {
        state.load = loadSelect.value;
        show();
      },
    },
    loadNames.map((name) => h("option", { value: name, selected: name === state.load }, name)),
  );
  const periodButtons = PERIODS.map((period) =>
    h(
      "button",
      {
        type: "button",
        class: "tab",
        dataset: { period },
        "aria-pressed": String(period === state.period),
        onclick: () => {
          state.period = period;
          show();
        },
      },
      t(`charts.period.${period}`),
    ),
  );
  const status = h("p", { class: "status", role: "status" });
  const alert = h("p", { class: "form-error", role: "alert", id: "energy-error" });
  const exportButton = h(
    "button",
    { type: "button", id: "energy-export", onclick: () => exportCsv() },
    t("charts.export"),
  );
  const chartEl = h("div", {
    class: "energy-chart-box",
    id: "energy-chart",
    role: "group",
    "aria-label": t("charts.energy.chart"),
  });
  const tableBox = h("div", {
    class: "chart-table-wrap",
    tabindex: "0",
    role: "region",
    "aria-label": t("charts.energy.table"),
  });

  replace(
    main,
    h("h2", {}, t("charts.energy.title")),
    h(
      "div",
      { class: "chart-controls" },
      h("div", { class: "chart-field" }, h("label", { for: "energy-load" }, t("charts.load")), loadSelect),
      h(
        "div",
        { class: "chart-field chart-ranges", role: "group", "aria-labelledby": "energy-period-label" },
        h("span", { class: "chart-field-label", id: "energy-period-label" }, t("charts.period")),
        h("div", { class: "tabs" }, periodButtons),
      ),
    ),
    h("div", { class: "chart-toolbar" }, status, h("div", { class: "chart-buttons" }, exportButton)),
    alert,
    chartEl,
    tableBox,
  );

  function table(result) {
    const last = result.periods.length - 1;
    const present = COLUMNS.filter(([name]) => result.periods.some((p) => name in p.values));
    const rows = result.periods
      .map((p, k) => {
        const running = !p.complete && k === last;
        const note = running ? t("charts.energy.running") : p.complete ? null : t("charts.energy.incomplete");
        return h(
          "tr",
          { class: running ? "running" : p.complete ? null : "incomplete", dataset: { start: p.start } },
          h(
            "th",
            { scope: "row" },
            periodLabel(p.start, result.period, result.timezone, true),
            note ? h("span", { class: "chart-note" }, ` (${note})`) : null,
          ),
          present.map(([name]) => h("td", { dataset: { variable: name } }, num(p.values[name], 2))),
        );
      })
      .reverse(); // newest first
    return h(
      "table",
      { class: "chart-table", id: "energy-table" },
      h(
        "caption",
        {},
        t(result.period === "month" ? "charts.energy.caption.month" : "charts.energy.caption.day", {
          timezone: result.timezone,
        }),
      ),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t(`charts.period.${result.period}`)),
          present.map(([, key]) => h("th", { scope: "col" }, `${t(key)} (kWh)`)),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  function show() {
    for (const b of periodButtons) b.setAttribute("aria-pressed", String(b.dataset.period === state.period));
    history.replaceState(null, "", `#/energy?${new URLSearchParams(state)}`);
    alert.textContent = "";
    status.textContent = t("charts.loading");
    status.classList.remove("warning");
    exportButton.disabled = true;
    shown = null;
    const spec = {
      load: state.load,
      period: state.period,
      onData: (result) => {
        shown = result;
        const empty = result.periods.length === 0;
        status.textContent = empty ? t("charts.nodata") : t("charts.energy.summary", { n: result.periods.length });
        chartEl.classList.toggle("no-data", empty);
        status.classList.toggle("warning", empty);
        exportButton.disabled = empty;
        replace(tableBox, empty ? null : table(result));
      },
      onError: (error) => {
        status.textContent = "";
        alert.textContent = t("charts.failed", { detail: error.message });
        replace(tableBox);
      },
    };
    if (widget) widget.load(spec);
    else widget = mountEnergyChart(chartEl, app, spec);
  }

  function exportCsv() {
    if (!shown) return;
    const names = ENERGY_SERIES.map(([name]) => name).filter((name) => shown.periods.some((p) => name in p.values));
    const columns = ["start (UTC)", "end (UTC)", "complete", ...names.map((name) => `${name} (${unitOf(name)})`)];
    const rows = shown.periods.map((p) => [
      isoUtc(Date.parse(p.start) / 1000),
      isoUtc(Date.parse(p.end) / 1000),
      String(p.complete),
      ...names.map((name) => p.values[name]),
    ]);
    const first = Date.parse(shown.periods[0].start) / 1000;
    downloadCsv(`${shown.load}-energy-${shown.period}-${fileTime(first)}.csv`, toCsv(columns, rows));
  }

  show();
  return () => widget?.stop();
}
