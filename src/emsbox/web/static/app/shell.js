// The logged-in app: top bar, navigation and the page chosen by the address's hash
// (#/dashboard, #/history?load=main, ...). Each page is a module loaded when first opened,
// so the first load stays small; its ``render(main, ctx, params)`` may return a function that
// stops what the page started (timers, live subscriptions) when another page is opened.
// The menu's Alarms entry carries a badge with the alarms raised and not yet acknowledged,
// asked every 2 s on every page (the Alarms page sets it from its own answers); where the menu
// may not show that entry (a phone's menu scrolls sideways) the top bar says so as well.

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import * as live from "./live.js";
import { loadVariables } from "./variables.js";

const ROLE_RANK = { viewer: 0, installer: 1, admin: 2 };
const ALARMS_EVERY_MS = 2000;

// Path, label key, role needed, module.
const PAGES = [
  ["dashboard", "nav.dashboard", "viewer", () => import("./dashboard.js")],
  ["history", "nav.history", "viewer", () => import("./history.js")],
  ["energy", "nav.energy", "viewer", () => import("./energy.js")],
  ["counters", "nav.counters", "viewer", () => import("./counters.js")],
  ["quality", "nav.quality", "viewer", () => import("./quality.js")],
  ["alarms", "nav.alarms", "viewer", () => import("./alarms.js")],
  ["diagnostics", "nav.diagnostics", "viewer", () => import("./diagnostics.js")],
  ["settings", "nav.settings", "installer", () => import("./settings.js")],
  ["users", "nav.users", "admin", () => import("./users.js")],
  ["account", "nav.account", "viewer", () => import("./account.js")],
];

let early = null;

/** Start what every page needs (loads, variables, the live stream) as soon as the user is known. */
export function prefetch() {
  live.start();
  early ??= Promise.all([api("GET", "/loads"), loadVariables()]);
}

