// The Alarms page: every configured alarm with its rule in words, its state (raised or normal,
// acknowledged or not, since when) and its variable's latest value, asked every 2 s
// (GET /alarms); any logged-in user acknowledges a raised alarm with its button
// (POST /alarms/{name}/ack). Below, the recent events, newest first (GET /alarms/history),
// with who acknowledged. The alarms are updated in place, so a button keeps the keyboard focus
// across refreshes; what the page sees also sets the menu's badge (shell.js).

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime, locale, num, t } from "./i18n.js";
import { display, formatValue, label } from "./variables.js";

const REFRESH_MS = 2000;
const HISTORY_LIMIT = 50;

/** A threshold in its variable's display unit (kW for W…), with the decimals it has (up to 3). */
function threshold(variable, value) {
  if (typeof value !== "number") return "–";
  const { scale } = display(variable);
  return (value * scale).toLocaleString(locale(), { maximumFractionDigits: 3 });
}

/** A variable as words: "Voltage L-N (v_ln_sys)"; the name alone when it has no label. */
function variableText(name) {
  const text = label(name);
  return text.startsWith("var.") ? name : `${text} (${name})`;
}

/** An alarm's rule in words: "main · Voltage L-N (v_ln_sys) outside 207–253 V"; a built-in
 * alarm's detail (what is, or last was, wrong). */
export function ruleText(alarm) {
  if (alarm.system) return alarm.detail || t("alarms.system_ok");
  const { unit } = display(alarm.variable);
  const condition = t(`alarms.rule.${alarm.condition}`, {
    low: threshold(alarm.variable, alarm.low),
    high: threshold(alarm.variable, alarm.high),
    unit,
  }).trim();
  return `${alarm.load} · ${variableText(alarm.variable)} ${condition}`;
}

/** A value of ``variable`` with its unit, as the rest of the app shows it. */
function valueText(variable, value) {
  if (typeof value !== "number") return t("alarms.no_value");
  return `${formatValue(variable, value)} ${display(variable).unit}`.trim();
}

/** Who acknowledged, as the device records it ("session:ann", "token:scada"), in words. */
function byText(by) {
  if (!by) return "";
  const [via, ...rest] = by.split(":");
  const name = rest.join(":");
  if (via === "session" && name) return name;
  if (via === "token" && name) return t("alarms.by_token", { name });
  return by;
}

/** A moment of today as its time alone, of another day with its date. */
function when(seconds) {
  const today = new Date().toDateString() === new Date(seconds * 1000).toDateString();
  return today ? dateTime(seconds, { timeStyle: "medium" }) : dateTime(seconds);
}

/** Raised and not yet acknowledged: what needs someone's attention. */
export function waiting(alarm) {
  return alarm.active && !alarm.acknowledged;
}

