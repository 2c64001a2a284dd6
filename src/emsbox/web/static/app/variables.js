// The measured variables (VARIABLES.md) as the pages show them: translated label, display unit
// (powers in kW, kvar, kVA) and decimals. Units come from the device (GET /api/v1/variables).

import { api } from "./api.js";
import { num, t } from "./i18n.js";

let catalog = {};
// The phase part of a name: v_l1, thd_v_l12, i_n, kwh_imp_l2.
const PHASE = /_(l1|l2|l3|l12|l23|l31|n)(?=_|$)/;
// Unit as shown, scale from the device's unit and decimals, by the device's unit.
const SHOWN = {
  W: ["kW", 1e-3, 2],
  var: ["kvar", 1e-3, 2],
  VA: ["kVA", 1e-3, 2],
  V: ["V", 1, 1],
  A: ["A", 1, 2],
  Hz: ["Hz", 1, 2],
  "%": ["%", 1, 1],
  kWh: ["kWh", 1, 1],
  kvarh: ["kvarh", 1, 1],
  kVAh: ["kVAh", 1, 1],
  h: ["h", 1, 1],
};

/** Fetch the catalogue of variables once (the shell does it before any page is shown). */
export async function loadVariables() {
  if (!Object.keys(catalog).length) {
    const list = await api("GET", "/variables");
    catalog = Object.fromEntries(list.map((v) => [v.name, v]));
  }
  return catalog;
}

/** The variable named ``name`` ({name, unit, kind, description, phase}), or undefined. */
export function variable(name) {
  return catalog[name];
}

/** Every variable of the catalogue. */
export function all() {
  return Object.values(catalog);
}

/** The translated label of a variable, e.g. "Active power L1". */
export function label(name) {
  const match = name.match(PHASE);
  if (!match) return t(`var.${name}`);
  const phase = match[1];
  const stem = name.replace(PHASE, "") + (phase.length === 3 ? "_ll" : "");
  const suffix = phase === "n" ? "N" : phase.length === 3 ? `L${phase[1]}-L${phase[2]}` : phase.toUpperCase();
  return `${t(`var.${stem}`)} ${suffix}`;
}

/** How values in the device's ``unit`` are shown: {unit, scale, decimals}. */
export function shownUnit(unit) {
  const [shown, scale, decimals] = SHOWN[unit] || [unit, 1, unit === "" ? 3 : 2];
  return { unit: shown, scale, decimals };
}

/** How a variable is shown: {unit, scale, decimals} (power factor: no unit, 3 decimals). */
export function display(name) {
  return shownUnit(catalog[name]?.unit ?? "");
}

/** A value of ``name`` as text in its display unit, without the unit. */
export function formatValue(name, value) {
  const { scale, decimals } = display(name);
  return num(typeof value === "number" ? value * scale : NaN, decimals);
}
