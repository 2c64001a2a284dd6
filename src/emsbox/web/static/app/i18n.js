// Translations: every string of the web app by key, in each language (en.json, it.json).

let strings = {};
let current = "en";
export const LANGUAGES = { en: "English", it: "Italiano" };

/** Load a language's strings (English when the code is unknown). */
export async function setLanguage(code) {
  current = code in LANGUAGES ? code : "en";
  const response = await fetch(`/static/app/i18n/${current}.json`);
  strings = await response.json();
  document.documentElement.lang = current;
}

/** The language in use. */
export function language() {
  return current;
}

/** The string of ``key`` with ``{name}`` placeholders filled in; the key itself if missing. */
export function t(key, params = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A number in the user's language, with a fixed number of decimals. */
export function num(value, decimals = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  return value.toLocaleString(current === "it" ? "it-IT" : "en-GB", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

/** The browser's preferred language among ours, if any. */
export function browserLanguage() {
  for (const tag of navigator.languages || []) {
    const code = tag.slice(0, 2).toLowerCase();
    if (code in LANGUAGES) return code;
  }
  return null;
}
