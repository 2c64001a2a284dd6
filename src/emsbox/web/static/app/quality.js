// Power quality: THD of voltage (L-N and L-L) and current per phase, live, with the day's
// history of the same values (harmonics 2…31 after IEC 61000-4-7, as the meter measures them).

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import * as live from "./live.js";
import { formatValue, label } from "./variables.js";
import { loadTabs, mountWidget, thdBars } from "./widgets.js";

const STEMS = ["thd_v", "thd_i"];

/** The power-quality page: ``#/quality?load=<name>``. */
export async function render(main, app, params) {
  const load = params.get("load") || app.loads[0]?.name;
  const bars = h("div", { class: "widget-body" });
  const table = h("div", { class: "scroll" });
  const chart = h("div", { class: "widget-body" });
  let charted = null;

  function draw(values) {
    replace(bars, thdBars(values));
    const phases = ["l1", "l2", "l3", "l12", "l23", "l31"].filter((p) => STEMS.some((s) => `${s}_${p}` in values));
    replace(
      table,
      h(
        "table",
        { class: "phases thd-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, t("dash.phase")),
            phases.map((p) => h("th", {}, p.length === 3 ? `L${p[1]}-L${p[2]}` : p.toUpperCase())),
          ),
        ),
        h(
          "tbody",
          {},
          STEMS.map((s) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, `${t(`var.${s}`)} (%)`),
              phases.map((p) =>
                h(
                  "td",
                  { dataset: { variable: `${s}_${p}` } },
                  `${s}_${p}` in values ? formatValue(`${s}_${p}`, values[`${s}_${p}`]) : "",
                ),
              ),
            ),
          ),
        ),
      ),
    );
    if (!charted) {
      // The chart shows the voltage and current THD of L1 (or the first phase the load has).
      const vars = ["thd_v_l1", "thd_i_l1"].filter((n) => n in values);
      if (vars.length) charted = mountWidget(chart, app, { kind: "history_chart", load, vars, range: "day" });
    }
  }

  replace(
    main,
    loadTabs(app, "quality", load),
    h("p", { class: "muted" }, t("quality.intro")),
    h(
      "div",
      { class: "widgets" },
      h("section", { class: "widget" }, h("header", {}, h("h2", {}, t("quality.now"))), bars),
      h("section", { class: "widget wide" }, h("header", {}, h("h2", {}, t("quality.table"))), table),
      h(
        "section",
        { class: "widget wide" },
        h("header", {}, h("h2", {}, t("quality.history", { what: `${label("thd_v_l1")}, ${label("thd_i_l1")}` }))),
        chart,
      ),
    ),
  );
  const last = live.latestOf(load);
  if (last) draw(last.values);
  else replace(bars, h("p", { class: "muted" }, t("dash.waiting")));
  const stop = live.subscribe((reading) => {
    if (reading.load === load) draw(reading.values);
  });
  return () => {
    stop();
    charted?.stop();
  };
}
