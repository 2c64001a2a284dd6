// The Digital I/O panel of the Diagnostics page: the input's and the output's function and
// state, and the pulse output's count, asked every second (GET /io). Installers and admins
// get a switch for the output while its function is remote control (PUT /io/output) and one
// for the input while it is simulated (PUT /io/input); viewers see the states only. A refusal
// shows the device's reason. Below them, where the input and output are and, for hardware
// (GPIO lines, a remote I/O module), whether it works or why not. The panel is built once and
// updated in place, so a switch keeps the keyboard focus across refreshes.

import { api } from "./api.js";
import { h } from "./dom.js";
import { num, t } from "./i18n.js";

const REFRESH_MS = 1000;
// After a switch the state is asked again this much later: the controller takes the change at
// its next tick (10 ms), and the input's active state follows after its debounce time.
const SETTLE_MS = 250;

/** The panel: ``element`` to place, ``start()`` (resolves once first drawn), ``stop()``. */
export function ioPanel(app) {
  const installer = app.can("installer");
  let state = null; // the last answer shown
  let asked = 0; // requests sent
  let shown = 0; // the newest request whose answer is shown
  const pending = {}; // by switch ("input", "output"): the state asked for, while it is sent
  let timer = null;
  let stopped = false;

  const message = h("p", { class: "status io-message", id: "io-message", role: "status", hidden: true });
  const waiting = h("p", { class: "muted" }, "…");

  const input = {
    fn: fact("diag.io.function", "io-input-function"),
    contact: fact("diag.io.contact", "io-input-contact"),
    active: fact("diag.io.state", "io-input-state"),
    toggle: installer ? toggle("input", "io-input-switch", t("diag.io.switch_input")) : null,
  };
  const output = {
    fn: fact("diag.io.function", "io-output-function"),
    on: fact("diag.io.state", "io-output-state"),
    contact: fact("diag.io.contact", "io-output-contact"),
    pulses: fact("diag.io.pulses", "io-pulses"),
    waiting: fact("diag.io.pulses_waiting", "io-pulses-waiting"),
    power: fact("diag.io.max_power", "io-max-power"),
    toggle: installer ? toggle("output", "io-output-switch", t("diag.io.switch_output")) : null,
    hint: installer
      ? h(
          "p",
          { class: "hint io-hint", id: "io-output-hint", hidden: true },
          h("a", { href: "#/settings?section=io" }, t("diag.io.remote_hint")),
        )
      : null,
  };
  const backend = fact("diag.io.backend", "io-backend");
  const health = fact("diag.io.health", "io-backend-health");
  const parts = {
    input: h(
      "div",
      { class: "io-part", id: "io-input" },
      h("h3", {}, t("diag.io.input")),
      h("dl", { class: "facts" }, input.fn.nodes, input.contact.nodes, input.active.nodes),
      input.toggle,
    ),
    output: h(
      "div",
      { class: "io-part", id: "io-output" },
      h("h3", {}, t("diag.io.output")),
      h(
        "dl",
        { class: "facts" },
        output.fn.nodes,
        output.on.nodes,
        output.contact.nodes,
        output.pulses.nodes,
        output.waiting.nodes,
        output.power.nodes,
      ),
      output.toggle,
      output.hint,
    ),
  };
  const body = h(
    "div",
    { class: "io-parts", hidden: true },
    parts.input,
    parts.output,
    h("dl", { class: "facts io-backend" }, backend.nodes, health.nodes),
  );
  const element = h(
    "section",
    { class: "card io", id: "io-panel", "aria-labelledby": "io-title" },
    h("h2", { id: "io-title" }, t("diag.io")),
    message,
    waiting,
    body,
  );

  function draw() {
    const s = state;
    if (!s) return;
    waiting.hidden = true;
    body.hidden = false;
    input.fn.set(option("InputFunction", s.input_function));
    input.contact.set(t(s.input_closed ? "diag.io.closed" : "diag.io.open"), { closed: s.input_closed });
    input.active.set(t(s.input_active ? "diag.io.active" : "diag.io.inactive"), { active: s.input_active }, true);
    output.fn.set(option("OutputFunction", s.output_function));
    output.on.set(t(s.output_on ? "diag.io.on" : "diag.io.off"), { on: s.output_on }, true);
    output.contact.set(t(s.output_closed ? "diag.io.closed" : "diag.io.open"), { closed: s.output_closed });
    const pulse = s.pulses !== null && s.pulses !== undefined;
    output.pulses.set(pulse ? num(s.pulses, 0) : "", {}, false, !pulse);
    output.waiting.set(pulse ? num(s.pulses_waiting, 0) : "", {}, false, !pulse);
    output.power.set(pulse ? `${num(s.max_pulse_power_kw, 1)} kW` : "", {}, false, !pulse);
    backend.set(option("IoBackend", s.backend));
    // The simulated backend always works: its state is left out.
    const ok = s.backend_ok !== false;
    const detail = ok ? t("diag.io.working") : s.backend_error || t("diag.io.not_working");
    health.set(detail, { ok }, false, s.backend === "simulated");
    const remote = s.output_function === "remote";
    input.toggle?.update(s.backend === "simulated", s.input_closed);
    output.toggle?.update(remote, s.output_on);
    if (output.hint) output.hint.hidden = remote;
  }

  // A row of facts, updated in place (only what changed, so nothing flickers).
  function fact(key, id) {
    const dt = h("dt", {}, t(key));
    const dd = h("dd", { id });
    return {
      nodes: [dt, dd],
      set(text, data = {}, led = false, hidden = false) {
        dt.hidden = dd.hidden = hidden;
        if (dd.textContent !== text) {
          dd.textContent = text;
          if (led) dd.prepend(h("span", { class: "io-led", "aria-hidden": "true" }));
        }
        for (const [name, value] of Object.entries(data)) dd.dataset[name] = String(value);
      },
    };
  }

  // A switch (a button with role=switch; on when checked), for installers and admins, shown
  // while the device lets it be used.
  function toggle(kind, id, label) {
    const button = h(
      "button",
      {
        type: "button",
        role: "switch",
        class: "switch",
        id,
        hidden: true,
        "aria-checked": "false",
        onclick: () => {
          if (!(kind in pending)) flip(kind, button.getAttribute("aria-checked") !== "true");
        },
      },
      h("span", { class: "switch-track", "aria-hidden": "true" }),
      h("span", { class: "switch-label" }, label),
    );
    button.update = (allowed, on) => {
      button.hidden = !allowed;
      const busy = kind in pending;
      button.setAttribute("aria-checked", String(busy ? pending[kind] : on));
      if (busy) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    };
    return button;
  }

  function option(owner, value) {
    const key = `settings.option.${owner}.${value}`;
    const text = t(key);
    return text === key ? value : text;
  }

  // A message under the switch it is about, or under the title.
  function tell(text, kind, where = null) {
    if (where) where.append(message);
    else element.querySelector("h2").after(message);
    message.textContent = text;
    message.dataset.kind = kind;
    message.classList.add("error");
    message.hidden = false;
  }

  function quiet(kind) {
    if (kind && message.dataset.kind !== kind) return;
    message.textContent = "";
    delete message.dataset.kind;
    message.hidden = true;
  }

  function show(request, answer) {
    if (request <= shown || stopped) return; // an older answer than the one shown
    shown = request;
    state = answer;
    draw();
  }

  function reason(error) {
    return error.status === 0 ? t("common.error.network") : error.message;
  }

  async function refresh() {
    const mine = ++asked;
    try {
      show(mine, await api("GET", "/io"));
      if (mine === shown) quiet("unreadable");
    } catch (error) {
      if (!stopped && mine > shown) tell(t("diag.io.unreadable", { detail: reason(error) }), "unreadable");
    }
  }

  async function flip(kind, value) {
    pending[kind] = value;
    quiet();
    draw();
    const mine = ++asked;
    try {
      const answer = await api("PUT", `/io/${kind}`, kind === "output" ? { on: value } : { closed: value });
      // The input's answer may predate the controller's next look at the contact: only the
      // output's, which waits for it, is shown at once.
      if (kind === "output") show(mine, answer);
    } catch (error) {
      if (!stopped) tell(t("diag.io.refused", { detail: reason(error) }), "refused", parts[kind]);
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    delete pending[kind];
    if (!stopped) await refresh();
    draw();
  }

  async function loop() {
    await refresh();
    if (!stopped) timer = setTimeout(loop, REFRESH_MS);
  }

  return {
    element,
    async start() {
      await refresh();
      if (!stopped) timer = setTimeout(loop, REFRESH_MS);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
