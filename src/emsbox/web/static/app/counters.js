// The counters page: every energy and hour counter of a load, live, and the partial counters'
// start / stop / reset for installers and admins (viewers see the values only).

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import * as live from "./live.js";
import { display, formatValue, label } from "./variables.js";
import { loadTabs } from "./widgets.js";

// Groups of counters: title key and names (those the load's wiring lacks are left out).
const GROUPS = [
  [
    "counters.active",
    [
      "kwh_imp",
      "kwh_exp",
      "kwh_imp_t1",
      "kwh_imp_t2",
      "kwh_imp_l1",
      "kwh_imp_l2",
      "kwh_imp_l3",
      "kwh_exp_l1",
      "kwh_exp_l2",
      "kwh_exp_l3",
      "kwh_q1",
      "kwh_q2",
      "kwh_q3",
      "kwh_q4",
    ],
  ],
  [
    "counters.reactive",
    [
      "kvarh_imp",
      "kvarh_exp",
      "kvarh_imp_l1",
      "kvarh_imp_l2",
      "kvarh_imp_l3",
      "kvarh_exp_l1",
      "kvarh_exp_l2",
      "kvarh_exp_l3",
      "kvarh_q1",
      "kvarh_q2",
      "kvarh_q3",
      "kvarh_q4",
    ],
  ],
  ["counters.apparent", ["kvah", "kvah_q1", "kvah_q2", "kvah_q3", "kvah_q4"]],
  [
    "counters.partial",
    [
      "kwh_imp_partial",
      "kwh_exp_partial",
      "kvarh_imp_partial",
      "kvarh_exp_partial",
      "kvah_partial",
      "hours_imp_partial",
      "hours_exp_partial",
    ],
  ],
  ["counters.hours", ["hours_imp", "hours_exp", "hours_on"]],
];

/** A confirmation in a modal dialog; resolves to true when confirmed. */
export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm" },
      h(
        "form",
        { method: "dialog" },
        h("p", {}, message),
        h(
          "div",
          { class: "actions" },
          h("button", { value: "cancel", class: "secondary" }, t("common.cancel")),
          h("button", { value: "ok", class: "primary" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** The counters page: ``#/counters?load=<name>``. */
export async function render(main, app, params) {
  const load = params.get("load") || app.loads[0]?.name;
  const message = h("p", { class: "status", role: "status" });
  const content = h("div", { class: "counter-groups" });
  const state = h("p", { class: "partial-state" });
  // A reading measured before the last command's answer shows the counters as they were;
  // it is skipped so the values do not jump back for a moment.
  let notBefore = 0;

  function draw(values) {
    state.textContent = values.partial_running ? t("counters.running") : t("counters.stopped");
    state.dataset.running = String(Boolean(values.partial_running));
    state.append(` · ${t("counters.tariff", { n: values.tariff ?? 1 })}`);
    replace(
      content,
      GROUPS.map(([title, names]) => {
        const present = names.filter((n) => n in values);
        if (!present.length) return null;
        return h(
          "section",
          { class: "card counter-group" },
          h("h2", {}, t(title)),
          h(
            "table",
            { class: "counters-table" },
            h(
              "tbody",
              {},
              present.map((n) =>
                h(
                  "tr",
                  {},
                  h("th", { scope: "row" }, label(n)),
                  h("td", { dataset: { variable: n } }, formatValue(n, values[n])),
                  h("td", { class: "unit" }, display(n).unit),
                ),
              ),
            ),
          ),
        );
      }),
    );
  }

  async function command(action) {
    if (action === "reset" && !(await confirmDialog(t("counters.reset_confirm", { load }), t("counters.reset"))))
      return;
    message.textContent = "…";
    message.classList.remove("error");
    try {
      const result = await api("POST", `/loads/${encodeURIComponent(load)}/partial`, { action });
      notBefore = result.timestamp_s;
      draw({ ...(live.latestOf(load)?.values || {}), ...result.values });
      message.textContent = t(`counters.done_${action}`);
    } catch (error) {
      message.textContent = error.message;
      message.classList.add("error");
    }
  }

  const controls = app.can("installer")
    ? h(
        "div",
        { class: "actions partial-controls" },
        ["start", "stop", "reset"].map((action) =>
          h(
            "button",
            { type: "button", class: `secondary partial-action`, dataset: { action }, onclick: () => command(action) },
            t(`counters.${action}`),
          ),
        ),
      )
    : null;

  replace(
    main,
    loadTabs(app, "counters", load),
    h("section", { class: "card partial" }, h("h2", {}, t("counters.partial_title")), state, controls, message),
    content,
  );
  const last = live.latestOf(load);
  if (last) draw(last.values);
  else replace(content, h("p", { class: "muted" }, t("dash.waiting")));
  return live.subscribe((reading) => {
    if (reading.load === load && reading.timestamp_s >= notBefore) draw(reading.values);
  });
}
