// The web app: first-start wizard while no admin exists, then login, then the dashboard.

import { api, ApiError } from "./api.js";
import { showDashboard } from "./dashboard.js";
import { browserLanguage, setLanguage, t } from "./i18n.js";
import { h, replace } from "./dom.js";
import { showLogin } from "./login.js";
import { showWizard } from "./wizard.js";

const root = document.getElementById("app");

/** Decide what to show from the device's state and the caller's session. */
export async function boot() {
  try {
    const setup = await api("GET", "/setup");
    if (setup.needed) {
      await setLanguage(browserLanguage() || setup.language);
      showWizard(root, setup, boot);
      return;
    }
    let me = null;
    try {
      me = await api("GET", "/me");
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
    }
    if (me === null || me.via !== "session") {
      await setLanguage(browserLanguage() || setup.language);
      showLogin(root, setup, boot);
      return;
    }
    const preferences = await api("GET", "/me/preferences");
    await setLanguage(preferences.language || setup.language);
    showDashboard(root, { me, site: setup.site_name, boot });
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