/** Show the app for a logged-in user; ``ctx`` holds ``me``, ``preferences``, ``site`` and ``boot``. */
export async function showApp(root, ctx) {
  prefetch();
  const [loads] = await early;
  early = null;
  const app = {
    ...ctx,
    loads,
    /** Whether the user's role includes ``role``. */
    can: (role) => ROLE_RANK[ctx.me.role] >= ROLE_RANK[role],
    /** Store some of the user's preferences on the device and keep ``app.preferences`` in step. */
    savePreferences: async (changes) => {
      app.preferences = await api("PUT", "/me/preferences", changes);
      return app.preferences;
    },
    /** Open a page: ``navigate("history", { load: "main" })``. */
    navigate: (path, params = {}) => {
      const query = new URLSearchParams(params).toString();
      location.hash = `#/${path}${query ? `?${query}` : ""}`;
    },
    /** Show in the menu's badge what GET /alarms answered. */
    showAlarms: (alarms) => showAlarms(alarms),
  };
  const pages = PAGES.filter(([, , role]) => app.can(role));
  let stopPage = null;
  let shown = 0;
  let current = null; // the path of the page shown
  let alarmTimer = null;
  let polling = true;
  const badge = h("span", { class: "nav-badge", id: "alarm-badge", hidden: true });
  const alert = h("a", { class: "alarm-alert", id: "alarm-alert", href: "#/alarms", hidden: true });

  const main = h("main", { id: "page", tabindex: "-1" });
  const connection = h("span", { class: "connection", role: "status" });
  const stopStatus = live.onStatus((online) => {
    connection.textContent = online ? "" : t("app.offline");
    connection.classList.toggle("offline", !online);
  });

  const nav = h(
    "nav",
    { class: "mainnav", "aria-label": t("nav.main") },
    h(
      "ul",
      {},
      pages.map(([path, label]) =>
        h("li", {}, h("a", { href: `#/${path}`, dataset: { page: path } }, t(label), path === "alarms" ? badge : null)),
      ),
    ),
  );

  const languages = h(
    "select",
    {
      id: "language",
      "aria-label": t("nav.language"),
      onchange: async (event) => {
        await app.savePreferences({ language: event.target.value });
        await setLanguage(event.target.value);
        teardown();
        showApp(root, { ...ctx, preferences: app.preferences });
      },
    },
    Object.entries(LANGUAGES).map(([code, label]) =>
      h("option", { value: code, selected: code === language() }, label),
    ),
  );

  const logout = h(
    "button",
    {
      type: "button",
      class: "secondary",
      id: "logout",
      onclick: async () => {
        teardown();
        live.stop();
        await api("POST", "/logout");
        history.replaceState(null, "", location.pathname);
        ctx.boot();
      },
    },
    t("nav.logout"),
  );

  // The badge: how many alarms are raised and not acknowledged; once all are acknowledged,
  // how many are still raised, in a quieter style; nothing while none is raised.
  function showAlarms(alarms) {
    const raised = alarms.filter((a) => a.active);
    const waiting = raised.filter((a) => !a.acknowledged).length;
    const count = waiting || raised.length;
    const text = waiting
      ? t("nav.alarms_unacknowledged", { count: waiting })
      : t("nav.alarms_raised", { count: raised.length });
    badge.hidden = count === 0;
    alert.hidden = waiting === 0;
    const alertText = t("app.alarms_waiting", { count: waiting });
    if (alert.textContent !== alertText) alert.textContent = alertText;
    badge.classList.toggle("acknowledged", !waiting);
    badge.dataset.unacknowledged = String(waiting);
    badge.dataset.raised = String(raised.length);
    if (badge.title !== text) {
      badge.title = text;
      replace(
        badge,
        h("span", { "aria-hidden": "true" }, String(count)),
        h("span", { class: "sr-only" }, ` (${text})`),
      );
    }
  }

  async function pollAlarms() {
    alarmTimer = null;
    if (current !== "alarms") {
      try {
        const alarms = await api("GET", "/alarms");
        if (polling && current !== "alarms") showAlarms(alarms);
      } catch {
        // The badge keeps what it showed; the pages say when the device cannot be reached.
      }
    }
    if (polling) alarmTimer = setTimeout(pollAlarms, ALARMS_EVERY_MS);
  }

  function teardown() {
    polling = false;
    clearTimeout(alarmTimer);
    window.removeEventListener("hashchange", route);
    stopStatus();
    stopPage?.();
    stopPage = null;
    shown += 1;
  }

  async function route() {
    const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
    const page = pages.find(([p]) => p === path);
    if (!page) {
      history.replaceState(null, "", "#/dashboard");
      route();
      return;
    }
    stopPage?.();
    stopPage = null;
    current = path;
    const mine = ++shown;
    for (const a of nav.querySelectorAll("a")) {
      if (a.dataset.page === path) {
        a.setAttribute("aria-current", "page");
        // On a phone the menu scrolls sideways: keep the current page's entry in view.
        a.scrollIntoView({ block: "nearest", inline: "nearest" });
      } else a.removeAttribute("aria-current");
    }
    replace(main, h("p", { class: "loading" }, "…"));
    try {
      const module = await page[3]();
      if (mine !== shown) return; // another page was chosen meanwhile
      // Each page draws into a container of its own: a page still loading when another is
      // chosen draws into its container, which is no longer shown, never over the new page.
      const container = h("div", { class: "page", dataset: { page: path } });
      main.replaceChildren(container);
      document.title = `${t(page[1])} · ${ctx.site}`;
      const stop = await module.render(container, app, new URLSearchParams(query || ""));
      if (mine !== shown) stop?.();
      else stopPage = stop || null;
    } catch (error) {
      if (mine === shown)
        replace(
          main,
          h("p", { class: "fatal", role: "alert" }, t("common.error.unexpected", { detail: error.message })),
        );
    }
  }

  replace(
    root,
    h(
      "a",
      {
        class: "skip",
        href: "#page",
        onclick: (e) => {
          e.preventDefault();
          main.focus();
        },
      },
      t("nav.skip"),
    ),
    h(
      "header",
      { class: "topbar" },
      h("h1", {}, ctx.site),
      alert,
      connection,
      h(
        "div",
        { class: "user" },
        h("span", { class: "who" }, `${ctx.me.name} · ${t(`role.${ctx.me.role}`)}`),
        languages,
        logout,
      ),
    ),
    nav,
    main,
  );
  window.addEventListener("hashchange", route);
  live.start();
  pollAlarms();
  await route();
}
