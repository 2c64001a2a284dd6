// Settings: one page per section of the configuration, every field generated from its JSON
// schema (GET /config/schema) so that no setting can be missing. Field ids are key paths
// (meter.loads[0].ct_primary_a); the whole configuration is saved at once (PUT /config).

import { api, ApiError, upload } from "./api.js";
import { h, replace } from "./dom.js";
import { locale, t } from "./i18n.js";
import { all as allVariables } from "./variables.js";

// Sections only an admin may change (ADMIN_SECTIONS in web/api/config_routes.py).
const ADMIN_SECTIONS = ["web"];
// Sections the running service applies at once (LIVE_SECTIONS in app.py); the others at the next start.
const LIVE_SECTIONS = ["site", "meter", "modbus", "mqtt", "bacnet", "io", "tariffs", "alarms", "email"];
// How the server shows a secret it keeps to itself (config.REDACTED).
const REDACTED = "********";
// Settings that name a certificate file, which can be sent to the device from beside them
// (PUT /mqtt/files/{kind}: the device checks and keeps it, and answers with the path to set).
const UPLOADS = {
  "mqtt.ca_file": { kind: "ca", label: "settings.upload.ca" },
  "mqtt.client_cert_file": { kind: "cert", label: "settings.upload.cert" },
  "mqtt.client_key_file": { kind: "key", label: "settings.upload.key" },
};
// Settings that name a load (its name is offered as it is typed).
const LOAD_SETTINGS = ["io.input_load", "io.pulse_load", "alarms.rules.load"];
// The largest file the device takes (MAX_BYTES in web/api/mqtt_routes.py).
const MAX_UPLOAD_BYTES = 64 * 1024;
// Units named by the last word of a key, for keys without a translated label.
const UNITS = { a: "A", v: "V", hz: "Hz", s: "s", h: "h", w: "W", kw: "kW", kwh: "kWh", pct: "%" };

// The edit in progress, kept while moving between sections and pages:
// {user, schema, saved, draft, errors: {path: reason}, notice: {kind, ...} | null}.
let state = null;

