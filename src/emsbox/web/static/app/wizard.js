// The first-start wizard: admin account, site, main meter, extension loads, logging interval,
// protocols (Modbus TCP, MQTT, BACnet/IP).
// Each step is checked by the device (POST /setup/check) before the next one opens; problems
// are shown next to their field. Field ids are the configuration's key paths.

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";

const MAX_LOADS = 10;

/** Run the wizard in ``root``; ``done`` runs once the setup is complete (logged in). */
export function showWizard(root, setup, done) {
  const defaults = setup.defaults;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zones = setup.choices.timezone.map((c) => c.value);
  const answers = {
    admin: { name: "admin", password: "" },
    confirm: "",
    site: {
      ...defaults.site,
      language: language(),
      timezone: zones.includes(browserZone) ? browserZone : defaults.site.timezone,
    },
    meter: { main: { ...defaults.meter.main }, loads: defaults.meter.loads.map((l) => ({ ...l })) },
    store: { ...defaults.store },
    modbus: { ...defaults.modbus },
    mqtt: { ...defaults.mqtt },
    bacnet: { ...defaults.bacnet },
  };
  const steps = [accountStep, siteStep, meterStep, loadsStep, loggingStep, protocolsStep, reviewStep];
  let index = 0;
  let errors = {};

  function body(upTo) {
    // The answers of the steps so far: a later step's part keeps the device's defaults.
    const out = {};
    if (upTo >= 0) out.admin = answers.admin;
    if (upTo >= 1) out.site = answers.site;
    if (upTo >= 2) out.meter = { main: answers.meter.main };
    if (upTo >= 3) out.meter.loads = answers.meter.loads;
    if (upTo >= 4) out.store = answers.store;
    if (upTo >= 5) {
      out.modbus = answers.modbus;
      out.mqtt = answers.mqtt;
      out.bacnet = answers.bacnet;
    }
    return out;
  }

  function field(id, label, input, hint) {
    const error = errors[id];
    input.id = id;
    if (error) input.setAttribute("aria-invalid", "true");
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      input,
      hint ? h("p", { class: "hint" }, hint) : null,
      error ? h("p", { class: "field-error", id: `${id}-error`, role: "alert" }, error) : null,
    );
  }

  // A checkbox with its label, hint and error; ``onchange`` gets whether it is checked.
  function check(id, label, checked, onchange, hint) {
    const error = errors[id];
    const box = h("input", {
      type: "checkbox",
      id,
      checked,
      "aria-invalid": error ? "true" : null,
      onchange: (e) => onchange(e.target.checked),
    });
    return h(
      "div",
      { class: "field" },
      h("label", { class: "check", for: id }, box, h("span", {}, label)),
      hint ? h("p", { class: "hint" }, hint) : null,
      error ? h("p", { class: "field-error", id: `${id}-error`, role: "alert" }, error) : null,
    );
  }

  function select(options, value, onchange) {
    return h(
      "select",
      { onchange: (e) => onchange(e.target.value) },
      options.map((o) => h("option", { value: o.value, selected: String(o.value) === String(value) }, o.label)),
    );
  }

  function input(value, onchange, attrs = {}) {
    return h("input", { value: value ?? "", oninput: (e) => onchange(e.target.value), ...attrs });
  }

  function number(value, onchange, attrs = {}) {
    const parse = (text) => (text.trim() === "" ? null : Number(text.replace(",", ".")));
    return input(value, (text) => onchange(parse(text)), { inputmode: "decimal", ...attrs });
  }

  function accountStep() {
    const languages = Object.entries(LANGUAGES).map(([value, label]) => ({ value, label }));
    return [
      h("h2", {}, t("wizard.account.title")),
      h("p", { class: "muted" }, t("wizard.account.intro")),
      field(
        "site.language",
        t("wizard.language"),
        select(languages, answers.site.language, async (code) => {
          answers.site.language = code;
          await setLanguage(code);
          render();
        }),
      ),
      field(
        "admin.name",
        t("wizard.admin.name"),
        input(answers.admin.name, (v) => (answers.admin.name = v.trim()), {
          autocomplete: "username",
        }),
      ),
      field(
        "admin.password",
        t("wizard.admin.password"),
        input(answers.admin.password, (v) => (answers.admin.password = v), {
          type: "password",
          autocomplete: "new-password",
        }),
        t("wizard.admin.hint"),
      ),
      field(
        "admin.confirm",
        t("wizard.admin.confirm"),
        input(answers.confirm, (v) => (answers.confirm = v), {
          type: "password",
          autocomplete: "new-password",
        }),
      ),
    ];
  }

  function siteStep() {
    return [
      h("h2", {}, t("wizard.site.title")),
      field(
        "site.name",
        t("wizard.site.name"),
        input(answers.site.name, (v) => (answers.site.name = v)),
      ),
      field(
        "site.timezone",
        t("wizard.site.timezone"),
        select(setup.choices.timezone, answers.site.timezone, (v) => (answers.site.timezone = v)),
        t("wizard.site.timezone.hint"),
      ),
    ];
  }

  function meterStep() {
    const main = answers.meter.main;
    const frequencies = [50, 60].map((f) => ({ value: f, label: `${f} Hz` }));
    return [
      h("h2", {}, t("wizard.meter.title")),
      field(
        "meter.main.wiring",
        t("wizard.meter.wiring"),
        select(setup.choices.wiring, main.wiring, (v) => {
          main.wiring = v;
          if (v !== "3P4W") main.as_single_phase_loads = false;
          render();
        }),
      ),
      field(
        "meter.main.nominal_voltage_v",
        t("wizard.meter.voltage"),
        number(main.nominal_voltage_v, (v) => (main.nominal_voltage_v = v)),
      ),
      field(
        "meter.main.nominal_frequency_hz",
        t("wizard.meter.frequency"),
        select(frequencies, main.nominal_frequency_hz, (v) => (main.nominal_frequency_hz = Number(v))),
      ),
      main.wiring === "3P4W"
        ? h(
            "label",
            { class: "check" },
            h("input", {
              type: "checkbox",
              id: "meter.main.as_single_phase_loads",
              checked: main.as_single_phase_loads,
              onchange: (e) => (main.as_single_phase_loads = e.target.checked),
            }),
            t("wizard.meter.split"),
          )
        : null,
    ];
  }

  function loadsStep() {
    const loads = answers.meter.loads;
    const rows = loads.map((load, i) => {
      const key = (name) => `meter.loads[${i}].${name}`;
      return h(
        "fieldset",
        { class: "load", dataset: { index: i } },
        h("legend", {}, `${i + 1}. ${load.name || ""}`),
        field(
          key("name"),
          t("wizard.loads.name"),
          input(load.name, (v) => (load.name = v.trim())),
        ),
        field(
          key("wiring"),
          t("wizard.meter.wiring"),
          select(setup.choices.wiring, load.wiring, (v) => (load.wiring = v)),
        ),
        field(
          key("module"),
          t("wizard.loads.module"),
          select(setup.choices.module, load.module, (v) => {
            load.module = v;
            render();
          }),
        ),
        field(
          key("ct_primary_a"),
          t("wizard.loads.ct_primary"),
          number(load.ct_primary_a, (v) => (load.ct_primary_a = v)),
        ),
        load.module === "5A"
          ? field(
              key("ct_secondary_a"),
              t("wizard.loads.ct_secondary"),
              number(load.ct_secondary_a, (v) => (load.ct_secondary_a = v)),
            )
          : null,
        h(
          "button",
          {
            type: "button",
            class: "link remove-load",
            onclick: () => {
              loads.splice(i, 1);
              errors = {};
              render();
            },
          },
          t("common.remove"),
        ),
      );
    });
    return [
      h("h2", {}, t("wizard.loads.title")),
      h("p", { class: "muted" }, t("wizard.loads.intro")),
      rows.length ? rows : h("p", { class: "empty" }, t("wizard.loads.none")),
      h(
        "button",
        {
          type: "button",
          class: "secondary add-load",
          disabled: loads.length >= MAX_LOADS,
          title: loads.length >= MAX_LOADS ? t("wizard.loads.max") : null,
          onclick: () => {
            loads.push({
              name: `load_${loads.length + 1}`,
              wiring: "3P4W",
              module: "333mV",
              ct_primary_a: 100,
              ct_secondary_a: 5,
            });
            render();
          },
        },
        t("common.add"),
      ),
    ];
  }

  function intervalLabel(seconds) {
    if (seconds % 3600 === 0) return t("interval.hours", { n: seconds / 3600 });
    if (seconds % 60 === 0) return t("interval.minutes", { n: seconds / 60 });
    return t("interval.seconds", { n: seconds });
  }

  function loggingStep() {
    const options = setup.choices.logging_interval_s.map((c) => ({
      value: c.value,
      label: intervalLabel(c.value),
    }));
    return [
      h("h2", {}, t("wizard.logging.title")),
      field(
        "store.logging_interval_s",
        t("wizard.logging.interval"),
        select(options, answers.store.logging_interval_s, (v) => {
          answers.store.logging_interval_s = Number(v);
        }),
        t("wizard.logging.hint"),
      ),
    ];
  }

  function protocolsStep() {
    const modbus = answers.modbus;
    const port = field(
      "modbus.tcp_port",
      t("wizard.protocols.port"),
      number(modbus.tcp_port, (v) => {
        modbus.tcp_port = v;
      }),
      t("wizard.protocols.port_hint"),
    );
    port.hidden = !modbus.tcp_enabled && !errors["modbus.tcp_port"]; // a problem is never hidden
    const enabled = h("input", {
      type: "checkbox",
      id: "modbus.tcp_enabled",
      checked: modbus.tcp_enabled,
      onchange: (e) => {
        modbus.tcp_enabled = e.target.checked;
        port.hidden = !modbus.tcp_enabled;
      },
    });
    return [
      h("h2", {}, t("wizard.protocols.title")),
      h("p", { class: "muted" }, t("wizard.protocols.intro")),
      h(
        "div",
        { class: "field" },
        h("label", { class: "check", for: "modbus.tcp_enabled" }, enabled, h("span", {}, t("wizard.protocols.modbus"))),
        h("p", { class: "hint" }, t("wizard.protocols.modbus_hint")),
      ),
      port,
      mqttPart(),
      bacnetPart(),
    ];
  }

  // MQTT: off by default; turned on, the broker and how to sign in to it.
  function mqttPart() {
    const mqtt = answers.mqtt;
    const portInput = number(mqtt.port, (v) => (mqtt.port = v));
    const details = h(
      "div",
      { class: "protocol-details", id: "mqtt-details" },
      field(
        "mqtt.host",
        t("wizard.mqtt.host"),
        input(mqtt.host, (v) => (mqtt.host = v.trim()), { autocomplete: "off", spellcheck: "false" }),
        t("wizard.mqtt.host_hint"),
      ),
      field("mqtt.port", t("wizard.mqtt.port"), portInput, t("wizard.mqtt.port_hint")),
      check(
        "mqtt.tls",
        t("wizard.mqtt.tls"),
        mqtt.tls,
        (on) => {
          mqtt.tls = on;
          // The usual ports follow, unless another one was chosen.
          if (on && mqtt.port === 1883) mqtt.port = 8883;
          if (!on && mqtt.port === 8883) mqtt.port = 1883;
          portInput.value = mqtt.port ?? "";
        },
        t("wizard.mqtt.tls_hint"),
      ),
      field(
        "mqtt.username",
        t("wizard.mqtt.username"),
        input(mqtt.username, (v) => (mqtt.username = v), { autocomplete: "off" }),
        t("wizard.mqtt.username_hint"),
      ),
      field(
        "mqtt.password",
        t("wizard.mqtt.password"),
        input(mqtt.password, (v) => (mqtt.password = v), { type: "password", autocomplete: "new-password" }),
      ),
      check(
        "mqtt.discovery",
        t("wizard.mqtt.discovery"),
        mqtt.discovery,
        (on) => (mqtt.discovery = on),
        t("wizard.mqtt.discovery_hint"),
      ),
    );
    details.hidden = !mqtt.enabled && !Object.keys(errors).some((id) => id.startsWith("mqtt."));
    return [
      check(
        "mqtt.enabled",
        t("wizard.protocols.mqtt"),
        mqtt.enabled,
        (on) => {
          mqtt.enabled = on;
          details.hidden = !on;
        },
        t("wizard.protocols.mqtt_hint"),
      ),
      details,
    ];
  }

  // BACnet/IP: off by default; turned on, its UDP port and the device instance (empty: derived
  // from the serial number).
  function bacnetPart() {
    const bacnet = answers.bacnet;
    const details = h(
      "div",
      { class: "protocol-details", id: "bacnet-details" },
      field(
        "bacnet.port",
        t("wizard.bacnet.port"),
        number(bacnet.port, (v) => (bacnet.port = v)),
        t("wizard.bacnet.port_hint"),
      ),
      field(
        "bacnet.device_instance",
        t("wizard.bacnet.device_instance"),
        // Empty: derived from the serial number; what is not a whole number goes to the device
        // as typed, which says why it is refused.
        input(
          bacnet.device_instance,
          (v) => (bacnet.device_instance = v.trim() === "" ? null : /^\d+$/.test(v.trim()) ? Number(v) : v),
          { inputmode: "numeric", autocomplete: "off" },
        ),
        t("wizard.bacnet.device_instance_hint"),
      ),
    );
    details.hidden = !bacnet.enabled && !Object.keys(errors).some((id) => id.startsWith("bacnet."));
    return [
      check(
        "bacnet.enabled",
        t("wizard.protocols.bacnet"),
        bacnet.enabled,
        (on) => {
          bacnet.enabled = on;
          details.hidden = !on;
        },
        t("wizard.protocols.bacnet_hint"),
      ),
      details,
    ];
  }

  function reviewStep() {
    const main = answers.meter.main;
    const loads = [`${main.name} (${main.wiring})`].concat(
      answers.meter.loads.map((l) => `${l.name} (${l.wiring}, ${l.module}, ${l.ct_primary_a} A)`),
    );
    const row = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
    return [
      h("h2", {}, t("wizard.review.title")),
      h("p", { class: "muted" }, t("wizard.review.intro")),
      h(
        "dl",
        { class: "summary" },
        row(t("wizard.review.admin"), answers.admin.name),
        row(t("wizard.site.name"), answers.site.name),
        row(t("wizard.site.timezone"), answers.site.timezone),
        row(t("wizard.language"), LANGUAGES[answers.site.language]),
        row(t("wizard.review.loads"), loads.join(", ")),
        row(t("wizard.logging.interval"), intervalLabel(answers.store.logging_interval_s)),
        row(
          t("wizard.protocols.modbus"),
          answers.modbus.tcp_enabled
            ? t("wizard.review.on_port", { port: answers.modbus.tcp_port })
            : t("wizard.review.off"),
        ),
        row(t("wizard.protocols.mqtt"), mqttSummary()),
        row(t("wizard.protocols.bacnet"), bacnetSummary()),
      ),
    ];
  }

  function mqttSummary() {
    const mqtt = answers.mqtt;
    if (!mqtt.enabled) return t("wizard.review.off");
    const params = { host: mqtt.host, port: mqtt.port };
    const parts = [mqtt.tls ? t("wizard.review.mqtt_tls", params) : t("wizard.review.mqtt_plain", params)];
    if (mqtt.discovery) parts.push(t("wizard.review.mqtt_discovery"));
    return parts.join(", ");
  }

  function bacnetSummary() {
    const bacnet = answers.bacnet;
    if (!bacnet.enabled) return t("wizard.review.off");
    return bacnet.device_instance == null
      ? t("wizard.review.bacnet_serial", { port: bacnet.port })
      : t("wizard.review.bacnet", { port: bacnet.port, instance: bacnet.device_instance });
  }

  const message = h("p", { class: "form-error", role: "alert" });

  function render() {
    const last = index === steps.length - 1;
    const form = h(
      "form",
      { class: "card wizard", novalidate: true, onsubmit: next },
      h("p", { class: "step" }, t("wizard.step", { n: index + 1, total: steps.length })),
      h("progress", { max: steps.length, value: index + 1 }),
      steps[index](),
      message,
      h(
        "div",
        { class: "actions" },
        index > 0 ? h("button", { type: "button", class: "secondary", onclick: back }, t("common.back")) : h("span"),
        h("button", { type: "submit", class: "primary" }, last ? t("common.finish") : t("common.next")),
      ),
    );
    replace(root, h("main", { class: "center" }, h("h1", { class: "brand" }, t("wizard.title")), form));
    // A problem of no single field (e.g. two loads of one name) is shown under the form.
    const loose = Object.entries(errors).filter(([id]) => !document.getElementById(id));
    if (loose.length) message.textContent = loose.map(([id, text]) => `${id}: ${text}`).join("; ");
    const invalid = form.querySelector("[aria-invalid=true]");
    (invalid || form.querySelector("input, select"))?.focus();
  }

  function back() {
    errors = {};
    message.textContent = "";
    index -= 1;
    render();
  }

  async function next(event) {
    event.preventDefault();
    message.textContent = "";
    errors = {};
    if (index === 0 && answers.admin.password !== answers.confirm) {
      errors["admin.confirm"] = t("wizard.admin.mismatch");
      render();
      return;
    }
    const last = index === steps.length - 1;
    const submit = event.target.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      if (last) {
        submit.textContent = t("wizard.saving");
        await api("POST", "/setup", body(steps.length));
        done();
        return;
      }
      const result = await api("POST", "/setup/check", body(index));
      errors = result.errors;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        done(); // someone else finished the setup meanwhile: on to the login
        return;
      }
      if (error instanceof ApiError && Object.keys(error.errors).length) {
        errors = error.errors;
        index = firstStepWithError(errors);
      } else {
        message.textContent =
          error instanceof ApiError && error.status === 0
            ? t("common.error.network")
            : t("common.error.unexpected", { detail: error.message });
        submit.disabled = false;
        return;
      }
    }
    index = Object.keys(errors).length ? firstStepWithError(errors) : index + 1;
    render();
  }

  function firstStepWithError(found) {
    const keys = Object.keys(found);
    const has = (prefix) => keys.some((k) => k.startsWith(prefix));
    if (has("admin.") || has("site.language")) return 0;
    if (has("site.")) return 1;
    if (has("meter.main") || keys.includes("meter")) return 2;
    if (has("meter.loads")) return 3;
    if (has("store.")) return 4;
    if (has("modbus.") || has("mqtt") || has("bacnet")) return 5;
    return steps.length - 1;
  }

  render();
}
