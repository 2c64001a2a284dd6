// The web app: first-start wizard while no admin exists, then login, then the app's pages
// (the wizard and the login page are loaded only when shown).

import { api, ApiError } from "./api.js";
import { browserLanguage, setLanguage, t } from "./i18n.js";
import { h, replace } from "./dom.js";
import { prefetch, showApp } from "./shell.js";

const root = document.getElementById("app");

/** Decide what to show from the device's state and the caller's session. */
export async function boot() {
  try {
    // Asked, not tried: GET /session answers "nobody" without an error before login.
    const [setup, session] = await Promise.all([api("GET", "/setup"), api("GET", "/session")]);
    if (setup.needed) {
      const [{ showWizard }] = await Promise.all([
        import("./wizard.js"),
        setLanguage(browserLanguage() || setup.language),
      ]);
      showWizard(root, setup, boot);
      return;
    }
    const me = session.user;
    if (me === null) {
      const [{ showLogin }] = await Promise.all([
        import("./login.js"),
        setLanguage(browserLanguage() || setup.language),
      ]);
      showLogin(root, setup, boot);
      return;
    }
    prefetch();
    const preferences = await api("GET", "/me/preferences");
    await setLanguage(preferences.language || setup.language);
    await showApp(root, { me, preferences, site: setup.site_name, boot });
  } catch (error) {
    await setLanguage(browserLanguage() || "en");
    const message =
      error instanceof ApiError && error.status === 0
        ? t("common.error.network")
        : t("common.error.unexpected", { detail: error.message });
    replace(root, h("p", { class: "fatal", role: "alert" }, message));
  }
}

boot();