/** Show the settings section named by ``params.section`` (the first one by default). */
export async function render(main, app, params) {
  if (!state || state.user !== app.me.name || !isDirty()) {
    const [schema, saved] = await Promise.all([api("GET", "/config/schema"), api("GET", "/config")]);
    state = { user: app.me.name, schema, saved, draft: structuredClone(saved), errors: {}, notice: null };
  }
  if (!state.notice) {
    try {
      const system = await api("GET", "/system");
      if (system.restart_required) state.notice = { kind: "pending" };
    } catch {
      // Only a hint: the page works without it.
    }
  }
  const sections = Object.keys(state.schema.properties || {});
  const section = sections.includes(params.get("section")) ? params.get("section") : sections[0];
  const readOnly = ADMIN_SECTIONS.includes(section) && !app.can("admin");
  // The certificate files the device keeps, by kind, for the fields that name one.
  const files = {};
  if (Object.keys(UPLOADS).some((path) => sectionOf(path) === section)) {
    try {
      for (const file of await api("GET", "/mqtt/files")) files[file.kind] = file;
    } catch {
      // Only a hint: sending a file works without it.
    }
  }
  let targets = new Set(); // key paths with an error slot on this page
  let busy = false;

  const nav = h("nav", { class: "settings-nav", "aria-label": t("settings.sections") });
  const form = h("form", { class: "settings-form", novalidate: true, onsubmit: save });
  const banner = h("div", { class: "settings-banner", id: "settings-banner", role: "status", tabindex: "-1" });
  const summary = h("div", { class: "settings-summary", id: "settings-summary", role: "alert", tabindex: "-1" });
  const dirtyMark = h("span", { class: "settings-dirty", id: "settings-dirty", role: "status" });
  const discardButton = h(
    "button",
    { type: "button", id: "settings-discard", onclick: discard },
    t("settings.discard"),
  );
  const saveButton = h("button", { type: "submit", class: "primary", id: "settings-save" }, t("settings.save"));
  const content = h("div", { class: "settings-fields" });

  replace(
    main,
    h(
      "div",
      { class: "settings" },
      nav,
      h(
        "div",
        { class: "settings-main" },
        h("h2", { id: "settings-title" }, sectionTitle(section)),
        banner,
        summary,
        form,
      ),
    ),
  );
  replace(form, sectionIntro(), content, h("div", { class: "settings-actions" }, dirtyMark, discardButton, saveButton));
  draw();
  // A message about a save belongs to the moment: coming back asks the server again.
  return () => {
    if (state) state.notice = null;
  };

  function draw() {
    targets = new Set([section]);
    const schema = resolve(state.schema.properties[section]);
    // Children first: an error goes to the innermost field or group that has a slot for it.
    const children = fields(schema, section, state.draft[section] ?? (state.draft[section] = {}), readOnly);
    replace(content, errorSlot(section), children);
    drawBanner();
    drawSummary();
    drawMarks();
  }

  function sectionIntro() {
    const schema = resolve(state.schema.properties[section]);
    const applies = LIVE_SECTIONS.includes(section) ? t("settings.applies.now") : t("settings.applies.restart");
    return [
      h("p", { class: "muted settings-intro" }, helpText([section], schema)),
      h("p", { class: "hint settings-applies" }, applies),
      readOnly ? h("p", { class: "warning settings-readonly", id: "settings-readonly" }, t("settings.readonly")) : null,
      section === "modbus" ? modbusMaps() : null,
      section === "email" ? emailTest() : null,
    ];
  }

  // The e-mail section sends a test message with the saved (running) settings, and says
  // what the server answered.
  function emailTest() {
    const status = h("p", { class: "hint email-test-status", id: "email-test-status", role: "status" });
    const show = (text, failed = false) => {
      status.textContent = text;
      status.classList.toggle("field-error", failed);
    };
    const button = h(
      "button",
      {
        type: "button",
        id: "email-test",
        "aria-describedby": "email-test-hint email-test-status",
        onclick: async () => {
          button.disabled = true;
          show(t("settings.email.test.sending"));
          try {
            const result = await api("POST", "/email/test");
            show(t("settings.email.test.sent", { to: result.to.join(", ") }));
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            if (error.status === 409) show(t("settings.email.test.off"), true);
            else {
              const detail = error.status === 0 ? t("common.error.network") : error.message;
              show(t("settings.email.test.failed", { detail }), true);
            }
          } finally {
            button.disabled = false;
          }
        },
      },
      t("settings.email.test"),
    );
    return h(
      "div",
      { class: "email-test" },
      h("p", { class: "hint", id: "email-test-hint" }, t("settings.email.test.hint")),
      button,
      status,
    );
  }

  // The Modbus section offers its register maps as CSV files to download.
  function modbusMaps() {
    return h(
      "p",
      { class: "settings-downloads", id: "modbus-maps" },
      t("settings.modbus.maps"),
      ["native", "sunspec-float", "sunspec-int", "carlo-gavazzi", "commands"].map((name) => [
        " ",
        h(
          "a",
          { href: `/api/v1/modbus/maps/${name}.csv`, download: "", dataset: { map: name } },
          t(`settings.modbus.map.${name}`),
        ),
      ]),
    );
  }

  function drawNav() {
    const dirty = dirtySections();
    const failing = new Set(Object.keys(state.errors).map(sectionOf));
    replace(
      nav,
      h(
        "ul",
        {},
        sections.map((name) =>
          h(
            "li",
            {},
            h(
              "a",
              {
                href: `#/settings?section=${encodeURIComponent(name)}`,
                dataset: { section: name },
                "aria-current": name === section ? "page" : null,
              },
              h("span", {}, sectionTitle(name)),
              failing.has(name) ? mark("error", "!", t("settings.nav.errors")) : null,
              dirty.includes(name) ? mark("unsaved", "•", t("settings.nav.unsaved")) : null,
            ),
          ),
        ),
      ),
    );
  }

  function drawBanner() {
    const notice = state.notice;
    banner.className = "settings-banner";
    if (!notice) {
      banner.replaceChildren();
      banner.hidden = true;
      return;
    }
    banner.hidden = false;
    const names = (notice.sections || []).map(sectionTitle).join(", ");
    const text = {
      saved: () => t("settings.banner.saved"),
      restart: () => (names ? t("settings.banner.restart", { sections: names }) : t("settings.banner.restart_earlier")),
      pending: () => t("settings.banner.pending"),
      refused: () => t("settings.banner.refused", { detail: notice.message }),
      failed: () => notice.message,
    }[notice.kind]();
    banner.classList.add(notice.kind);
    replace(banner, h("p", {}, text));
  }

  function drawSummary() {
    const entries = Object.entries(state.errors);
    if (!entries.length) {
      summary.replaceChildren();
      summary.hidden = true;
      return;
    }
    const here = entries.filter(([path]) => targetOf(path));
    const elsewhere = entries.filter(([path]) => !targetOf(path));
    summary.hidden = false;
    replace(
      summary,
      h("p", {}, t("settings.invalid", { count: entries.length })),
      here.length ? h("p", {}, t("settings.invalid.here")) : null,
      elsewhere.length
        ? h(
            "ul",
            {},
            elsewhere.map(([path, reason]) => {
              const other = sectionOf(path);
              const where =
                sections.includes(other) && other !== section
                  ? h("a", { href: `#/settings?section=${encodeURIComponent(other)}` }, path)
                  : path;
              return h("li", {}, where, `: ${reason}`);
            }),
          )
        : null,
    );
  }

  function drawMarks() {
    const dirty = isDirty();
    const text = dirty ? t("settings.unsaved") : t("settings.clean");
    if (dirtyMark.textContent !== text) dirtyMark.textContent = text; // a status is announced on change
    dirtyMark.classList.toggle("on", dirty);
    dirtyMark.parentElement.classList.toggle("dirty", dirty);
    discardButton.disabled = !dirty || busy;
    saveButton.disabled = !dirty || busy;
    drawNav();
  }

  // The key path, or its nearest enclosing one, that has an error slot on this page.
  function targetOf(path) {
    let p = path;
    while (p) {
      if (targets.has(p)) return p;
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      if (cut <= 0) return null;
      p = p.slice(0, cut);
    }
    return null;
  }

  function errorFor(path) {
    const reasons = Object.entries(state.errors)
      .filter(([p]) => targetOf(p) === path)
      .map(([p, reason]) => (p === path ? reason : `${p.slice(path.length).replace(/^\./, "")}: ${reason}`));
    return reasons.join("; ");
  }

  function errorSlot(path) {
    targets.add(path);
    const text = errorFor(path);
    return h("p", { class: "field-error", id: `${path}-error`, hidden: !text }, text);
  }

  // The fields of an object's properties.
  function fields(schema, path, value, ro) {
    return Object.entries(schema.properties || {}).map(([key, sub]) =>
      node(resolve(sub), `${path}.${key}`, value, key, ro, schema.defName),
    );
  }

  // One property: a fieldset for an object, a list of rows for an array of objects, else an input.
  function node(schema, path, parent, key, ro, parentDef) {
    const names = labelKeys(path, key, parentDef);
    if (schema.properties) {
      if (parent[key] === null || parent[key] === undefined) parent[key] = {};
      return group(schema, path, names, [fields(schema, path, parent[key], ro)]);
    }
    if (schema.type === "array" && schema.items && resolve(schema.items).properties) {
      return list(schema, path, parent, key, ro, names);
    }
    return field(schema, path, parent, key, ro, names);
  }

  function group(schema, path, names, children, extra = {}) {
    const helpId = `${path}-help`;
    return h(
      "fieldset",
      { class: "settings-group", "aria-describedby": `${helpId} ${path}-error`, ...extra },
      h("legend", {}, labelText(names)),
      h("p", { class: "hint", id: helpId }, helpText(names, schema)),
      errorSlot(path),
      children,
    );
  }

  function list(schema, path, parent, key, ro, names) {
    if (!Array.isArray(parent[key])) parent[key] = [];
    const items = parent[key];
    const itemSchema = resolve(schema.items);
    const itemName = itemText(names);
    const min = schema.minItems || 0;
    const max = schema.maxItems ?? Infinity;
    const rows = items.map((item, i) => {
      const rowPath = `${path}[${i}]`;
      const title = `${itemName} ${i + 1}${item && typeof item.name === "string" && item.name ? ` · ${item.name}` : ""}`;
      const inner = fields(itemSchema, rowPath, item, ro);
      return h(
        "fieldset",
        { class: "settings-item", "aria-describedby": `${rowPath}-error` },
        h("legend", {}, title),
        errorSlot(rowPath),
        inner,
        h(
          "button",
          {
            type: "button",
            class: "remove-row",
            disabled: ro || items.length <= min,
            "aria-label": t("settings.remove.named", { item: title }),
            onclick: () => {
              items.splice(i, 1);
              forgetErrors(path);
              edited();
              draw();
              content.querySelector(`[data-list="${CSS.escape(path)}"]`)?.focus();
            },
          },
          t("settings.remove"),
        ),
      );
    });
    return group(
      schema,
      path,
      names,
      [
        items.length ? rows : h("p", { class: "empty" }, t("settings.list.empty")),
        h(
          "button",
          {
            type: "button",
            class: "add-row",
            dataset: { list: path },
            disabled: ro || items.length >= max,
            onclick: () => {
              items.push(initial(itemSchema));
              forgetErrors(path);
              edited();
              draw();
              content.querySelector(`[id^="${CSS.escape(`${path}[${items.length - 1}].`)}"]`)?.focus();
            },
          },
          t("settings.add", { item: `${itemName.charAt(0).toLocaleLowerCase()}${itemName.slice(1)}` }),
        ),
      ],
      { class: "settings-group settings-list" },
    );
  }

  // One input for a leaf value, with its label, help and error.
  function field(schema, path, parent, key, ro, names) {
    const value = parent[key];
    const helpId = `${path}-help`;
    targets.add(path);
    const errorText = errorFor(path);
    const common = {
      id: path,
      name: path,
      disabled: ro,
      "aria-describedby": `${helpId} ${path}-error`,
      "aria-invalid": errorText ? "true" : null,
    };
    const set = (v) => {
      if (v === undefined) delete parent[key];
      else parent[key] = v;
      if (state.errors[path] !== undefined) {
        delete state.errors[path];
        input.removeAttribute("aria-invalid");
        const slot = content.querySelector(`#${CSS.escape(`${path}-error`)}`);
        if (slot) {
          slot.textContent = errorFor(path);
          slot.hidden = !slot.textContent;
        }
        drawSummary();
      }
      edited();
    };
    let input;
    let extra = null; // beside the input
    let after = null; // below its help and error
    if (schema.type === "boolean") {
      input = h("input", {
        ...common,
        type: "checkbox",
        checked: value === true,
        onchange: (e) => set(e.target.checked),
      });
    } else if (Array.isArray(schema.enum)) {
      const options = schema.enum.map((option) =>
        h("option", { value: String(option), selected: option === value }, optionText(schema, path, option)),
      );
      if (schema.nullable) {
        const none = value === undefined || value === null;
        options.unshift(h("option", { value: "", selected: none }, t("settings.none")));
      }
      input = h(
        "select",
        {
          ...common,
          onchange: (e) =>
            set(e.target.value === "" ? undefined : schema.enum.find((o) => String(o) === e.target.value)),
        },
        options,
      );
    } else if (schema.type === "integer" || schema.type === "number") {
      input = h("input", {
        ...common,
        type: "number",
        inputmode: schema.type === "integer" ? "numeric" : "decimal",
        min: schema.minimum ?? schema.exclusiveMinimum,
        max: schema.maximum ?? schema.exclusiveMaximum,
        step: schema.type === "integer" ? 1 : "any",
        value: typeof value === "number" ? String(value) : "",
        placeholder: schema.nullable ? t("settings.empty") : null,
        // An empty optional number is left out (its default); an empty required one is sent
        // as null, so the server names the problem.
        oninput: (e) => set(e.target.value === "" ? (schema.nullable ? undefined : null) : Number(e.target.value)),
      });
    } else if (schema.type === "array") {
      // A list of plain values: one text, items separated by commas.
      const numeric = ["integer", "number"].includes(resolve(schema.items || {}).type);
      input = h("input", {
        ...common,
        type: "text",
        value: Array.isArray(value) ? value.join(", ") : "",
        oninput: (e) => {
          const parts = e.target.value
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s !== "");
          set(numeric ? parts.map(Number) : parts);
        },
      });
    } else if (value === REDACTED || schema.format === "password" || schema.writeOnly) {
      const kept = value === REDACTED;
      input = h("input", {
        ...common,
        type: "password",
        autocomplete: "new-password",
        placeholder: kept ? t("settings.secret.kept") : null,
        value: kept ? "" : (value ?? ""),
        oninput: (e) => set(e.target.value === "" ? (kept ? REDACTED : undefined) : e.target.value),
      });
      // A stored secret is never shown; it can be replaced by typing, or removed here.
      if (kept && !ro) {
        extra = h(
          "button",
          {
            type: "button",
            class: "link secret-clear",
            id: `${path}-clear`,
            onclick: () => {
              set("");
              draw();
              content.querySelector(`#${CSS.escape(path)}`)?.focus();
            },
          },
          t("settings.secret.clear"),
        );
      }
    } else {
      const choices = suggestions(names[0], key);
      input = h("input", {
        ...common,
        type: "text",
        value: value ?? "",
        list: choices.length ? `${path}-choices` : null,
        autocomplete: "off",
        placeholder: schema.nullable ? t("settings.empty") : null,
        oninput: (e) => set(e.target.value === "" && schema.nullable ? undefined : e.target.value),
      });
      if (choices.length) {
        extra = h(
          "datalist",
          { id: `${path}-choices` },
          choices.map((choice) => h("option", { value: choice })),
        );
      }
      if (UPLOADS[path]) after = uploader(path, UPLOADS[path], input, set, ro);
    }
    const label = labelText(names);
    const help = helpText(names, schema);
    const parts = [
      h("p", { class: "hint", id: helpId }, help, defaultText(schema, path)),
      h("p", { class: "field-error", id: `${path}-error`, hidden: !errorText }, errorText),
    ];
    if (schema.type === "boolean") {
      return h(
        "div",
        { class: "field check" },
        h("label", { class: "check", for: path }, input, h("span", {}, label)),
        parts,
      );
    }
    return h("div", { class: "field" }, h("label", { for: path }, label), input, extra, parts, after);
  }

  // Values a text setting may take, offered as it is typed: time zones, load names, the
  // variables an alarm can watch.
  function suggestions(plain, key) {
    if (key === "timezone")
      return typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    if (LOAD_SETTINGS.includes(plain)) return app.loads.map((l) => l.name);
    if (plain === "alarms.rules.variable")
      return allVariables()
        .filter((v) => v.kind !== "state")
        .map((v) => v.name);
    return [];
  }

  // A file chooser beside a setting that names a certificate file: the chosen file is sent to
  // the device, which checks and keeps it, and the setting is filled with the path it answers.
  function uploader(path, { kind, label }, input, set, ro) {
    const id = `${path}-upload`;
    const status = h("p", { class: "hint upload-status", id: `${id}-status`, role: "status" }, storedText(files[kind]));
    const show = (text, failed = false) => {
      status.textContent = text;
      status.classList.toggle("field-error", failed);
    };
    const chooser = h("input", {
      type: "file",
      id,
      accept: ".pem,.crt,.cer,.key",
      disabled: ro,
      "aria-describedby": `${id}-status`,
      onchange: async () => {
        const file = chooser.files[0];
        if (!file) return;
        if (file.size > MAX_UPLOAD_BYTES) {
          show(t("settings.upload.too_large", { name: file.name }), true);
          chooser.value = "";
          return;
        }
        show(t("settings.upload.sending", { name: file.name }));
        chooser.disabled = true;
        try {
          const stored = await upload(`/mqtt/files/${kind}`, file, "application/x-pem-file");
          files[kind] = stored;
          // Already the saved setting: the new file replaced the one in use, nothing to save.
          const inUse = path.split(".").reduce((o, k) => o?.[k], state.saved) === stored.path;
          if (input.value !== stored.path) {
            input.value = stored.path;
            set(stored.path);
          }
          const done = inUse ? t("settings.upload.replaced") : t("settings.upload.done");
          show(`${done} ${storedText(stored)}`);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          const detail = error.status === 0 ? t("common.error.network") : error.message;
          show(t("settings.upload.refused", { name: file.name, detail }), true);
        } finally {
          chooser.disabled = ro;
          chooser.value = ""; // the same file can be chosen again
        }
      },
    });
    return h("div", { class: "upload" }, h("label", { for: id }, t(label)), chooser, status);
  }

  function edited() {
    if (state.notice && state.notice.kind !== "pending" && state.notice.kind !== "restart") {
      state.notice = null;
      drawBanner();
    }
    drawMarks();
  }

  function forgetErrors(path) {
    for (const p of Object.keys(state.errors)) if (p.startsWith(`${path}[`)) delete state.errors[p];
  }

  function discard() {
    state.draft = structuredClone(state.saved);
    state.errors = {};
    state.notice = null;
    draw();
    form.querySelector("input, select")?.focus();
  }

  async function save(event) {
    event.preventDefault();
    if (busy || !isDirty()) return;
    busy = true;
    drawMarks();
    dirtyMark.textContent = t("settings.saving");
    const before = state.saved;
    try {
      const result = await api("PUT", "/config", state.draft);
      state.saved = await api("GET", "/config");
      state.draft = structuredClone(state.saved);
      state.errors = {};
      const changed = sections.filter((s) => !LIVE_SECTIONS.includes(s) && canon(before[s]) !== canon(state.saved[s]));
      state.notice = result.restart_required ? { kind: "restart", sections: changed } : { kind: "saved" };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      state.errors = {};
      if (error.status === 422) {
        state.errors = Object.keys(error.errors).length ? { ...error.errors } : { "(top level)": error.message };
        state.notice = null;
      } else if (error.status === 403) {
        state.notice = { kind: "refused", message: error.message };
      } else {
        const message =
          error.status === 0 ? t("common.error.network") : t("common.error.unexpected", { detail: error.message });
        state.notice = { kind: "failed", message };
      }
    } finally {
      busy = false;
    }
    draw();
    const invalid = content.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
    else if (!summary.hidden) summary.focus();
    else banner.focus();
  }
}

