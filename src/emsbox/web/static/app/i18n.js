// Translations: every string of the web app by key, in each language. The strings live in one
// file per part of the app (i18n/<language>/<part>.json), loaded together.

let strings = {};
let current = "en";
export const LANGUAGES = { en: "English", it: "Italiano" };
// The parts; a key belongs to exactly one of them (tests/web/test_translations.py).
export const NAMESPACES = ["app", "charts", "settings", "users"];

/** Load a language's strings (English when the code is unknown). */
export async function setLanguage(code) {
  current = code in LANGUAGES ? code : "en";
  const parts = await Promise.all(
    NAMESPACES.map(async (ns) => (await fetch(`/static/app/i18n/${current}/${ns}.json`)).json()),
  );
  strings = Object.assign({}, ...parts);
  document.documentElement.lang = current;
}

/** The language in use. */
export function language() {
  return current;
}

/** The BCP 47 locale for dates and numbers in the language in use. */
export function locale() {
  return current === "it" ? "it-IT" : "en-GB";
}

/** The string of ``key`` with ``{name}`` placeholders filled in; the key itself if missing. */
export function t(key, params = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A number in the user's language, with a fixed number of decimals. */
export function num(value, decimals = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  return value.toLocaleString(locale(), {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

/** A date and time (seconds since the epoch) in the user's language. */
export function dateTime(seconds, options = { dateStyle: "short", timeStyle: "medium" }) {
  return new Date(seconds * 1000).toLocaleString(locale(), options);
}

/** The browser's preferred language among ours, if any. */
export function browserLanguage() {
  for (const tag of navigator.languages || []) {
    const code = tag.slice(0, 2).toLowerCase();
    if (code in LANGUAGES) return code;
  }
  return null;
}
