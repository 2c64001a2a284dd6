// The login page.

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

/** Show the login form; ``done`` runs once logged in. */
export function showLogin(root, setup, done) {
  const name = h("input", { id: "login-name", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const message = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = h(
    "form",
    { class: "card narrow", onsubmit: onSubmit },
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, setup.site_name),
    h("label", { for: "login-name" }, t("login.name")),
    name,
    h("label", { for: "login-password" }, t("login.password")),
    password,
    message,
    submit,
  );

  async function onSubmit(event) {
    event.preventDefault();
    submit.disabled = true;
    message.textContent = "";
    try {
      await api("POST", "/login", { name: name.value.trim(), password: password.value });
      done();
    } catch (error) {
      submit.disabled = false;
      if (error instanceof ApiError && error.status === 401) {
        message.textContent = error.retryAfter
          ? t("login.throttled", { seconds: error.retryAfter })
          : t("login.refused");
      } else if (error instanceof ApiError && error.status === 0) {
        message.textContent = t("common.error.network");
      } else {
        message.textContent = t("common.error.unexpected", { detail: error.message });
      }
      password.select();
    }
  }

  replace(root, h("main", { class: "center" }, form));
  name.focus();
}