// The schema of a property with its $ref and nullable anyOf resolved; the property's own
// description and default win over its definition's.
function resolve(schema) {
  let out = { ...schema };
  if (out.$ref) {
    const defName = out.$ref.split("/").pop();
    const { $ref, ...own } = out;
    out = { ...resolve(state.schema.$defs[defName]), defName, ...own };
  }
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (!Array.isArray(out[key])) continue;
    const options = out[key].filter((o) => o.type !== "null");
    if (options.length !== 1) continue;
    const { [key]: _, ...own } = out;
    out = { ...resolve(options[0]), ...own, nullable: options.length < out[key].length || out.nullable };
  }
  return out;
}

// A new row of a list: every default, empty where there is none.
function initial(schema) {
  if (schema.default !== undefined && schema.default !== null) return structuredClone(schema.default);
  if (schema.properties) {
    const out = {};
    for (const [key, sub] of Object.entries(schema.properties)) {
      const value = initial(resolve(sub));
      if (value !== undefined) out[key] = value;
    }
    return out;
  }
  if (schema.type === "array") return [];
  // A required choice starts as its first option, which is what its list shows.
  if (Array.isArray(schema.enum) && schema.enum.length && !schema.nullable) return schema.enum[0];
  if (schema.type === "string" && !schema.nullable) return "";
  return schema.nullable ? undefined : null;
}

