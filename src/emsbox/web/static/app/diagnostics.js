// Diagnostics: what the device's own 128 × 96 display shows, on one compact page: the main
// values of every load, the state of each part (sources, store), network addresses, version,
// clock, storage and the active faults, with the alarms raised (each with a link to the Alarms
// page). Refreshed every few seconds and with every reading. Beside them the digital input and
// output (io.js), refreshed every second.

import { ruleText, waiting } from "./alarms.js";
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime, num, t } from "./i18n.js";
import { ioPanel } from "./io.js";
import * as live from "./live.js";
import { loadsTable } from "./widgets.js";

const REFRESH_MS = 5000;

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const hms = new Date((seconds % 86400) * 1000).toISOString().slice(11, 19);
  return d ? t("diag.days", { d, hms }) : hms;
}

function bytes(n) {
  return n >= 1e9 ? `${num(n / 1e9, 2)} GB` : `${num(n / 1e6, 1)} MB`;
}

/** The diagnostics page. */
export async function render(main, app) {
  const values = h("div");
  const system = h("div", { class: "diag-system" });
  const faults = h("div", { class: "diag-faults", role: "status" });
  const io = ioPanel(app);

  function drawValues() {
    replace(values, loadsTable(app));
  }

  async function drawSystem() {
    let info;
    let alarms;
    try {
      [info, alarms] = await Promise.all([
        api("GET", "/system"),
        api("GET", "/alarms").catch(() => []), // the faults are worth showing without them
      ]);
    } catch (error) {
      replace(faults, h("p", { class: "warning" }, error.message));
      return;
    }
    const row = (key, value, id) => [h("dt", {}, t(key)), h("dd", { id }, value)];
    replace(
      system,
      h(
        "dl",
        { class: "facts" },
        row("diag.version", info.version, "diag-version"),
        row("diag.hostname", info.hostname, "diag-hostname"),
        row(
          "diag.addresses",
          info.addresses.length
            ? info.addresses.map((a) => h("span", { class: "address" }, `${a.address} (${a.interface})`))
            : t("diag.none"),
          "diag-addresses",
        ),
        row("diag.web", `${location.protocol}//${location.host}`, "diag-web"),
        row("diag.clock", dateTime(info.time_s), "diag-clock"),
        row("diag.uptime", duration(info.uptime_s), "diag-uptime"),
        row(
          "diag.storage",
          t("diag.storage_value", { used: bytes(info.data_dir_used_bytes), free: bytes(info.data_dir_free_bytes) }),
          "diag-storage",
        ),
        row(
          "diag.protocols",
          info.gateways.map((g) =>
            h(
              "span",
              { class: `gateway ${g.healthy ? "" : "fault"}`, dataset: { enabled: String(g.enabled) } },
              `${g.name}: ${g.enabled ? (g.healthy ? t("diag.on") : t("diag.fault")) : t("diag.off")}`,
              g.enabled ? h("small", { class: "detail" }, g.detail) : null,
            ),
          ),
          "diag-protocols",
        ),
      ),
      h(
        "table",
        { class: "parts" },
        h("caption", {}, t("diag.parts")),
        h(
          "tbody",
          {},
          info.parts.map((p) =>
            h(
              "tr",
              { dataset: { healthy: String(p.healthy) } },
              h("th", { scope: "row" }, p.name),
              h("td", { class: p.healthy ? "ok" : "fault" }, p.healthy ? t("diag.ok") : t("diag.fault")),
              h("td", { class: "detail" }, p.detail),
            ),
          ),
        ),
      ),
    );
    const bad = info.parts.filter((p) => !p.healthy);
    const raised = alarms.filter((a) => a.active);
    replace(
      faults,
      info.restart_required ? h("p", { class: "warning" }, t("diag.restart_required")) : null,
      raised.map((a) =>
        h(
          "p",
          { class: "warning alarm-raised", dataset: { alarm: a.name, acknowledged: String(a.acknowledged) } },
          t(waiting(a) ? "diag.alarm_waiting" : "diag.alarm", { name: a.name, rule: ruleText(a) }),
          " ",
          h("a", { href: "#/alarms" }, t("diag.alarms_link")),
        ),
      ),
      bad.length
        ? bad.map((p) => h("p", { class: "warning fault-item" }, `${p.name}: ${p.detail}`))
        : h("p", { class: "ok" }, t("diag.no_faults")),
    );
  }

  replace(
    main,
    h(
      "div",
      { class: "diag" },
      h("section", { class: "card" }, h("h2", {}, t("diag.values")), values),
      h("section", { class: "card" }, h("h2", {}, t("diag.faults")), faults),
      io.element,
      h("section", { class: "card" }, h("h2", {}, t("diag.device")), system),
    ),
  );
  drawValues();
  await Promise.all([drawSystem(), io.start()]);
  const timer = setInterval(drawSystem, REFRESH_MS);
  const stop = live.subscribe(drawValues);
  return () => {
    clearInterval(timer);
    io.stop();
    stop();
  };
}
