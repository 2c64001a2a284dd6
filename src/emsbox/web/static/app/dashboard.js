// Dashboards: a default one per load (main values, gauges, live power chart, per-phase table)
// and the user's own, arranged from widgets and saved on the device per user
// (``dashboards`` of GET/PUT /api/v1/me/preferences).

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime, t } from "./i18n.js";
import * as live from "./live.js";
import { variable, label } from "./variables.js";
import { KINDS, PERIODS, RANGES, mountWidget, widgetTitle } from "./widgets.js";

/** The default dashboard of a load. */
function defaultWidgets(load) {
  return [
    { kind: "tiles", load },
    { kind: "gauge", load, vars: ["p_sys"] },
    { kind: "gauge", load, vars: ["pf_sys"] },
    { kind: "live_chart", load, vars: ["p_sys", "q_sys"] },
    { kind: "phases", load },
  ];
}

/** The default dashboard of the site: every load at a glance, the main load's power and energy. */
function siteWidgets(app) {
  const main = app.loads[0]?.name;
  return [
    { kind: "overview" },
    ...(main
      ? [
          { kind: "live_chart", load: main, vars: ["p_sys"] },
          { kind: "energy_chart", load: main, period: "day" },
        ]
      : []),
  ];
}

/** The dashboard page: the site's (``#/dashboard``), a load's (``?load=<name>``) or the user's own (``?board=<index>``). */
export async function render(main, app, params) {
  const boards = structuredClone(app.preferences.dashboards || []);
  const board = params.has("board") ? Number(params.get("board")) : null;
  const own = board !== null && boards[board] ? boards[board] : null;
  const load = own ? null : params.get("load");
  let editing = params.get("edit") === "1" && own !== null;
  let mounted = [];
  let stopForm = null; // the widget form's wait for a load's first reading

  const status = h("p", { class: "status", role: "status" }, t("dash.waiting"));
  const showUpdated = (reading) => {
    status.textContent = t("dash.updated", { time: dateTime(reading.timestamp_s, { timeStyle: "medium" }) });
  };
  const known = live.latestOf(load);
  if (known) showUpdated(known);
  const stopStatus = live.subscribe((reading) => {
    if (!load || reading.load === load) showUpdated(reading);
  });

  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": t("dash.boards") },
    h(
      "a",
      { class: "tab site", href: "#/dashboard", dataset: { site: "" }, "aria-pressed": String(!own && !load) },
      app.site,
    ),
    app.loads.map((l) =>
      h(
        "a",
        {
          class: "tab",
          href: `#/dashboard?load=${encodeURIComponent(l.name)}`,
          dataset: { load: l.name },
          "aria-pressed": String(!own && l.name === load),
        },
        l.name,
      ),
    ),
    boards.map((b, i) =>
      h(
        "a",
        {
          class: "tab own",
          href: `#/dashboard?board=${i}`,
          dataset: { board: i },
          "aria-pressed": String(own !== null && i === board),
        },
        b.name,
      ),
    ),
    h("button", { type: "button", class: "tab add-board", onclick: addBoard }, `+ ${t("dash.new_board")}`),
  );
  const grid = h("div", { class: "widgets" });
  const tools = h("div", { class: "board-tools" });

  async function save() {
    await app.savePreferences({ dashboards: boards });
  }

  async function addBoard() {
    boards.push({
      name: t("dash.board_name", { n: boards.length + 1 }),
      widgets: [{ kind: "tiles", load: app.loads[0]?.name || "main" }],
    });
    try {
      await save();
    } catch (error) {
      boards.pop();
      status.textContent = error.message;
      return;
    }
    app.navigate("dashboard", { board: boards.length - 1, edit: 1 });
  }

  function draw() {
    drawGrid();
    replace(tools, own ? boardTools() : null);
  }

  // The widgets alone: the editing tools (and what the user chose in them) stay as they are.
  function drawGrid() {
    for (const m of mounted) m.stop();
    mounted = [];
    const widgets = own ? own.widgets : load ? defaultWidgets(load) : siteWidgets(app);
    replace(
      grid,
      widgets.map((spec, i) => {
        const body = h("div", { class: "widget-body" });
        const card = h(
          "section",
          { class: `widget${KINDS[spec.kind]?.wide ? " wide" : ""}`, dataset: { kind: spec.kind } },
          h("header", {}, h("h2", {}, widgetTitle(spec)), editing ? widgetButtons(i, widgets.length) : null),
          body,
        );
        mounted.push(mountWidget(body, app, spec));
        return card;
      }),
      own && !own.widgets.length ? h("p", { class: "muted" }, t("dash.empty")) : null,
    );
  }

  function widgetButtons(i, count) {
    const move = async (delta) => {
      const [spec] = own.widgets.splice(i, 1);
      own.widgets.splice(i + delta, 0, spec);
      await save();
      draw();
    };
    return h(
      "div",
      { class: "widget-edit" },
      h(
        "button",
        {
          type: "button",
          class: "icon move-up",
          disabled: i === 0,
          "aria-label": t("dash.move_up"),
          title: t("dash.move_up"),
          onclick: () => move(-1),
        },
        "↑",
      ),
      h(
        "button",
        {
          type: "button",
          class: "icon move-down",
          disabled: i === count - 1,
          "aria-label": t("dash.move_down"),
          title: t("dash.move_down"),
          onclick: () => move(1),
        },
        "↓",
      ),
      h(
        "button",
        {
          type: "button",
          class: "icon remove-widget",
          "aria-label": t("dash.remove_widget"),
          title: t("dash.remove_widget"),
          onclick: async () => {
            own.widgets.splice(i, 1);
            await save();
            draw();
          },
        },
        "✕",
      ),
    );
  }

  function boardTools() {
    if (!editing) {
      return h(
        "button",
        {
          type: "button",
          class: "secondary edit-board",
          onclick: () => {
            editing = true;
            draw();
          },
        },
        t("dash.edit"),
      );
    }
    const name = h("input", { id: "board-name", value: own.name, maxlength: 40, required: true });
    const error = h("p", { class: "form-error", role: "alert" });
    return h(
      "div",
      { class: "card editor" },
      h(
        "form",
        {
          class: "inline",
          onsubmit: async (event) => {
            event.preventDefault();
            own.name = name.value.trim() || own.name;
            await save();
            title.textContent = own.name;
            tabs.querySelector(`[data-board="${board}"]`).textContent = own.name;
          },
        },
        h("label", { for: "board-name" }, t("dash.board")),
        name,
        h("button", { type: "submit", class: "secondary" }, t("dash.rename")),
      ),
      widgetForm(error),
      error,
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "secondary delete-board",
            onclick: async () => {
              boards.splice(board, 1);
              await save();
              app.navigate("dashboard", {});
            },
          },
          t("dash.delete_board"),
        ),
        h(
          "button",
          {
            type: "button",
            class: "primary done",
            onclick: () => {
              editing = false;
              history.replaceState(null, "", `#/dashboard?board=${board}`);
              draw();
            },
          },
          t("dash.done"),
        ),
      ),
    );
  }

  function widgetForm(error) {
    const kind = h(
      "select",
      { id: "widget-kind" },
      Object.entries(KINDS).map(([k, v]) => h("option", { value: k }, t(v.label))),
    );
    const loadSelect = h(
      "select",
      { id: "widget-load" },
      app.loads.map((l) => h("option", { value: l.name }, l.name)),
    );
    const vars = h("select", { id: "widget-vars", multiple: true, size: 6 });
    const range = h(
      "select",
      { id: "widget-range" },
      RANGES.map((r) => h("option", { value: r, selected: r === "day" }, t(`range.${r}`))),
    );
    const period = h(
      "select",
      { id: "widget-period" },
      PERIODS.map((p) => h("option", { value: p }, t(`period.${p}`))),
    );
    const varsField = h(
      "div",
      {},
      h("label", { for: "widget-vars" }, t("dash.variables")),
      vars,
      h("p", { class: "hint" }, t("dash.variables_hint")),
    );
    const rangeField = h("div", {}, h("label", { for: "widget-range" }, t("dash.range")), range);
    const periodField = h("div", {}, h("label", { for: "widget-period" }, t("dash.period")), period);
    const loadField = h("div", {}, h("label", { for: "widget-load" }, t("dash.load")), loadSelect);

    function refresh() {
      const k = KINDS[kind.value];
      // The variables the chosen load has now (from its latest reading), counters and states left out for charts.
      const values = live.latestOf(loadSelect.value)?.values || {};
      const names = Object.keys(values).filter((n) => {
        const v = variable(n);
        return v && v.kind !== "state" && (k.vars === 1 || v.kind === "instantaneous");
      });
      const chosen = new Set([...vars.selectedOptions].map((o) => o.value));
      replace(
        vars,
        names.map((n) => h("option", { value: n, selected: chosen.has(n) }, label(n))),
      );
      vars.multiple = k.vars > 1;
      vars.size = k.vars > 1 ? 6 : 1;
      varsField.hidden = !k.vars;
      loadField.hidden = Boolean(k.site);
      rangeField.hidden = !k.range;
      periodField.hidden = !k.period;
    }
    kind.addEventListener("change", refresh);
    loadSelect.addEventListener("change", refresh);
    refresh();
    // A load whose first reading has not come yet has no variables to offer: they come with it.
    stopForm?.();
    stopForm = live.subscribe((reading) => {
      if (reading.load === loadSelect.value && !vars.options.length) refresh();
    });

    return h(
      "form",
      {
        class: "widget-form",
        onsubmit: async (event) => {
          event.preventDefault();
          error.textContent = "";
          const k = KINDS[kind.value];
          const spec = k.site ? { kind: kind.value } : { kind: kind.value, load: loadSelect.value };
          if (k.vars) {
            spec.vars = [...vars.selectedOptions].map((o) => o.value);
            if (!spec.vars.length) {
              error.textContent = t("dash.choose_variable");
              return;
            }
            if (spec.vars.length > k.vars) {
              error.textContent = t("dash.too_many", { n: k.vars });
              return;
            }
          }
          if (k.range) spec.range = range.value;
          if (k.period) spec.period = period.value;
          own.widgets.push(spec);
          const submit = event.target.querySelector("button[type=submit]");
          submit.disabled = true; // one widget per click, however slow the save
          try {
            await save();
          } catch (e) {
            own.widgets.pop();
            error.textContent = e instanceof ApiError ? e.message : String(e);
            return;
          } finally {
            submit.disabled = false;
          }
          drawGrid();
        },
      },
      h("h3", {}, t("dash.add_widget")),
      h(
        "div",
        { class: "form-grid" },
        h("div", {}, h("label", { for: "widget-kind" }, t("dash.kind")), kind),
        loadField,
        varsField,
        rangeField,
        periodField,
      ),
      h("button", { type: "submit", class: "primary add-widget" }, t("dash.add_widget")),
    );
  }

  const title = h("h2", { class: "board-title" }, own?.name);
  const unhealthy = app.loads.find((l) => l.name === load && !l.healthy);
  replace(
    main,
    tabs,
    own ? title : null,
    unhealthy && !own ? h("p", { class: "warning" }, t("dash.unhealthy")) : null,
    status,
    tools,
    grid,
  );
  draw();
  return () => {
    stopStatus();
    stopForm?.();
    for (const m of mounted) m.stop();
  };
}