// A sign beside a section's name, with its meaning for screen readers.
function mark(kind, sign, meaning) {
  return h(
    "span",
    { class: `nav-mark ${kind}`, title: meaning },
    sign,
    h("span", { class: "sr-only" }, ` (${meaning})`),
  );
}

// What the device keeps of a certificate file: its path and, for certificates, whose and until when.
function storedText(file) {
  if (!file) return "";
  if (!file.subject || !file.not_after) return t("settings.upload.stored", { path: file.path });
  const end = new Date(file.not_after);
  const until = end.toLocaleDateString(locale(), { dateStyle: "medium" });
  const params = { path: file.path, subject: file.subject, until };
  return end < new Date() ? t("settings.upload.stored_expired", params) : t("settings.upload.stored_cert", params);
}

function sectionOf(path) {
  return path.split(/[.[]/)[0];
}

// Translation candidates of a key path: the path without list indexes, then the model's own field.
function labelKeys(path, key, parentDef) {
  const plain = path.replace(/\[\d+\]/g, "");
  return parentDef ? [plain, `${parentDef}.${key}`] : [plain];
}

function labelText(names) {
  for (const name of names) {
    const text = t(`settings.field.${name}`);
    if (text !== `settings.field.${name}`) return text;
  }
  return readable(names[0].split(".").pop());
}

function helpText(names, schema) {
  for (const name of names) {
    const text = t(`settings.help.${name}`);
    if (text !== `settings.help.${name}`) return text;
  }
  return schema.description || "";
}

function itemText(names) {
  const text = t(`settings.item.${names[0]}`);
  return text !== `settings.item.${names[0]}` ? text : t("settings.item");
}

function optionText(schema, path, option) {
  const owner = schema.defName || path.replace(/\[\d+\]/g, "");
  const text = t(`settings.option.${owner}.${option}`);
  return text !== `settings.option.${owner}.${option}` ? text : String(option);
}

function defaultText(schema, path) {
  const value = schema.default;
  // An empty default says nothing the help does not.
  if (value === undefined || value === null || value === "" || typeof value === "object") return null;
  let shown = String(value);
  if (typeof value === "boolean") shown = t(value ? "settings.yes" : "settings.no");
  else if (Array.isArray(schema.enum)) shown = optionText(schema, path, value);
  return ` ${t("settings.default", { value: shown })}`;
}

function sectionTitle(name) {
  return labelText([name]);
}

// "ct_primary_a" → "Ct primary (A)": for keys that have no translated label yet.
function readable(key) {
  const words = key.split("_");
  const unit = words.length > 1 ? UNITS[words[words.length - 1]] : undefined;
  if (unit) words.pop();
  const text = words.join(" ");
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${unit ? ` (${unit})` : ""}`;
}

// Comparable text of a value: keys sorted, empty (null) values left out.
function canon(value) {
  return JSON.stringify(value ?? null, (_, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([, x]) => x !== null && x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

function dirtySections() {
  if (!state) return [];
  return Object.keys(state.schema.properties || {}).filter((s) => canon(state.draft[s]) !== canon(state.saved[s]));
}

function isDirty() {
  return dirtySections().length > 0;
}
