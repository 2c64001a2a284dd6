// The default dashboard of each load: live value tiles and a per-phase table, updated from the
// live stream (server-sent events) as each reading arrives, at least every second.

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { LANGUAGES, language, num, setLanguage, t } from "./i18n.js";

// Tiles: label key, variable, unit, decimals, scale (W → kW).
const TILES = [
  ["dash.power", "p_sys", "kW", 2, 1e-3],
  ["dash.reactive", "q_sys", "kvar", 2, 1e-3],
  ["dash.apparent", "s_sys", "kVA", 2, 1e-3],
  ["dash.pf", "pf_sys", "", 3, 1],
  ["dash.voltage", "v_ln_sys", "V", 1, 1],
  ["dash.current", "i_sys", "A", 2, 1],
  ["dash.frequency", "freq", "Hz", 2, 1],
  ["dash.import", "kwh_imp", "kWh", 1, 1],
  ["dash.export", "kwh_exp", "kWh", 1, 1],
];
// Per-phase rows: label key, variable prefix, unit, decimals, scale.
const PHASE_ROWS = [
  ["dash.voltage", "v", "V", 1, 1],
  ["dash.current", "i", "A", 2, 1],
  ["dash.power", "p", "kW", 2, 1e-3],
  ["dash.pf", "pf", "", 3, 1],
  ["dash.thd_v", "thd_v", "%", 1, 1],
  ["dash.thd_i", "thd_i", "%", 1, 1],
];
const PHASES = ["l1", "l2", "l3"];

/** Show the dashboard; ``ctx`` holds the user (``me``), the site name and ``boot``. */
export async function showDashboard(root, ctx) {
  const loads = await api("GET", "/loads");
  let selected = loads.length ? loads[0].name : null;
  const latest = {};
  let source = null;

  const status = h("p", { class: "status", role: "status" }, t("dash.waiting"));
  const content = h("section", { class: "dashboard" });

  function tile([label, name, unit, decimals, scale], values) {
    const value = values[name];
    return h(
      "div",
      { class: "tile", dataset: { variable: name } },
      h("span", { class: "tile-label" }, t(label)),
      h(
        "span",
        { class: "tile-value" },
        h("output", {}, num(typeof value === "number" ? value * scale : NaN, decimals)),
        unit ? h("small", {}, ` ${unit}`) : null,
      ),
    );
  }

  function phaseTable(values) {
    const phases = PHASES.filter((p) => `v_${p}` in values || `i_${p}` in values);
    if (!phases.length) return null;
    return h(
      "table",
      { class: "phases" },
      h("caption", {}, t("dash.phases")),
      h("thead", {}, h("tr", {}, h("th", {}, t("dash.phase")), phases.map((p) => h("th", {}, p.toUpperCase())))),
      h(
        "tbody",
        {},
        PHASE_ROWS.filter(([, prefix]) => phases.some((p) => `${prefix}_${p}` in values)).map(
          ([label, prefix, unit, decimals, scale]) =>
            h(
              "tr",
              {},
              h("th", {}, unit ? `${t(label)} (${unit})` : t(label)),
              phases.map((p) => {
                const value = values[`${prefix}_${p}`];
                return h(
                  "td",
                  { dataset: { variable: `${prefix}_${p}` } },
                  num(typeof value === "number" ? value * scale : NaN, decimals),
                );
              }),
            ),
        ),
      ),
    );
  }

  function draw() {
    const reading = latest[selected];
    const load = loads.find((l) => l.name === selected);
    if (!reading) {
      replace(content, load && !load.healthy ? h("p", { class: "warning" }, t("dash.unhealthy")) : null);
      return;
    }
    const values = reading.values;
    replace(
      content,
      h("div", { class: "tiles" }, TILES.filter(([, name]) => name in values).map((x) => tile(x, values))),
      phaseTable(values),
    );
    const time = new Date(reading.timestamp_s * 1000).toLocaleTimeString(language() === "it" ? "it-IT" : "en-GB");
    status.textContent = t("dash.updated", { time });
    status.classList.remove("offline");
  }

  function connect() {
    source = new EventSource("/api/v1/stream");
    source.addEventListener("reading", (event) => {
      const reading = JSON.parse(event.data);
      latest[reading.load] = reading;
      if (reading.load === selected) draw();
    });
    source.onerror = () => {
      status.textContent = t("dash.offline");
      status.classList.add("offline");
    };
  }

  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": t("nav.loads") },
    loads.map((load) =>
      h(
        "button",
        {
          type: "button",
          class: "tab",
          "aria-pressed": String(load.name === selected),
          dataset: { load: load.name },
          onclick: (event) => {
            selected = load.name;
            for (const b of tabs.querySelectorAll(".tab")) b.setAttribute("aria-pressed", String(b === event.currentTarget));
            draw();
          },
        },
        load.name,
      ),
    ),
  );

  const languages = h(
    "select",
    {
      id: "language",
      "aria-label": t("nav.language"),
      onchange: async (event) => {
        await api("PUT", "/me/preferences", { language: event.target.value });
        await setLanguage(event.target.value);
        source?.close();
        showDashboard(root, ctx);
      },
    },
    Object.entries(LANGUAGES).map(([code, label]) => h("option", { value: code, selected: code === language() }, label)),
  );

  const logout = h(
    "button",
    {
      type: "button",
      class: "secondary",
      id: "logout",
      onclick: async () => {
        source?.close();
        await api("POST", "/logout");
        ctx.boot();
      },
    },
    t("nav.logout"),
  );

  replace(
    root,
    h(
      "header",
      { class: "topbar" },
      h("h1", {}, ctx.site),
      h("div", { class: "user" }, h("span", { class: "who" }, ctx.me.name), languages, logout),
    ),
    h("main", {}, tabs, status, content),
  );
  draw();
  connect();
}
