// The own-account page (#/account, every user): name and role, own password, own API tokens
// (an admin sees and may revoke every user's tokens).

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime, t } from "./i18n.js";
import {
  MAX_NAME,
  clearErrors,
  confirmDialog,
  errorText,
  field,
  openDialog,
  passwordInput,
  roleLabel,
  roleSelect,
  samePasswords,
  showRefusal,
} from "./users.js";

/** Show the account page. */
export async function render(main, app) {
  const admin = app.can("admin");

  // -- password ---------------------------------------------------------------------------
  const passwordStatus = h("p", { class: "users-status", role: "status" });
  const passwordAlert = h("p", { class: "form-error", role: "alert" });
  const current = field("account-current", t("users.account.password.current"), passwordInput("current-password"));
  const next = field("account-new", t("users.password.new"), passwordInput("new-password"), t("users.password.rule"));
  const repeat = field("account-repeat", t("users.password.repeat"), passwordInput("new-password"));
  const passwordButton = h("button", { type: "submit", class: "primary" }, t("users.account.password.submit"));
  const passwordForm = h(
    "form",
    {
      class: "card users-form",
      id: "account-password",
      "aria-labelledby": "account-password-title",
      onsubmit: async (event) => {
        event.preventDefault();
        passwordStatus.textContent = "";
        clearErrors([current, next, repeat], passwordAlert);
        if (!samePasswords(next, repeat)) return;
        passwordButton.disabled = true;
        const password = next.input.value;
        try {
          await api("PUT", "/me/password", { password, current_password: current.input.value });
        } catch (error) {
          passwordButton.disabled = false;
          showRefusal(
            error,
            [
              [/current password/i, current],
              [/password/i, next],
            ],
            passwordAlert,
          );
          return;
        }
        // The device ends the user's other sessions; this one stays.
        passwordButton.disabled = false;
        passwordForm.reset();
        passwordStatus.textContent = t("users.account.password.done");
      },
    },
    h("h3", { id: "account-password-title" }, t("users.account.password.title")),
    current.node,
    next.node,
    repeat.node,
    passwordAlert,
    h("div", { class: "users-buttons" }, passwordButton),
    passwordStatus,
  );

  // -- API tokens -------------------------------------------------------------------------
  const tokenStatus = h("p", { class: "users-status", role: "status" });
  const tokenAlert = h("p", { class: "form-error", role: "alert" });
  const tokenBody = h("tbody");
  const tokenTable = h(
    "table",
    { class: "users-table users-stack", id: "account-tokens" },
    h("caption", { class: "sr-only" }, t("users.account.tokens.title")),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("users.account.tokens.name")),
        admin ? h("th", { scope: "col" }, t("users.account.tokens.owner")) : null,
        h("th", { scope: "col" }, t("users.role")),
        h("th", { scope: "col" }, t("users.account.tokens.created")),
        h("th", { scope: "col" }, t("users.account.tokens.used")),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("users.actions"))),
      ),
    ),
    tokenBody,
  );
  const noTokens = h("p", { class: "empty" }, t("users.account.tokens.none"));

  function report(message) {
    tokenAlert.textContent = "";
    tokenStatus.textContent = message;
  }

  async function loadTokens() {
    const tokens = await api("GET", "/tokens");
    replace(tokenBody, tokens.map(tokenRow));
    tokenTable.hidden = !tokens.length;
    noTokens.hidden = tokens.length > 0;
  }

  function tokenRow(token) {
    return h(
      "tr",
      { dataset: { token: token.id } },
      h("th", { scope: "row" }, token.name),
      admin
        ? h("td", { "data-label": t("users.account.tokens.owner") }, token.owner ?? t("users.account.tokens.cli"))
        : null,
      h("td", { "data-label": t("users.role") }, roleLabel(token.role)),
      h("td", { "data-label": t("users.account.tokens.created") }, dateTime(token.created_at)),
      h(
        "td",
        { "data-label": t("users.account.tokens.used") },
        token.last_used_at ? dateTime(token.last_used_at) : t("users.account.tokens.never"),
      ),
      h(
        "td",
        { class: "users-actions" },
        h(
          "button",
          {
            type: "button",
            class: "users-danger account-revoke",
            "aria-label": t("users.account.tokens.revoke.of", { name: token.name }),
            onclick: () => revoke(token),
          },
          t("users.account.tokens.revoke"),
        ),
      ),
    );
  }

  async function revoke(token) {
    const sure = await confirmDialog(
      main,
      t("users.account.tokens.revoke.title", { name: token.name }),
      t("users.account.tokens.revoke.text"),
      t("users.account.tokens.revoke"),
    );
    if (!sure) return;
    try {
      await api("DELETE", `/tokens/${encodeURIComponent(token.id)}`);
      report(t("users.account.tokens.revoked", { name: token.name }));
    } catch (error) {
      tokenStatus.textContent = "";
      tokenAlert.textContent = errorText(error);
    }
    await loadTokens().catch((error) => {
      tokenAlert.textContent = errorText(error);
    });
  }

  function showSecret(token) {
    const copied = h("p", { class: "users-status", role: "status" });
    const secret = h(
      "textarea",
      {
        id: "account-secret",
        class: "users-secret",
        readonly: true,
        rows: 2,
        spellcheck: "false",
        onfocus: (event) => event.target.select(),
      },
      token.secret,
    );
    const copy = async () => {
      secret.select();
      try {
        await navigator.clipboard.writeText(token.secret);
        copied.textContent = t("users.account.secret.copied");
      } catch {
        copied.textContent = t("users.account.secret.copy_by_hand");
      }
    };
    openDialog(main, t("users.account.secret.title", { name: token.name }), [
      h("p", { class: "warning" }, t("users.account.secret.once")),
      h("label", { for: "account-secret" }, t("users.account.secret.label")),
      h(
        "div",
        { class: "users-copy" },
        secret,
        h("button", { type: "button", id: "account-copy", onclick: copy }, t("users.account.secret.copy")),
      ),
      copied,
      h("p", { class: "hint" }, t("users.account.secret.use")),
      h(
        "div",
        { class: "users-buttons" },
        h("button", { type: "submit", class: "primary", value: "ok" }, t("users.account.secret.done")),
      ),
    ]);
  }

  const tokenName = field(
    "account-token-name",
    t("users.account.tokens.name"),
    h("input", { autocomplete: "off", maxlength: MAX_NAME, required: true, spellcheck: "false" }),
    t("users.name.rule"),
  );
  const tokenRole = field("account-token-role", t("users.role"), roleSelect("viewer", app.me.role));
  const createButton = h("button", { type: "submit", class: "primary" }, t("users.account.tokens.create"));
  const createAlert = h("p", { class: "form-error", role: "alert" });
  const createForm = h(
    "form",
    {
      class: "users-form users-subform",
      id: "account-token-create",
      "aria-labelledby": "account-token-create-title",
      onsubmit: async (event) => {
        event.preventDefault();
        clearErrors([tokenName, tokenRole], createAlert);
        tokenStatus.textContent = "";
        createButton.disabled = true;
        try {
          const token = await api("POST", "/tokens", {
            name: tokenName.input.value.trim(),
            role: tokenRole.input.value,
          });
          createForm.reset();
          showSecret(token);
          await loadTokens();
        } catch (error) {
          showRefusal(
            error,
            [
              [/token name|token named|body\.name/i, tokenName],
              [/role/i, tokenRole],
            ],
            createAlert,
          );
        } finally {
          createButton.disabled = false;
        }
      },
    },
    h("h4", { id: "account-token-create-title" }, t("users.account.tokens.new")),
    tokenName.node,
    tokenRole.node,
    createAlert,
    h("div", { class: "users-buttons" }, createButton),
  );

  await loadTokens();
  replace(
    main,
    h(
      "div",
      { class: "users-page" },
      h("h2", {}, t("users.account.title")),
      h(
        "section",
        { class: "card", "aria-labelledby": "account-me-title" },
        h("h3", { id: "account-me-title" }, t("users.account.me")),
        h(
          "dl",
          { class: "summary", id: "account-me" },
          h("dt", {}, t("users.name")),
          h("dd", { dataset: { field: "name" } }, app.me.name),
          h("dt", {}, t("users.role")),
          h("dd", { dataset: { field: "role", role: app.me.role } }, roleLabel(app.me.role)),
        ),
        h("p", { class: "hint" }, t(`users.account.role.${app.me.role}`)),
      ),
      passwordForm,
      h(
        "section",
        { class: "card", "aria-labelledby": "account-tokens-title" },
        h("h3", { id: "account-tokens-title" }, t("users.account.tokens.title")),
        h("p", { class: "muted" }, admin ? t("users.account.tokens.intro_admin") : t("users.account.tokens.intro")),
        h("div", { class: "users-scroll" }, tokenTable),
        noTokens,
        tokenStatus,
        tokenAlert,
        createForm,
      ),
    ),
  );
}