/** The alarms page. */
export async function render(main, app) {
  let asked = 0; // requests sent
  let shown = 0; // the newest request whose answer is shown
  let timer = null;
  let stopped = false;
  let alarms = [];
  let historyKey = null; // the events shown, to redraw the table only when they change
  const items = new Map(); // by alarm name: its element and parts

  const summary = h("p", { class: "alarms-summary", id: "alarms-summary", role: "status" }, "…");
  const problem = h("p", { class: "warning", id: "alarms-unreadable", hidden: true });
  const message = h("p", { class: "status alarms-message", id: "alarms-message", role: "status", hidden: true });
  const empty = h("p", { class: "empty", id: "alarms-empty", hidden: true }, t("alarms.none"));
  const list = h("ul", { class: "alarm-list", id: "alarms-list" });
  const history = h("div", { class: "alarm-history", id: "alarms-history" }, h("p", { class: "muted" }, "…"));

  replace(
    main,
    h(
      "div",
      { class: "alarms" },
      h(
        "section",
        { class: "card", "aria-labelledby": "alarms-title" },
        h("h2", { id: "alarms-title" }, t("alarms.title")),
        summary,
        problem,
        message,
        empty,
        list,
        app.can("installer")
          ? h(
              "p",
              { class: "hint alarms-settings" },
              h("a", { href: "#/settings?section=alarms", id: "alarms-settings-link" }, t("alarms.settings_link")),
            )
          : null,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "alarms-history-title" },
        h("h2", { id: "alarms-history-title" }, t("alarms.history")),
        history,
      ),
    ),
  );

  // One alarm's element, built once and updated in place.
  function item(name) {
    const fact = (key, cls) => {
      const dd = h("dd", { class: cls });
      return { nodes: [h("dt", {}, t(key)), dd], dd };
    };
    const state = fact("alarms.state", "alarm-state");
    const since = fact("alarms.since", "alarm-since");
    const value = fact("alarms.value", "alarm-value");
    const rule = h("p", { class: "alarm-rule" });
    const latching = h("span", { class: "alarm-tag", hidden: true }, t("alarms.latching"));
    const builtIn = h("span", { class: "alarm-tag alarm-system", hidden: true }, t("alarms.system"));
    const button = h(
      "button",
      {
        type: "button",
        class: "primary alarm-ack",
        hidden: true,
        "aria-label": t("alarms.ack_named", { name }),
        onclick: () => acknowledge(name, button),
      },
      t("alarms.ack"),
    );
    const element = h(
      "li",
      { class: "alarm-item", dataset: { alarm: name }, tabindex: "-1" },
      h("div", { class: "alarm-what" }, h("h3", { class: "alarm-name" }, name, " ", builtIn, " ", latching), rule),
      h("dl", { class: "facts alarm-now" }, state.nodes, since.nodes, value.nodes),
      h("div", { class: "alarm-action" }, button),
    );
    return {
      element,
      update(a) {
        const raised = a.active;
        const stateText = raised
          ? t(a.acknowledged ? "alarms.state.raised_acknowledged" : "alarms.state.raised")
          : t("alarms.state.normal");
        setText(rule, ruleText(a));
        setText(state.dd, stateText);
        state.dd.dataset.state = raised ? "raised" : "normal";
        setText(since.dd, raised && typeof a.since_s === "number" ? when(a.since_s) : "–");
        since.nodes.forEach((n) => (n.hidden = !raised));
        setText(value.dd, valueText(a.variable, a.value));
        value.nodes.forEach((n) => (n.hidden = a.system)); // a built-in alarm watches no value
        latching.hidden = !a.latching;
        builtIn.hidden = !a.system;
        element.dataset.active = String(raised);
        element.dataset.acknowledged = String(a.acknowledged);
        const offer = waiting(a);
        if (!offer && button === document.activeElement) element.focus(); // keep the focus nearby
        button.hidden = !offer;
      },
    };
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function draw(answer, events) {
    alarms = answer;
    app.showAlarms?.(alarms);
    const raised = alarms.filter((a) => a.active).length;
    const unacknowledged = alarms.filter(waiting).length;
    setText(
      summary,
      raised
        ? t("alarms.summary", { raised, total: alarms.length, unacknowledged })
        : t("alarms.summary_none", { total: alarms.length }),
    );
    summary.dataset.raised = String(raised);
    summary.dataset.unacknowledged = String(unacknowledged);
    empty.hidden = alarms.length > 0;
    const names = new Set(alarms.map((a) => a.name));
    for (const name of [...items.keys()]) {
      if (!names.has(name)) {
        items.get(name).element.remove();
        items.delete(name);
      }
    }
    alarms.forEach((a, i) => {
      let it = items.get(a.name);
      if (!it) items.set(a.name, (it = item(a.name)));
      it.update(a);
      if (list.children[i] !== it.element) list.insertBefore(it.element, list.children[i] || null);
    });
    drawHistory(events);
  }

  function drawHistory(events) {
    const key = events.map((e) => e.id).join(",");
    if (key === historyKey) return;
    historyKey = key;
    if (!events.length) {
      replace(history, h("p", { class: "empty", id: "alarms-history-empty" }, t("alarms.history.empty")));
      return;
    }
    const variables = Object.fromEntries(alarms.map((a) => [a.name, a.variable]));
    const value = (e) => {
      if (typeof e.value !== "number") return "";
      return e.alarm in variables ? valueText(variables[e.alarm], e.value) : num(e.value, 2);
    };
    replace(
      history,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "alarm-events", id: "alarms-events" },
          h("caption", { class: "sr-only" }, t("alarms.history")),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["time", "alarm", "event", "value", "by"].map((c) =>
                h("th", { scope: "col", class: c }, t(`alarms.col.${c}`)),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            events.map((e) =>
              h(
                "tr",
                { dataset: { id: String(e.id), event: e.event, alarm: e.alarm } },
                h("td", { class: "time" }, when(e.time_s)),
                h("th", { scope: "row" }, e.alarm),
                h("td", { class: `event ${e.event}` }, t(`alarms.event.${e.event}`)),
                h("td", { class: "value" }, value(e)),
                h("td", { class: "by", dataset: { by: e.by || "" } }, byText(e.by)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function reason(error) {
    return error.status === 0 ? t("common.error.network") : error.message;
  }

  function tell(text, failed = false) {
    message.textContent = text;
    message.classList.toggle("error", failed);
    message.hidden = false;
  }

  async function refresh() {
    const mine = ++asked;
    try {
      const [answer, events] = await Promise.all([
        api("GET", "/alarms"),
        api("GET", `/alarms/history?limit=${HISTORY_LIMIT}`),
      ]);
      if (stopped || mine <= shown) return; // an older answer than the one shown
      shown = mine;
      problem.hidden = true;
      draw(answer, events);
    } catch (error) {
      if (stopped || mine <= shown) return;
      problem.textContent = t("alarms.unreadable", { detail: reason(error) });
      problem.hidden = false;
    }
  }

  // While it is sent the button is marked busy rather than disabled: a disabled button would
  // lose the keyboard focus, which moves to the alarm once the button goes.
  async function acknowledge(name, button) {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      const answer = await api("POST", `/alarms/${encodeURIComponent(name)}/ack`);
      if (stopped) return;
      tell(answer.acknowledged ? t("alarms.acked", { name }) : t("alarms.ack_nothing", { name }));
    } catch (error) {
      if (stopped) return;
      tell(t("alarms.ack_refused", { name, detail: reason(error) }), true);
    } finally {
      button.removeAttribute("aria-disabled");
    }
    await refresh();
  }

  async function loop() {
    await refresh();
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }

  await loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
