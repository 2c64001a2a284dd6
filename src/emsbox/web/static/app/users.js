// The users page (#/users, admins only): roles, password resets, removal and new users; also the
// dialogs and form fields that the account page (account.js) shares with it.

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

/** The roles, lowest first. */
export const ROLES = ["viewer", "installer", "admin"];
// The longest user or token name and password the server takes.
export const MAX_NAME = 64;
export const MAX_PASSWORD = 1024;

let serial = 0;

/** A role's name in the user's language. */
export function roleLabel(role) {
  return t(`role.${role}`);
}

/** A labelled input with an optional hint and a line for its error; ``fail(message)`` shows one. */
export function field(id, label, input, hint) {
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const hintNode = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const described = () =>
    [hintNode ? `${id}-hint` : "", error.textContent ? `${id}-error` : ""].filter(Boolean).join(" ");
  if (hintNode) input.setAttribute("aria-describedby", described());
  return {
    node: h("div", { class: "users-field" }, h("label", { for: id }, label), input, hintNode, error),
    input,
    fail(message) {
      error.textContent = message || "";
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      const ids = described();
      if (ids) input.setAttribute("aria-describedby", ids);
      else input.removeAttribute("aria-describedby");
    },
  };
}

/** A password input (new or current password) with the server's length limit. */
export function passwordInput(autocomplete) {
  return h("input", { type: "password", autocomplete, maxlength: MAX_PASSWORD, required: true });
}

/** A select of the roles up to ``highest``, ``value`` chosen. */
export function roleSelect(value, highest = "admin", attrs = {}) {
  const allowed = ROLES.slice(0, ROLES.indexOf(highest) + 1);
  return h(
    "select",
    attrs,
    allowed.map((role) => h("option", { value: role, selected: role === value }, roleLabel(role))),
  );
}

/** Clear the errors shown by ``fields`` and in ``alert``. */
export function clearErrors(fields, alert) {
  for (const f of fields) f.fail("");
  alert.textContent = "";
}

/** Show a refusal by the first field whose pattern matches the server's message, else in ``alert``. */
export function showRefusal(error, routes, alert) {
  if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) {
    alert.textContent =
      error instanceof ApiError && error.status === 0
        ? t("common.error.network")
        : t("common.error.unexpected", { detail: error.message });
    return;
  }
  for (const [pattern, f] of routes) {
    if (pattern.test(error.message)) {
      f.fail(error.message);
      f.input.focus();
      return;
    }
  }
  alert.textContent = error.message;
}

/** An error in words for an alert: the server's message, or what went wrong on the way. */
export function errorText(error) {
  if (error instanceof ApiError && error.status === 0) return t("common.error.network");
  if (error instanceof ApiError && error.status < 500) return error.message;
  return t("common.error.unexpected", { detail: error.message });
}

/**
 * Open a modal ``<dialog>`` in ``parent`` with a title and a form; resolves with its return value
 * ("" when closed with Escape) once closed, after which it is removed.
 */
export function openDialog(parent, title, children, attrs = {}) {
  const id = `users-dialog-${++serial}`;
  const form = h("form", { method: "dialog", ...attrs }, h("h2", { id }, title), children);
  const dialog = h("dialog", { class: "users-dialog", "aria-labelledby": id }, form);
  parent.append(dialog);
  return {
    dialog,
    closed: new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        dialog.remove();
        resolve(dialog.returnValue);
      });
      dialog.showModal();
    }),
  };
}

/** Ask a yes/no question in a modal dialog; resolves true if confirmed. */
export async function confirmDialog(parent, title, text, confirm) {
  const { closed } = openDialog(parent, title, [
    h("p", {}, text),
    h(
      "div",
      { class: "users-buttons" },
      h("button", { type: "submit", value: "cancel" }, t("users.cancel")),
      h("button", { type: "submit", value: "ok", class: "users-danger" }, confirm),
    ),
  ]);
  return (await closed) === "ok";
}

/**
 * A dialog with a form whose submit runs ``submit()``: it stays open while that throws or returns
 * false, and resolves true once it succeeded (false if cancelled).
 */
export async function formDialog(parent, title, children, label, submit) {
  const button = h("button", { type: "submit", class: "primary" }, label);
  let busy = false;
  const { dialog, closed } = openDialog(
    parent,
    title,
    [
      children,
      h(
        "div",
        { class: "users-buttons" },
        h("button", { type: "button", onclick: () => dialog.close("cancel") }, t("users.cancel")),
        button,
      ),
    ],
    {
      onsubmit: async (event) => {
        event.preventDefault();
        if (busy) return;
        busy = true;
        button.disabled = true;
        try {
          if (await submit()) dialog.close("ok");
        } finally {
          busy = false;
          button.disabled = false;
        }
      },
    },
  );
  return (await closed) === "ok";
}

/** Whether the two password fields agree; shows the mismatch by the second if not. */
export function samePasswords(first, second) {
  if (first.input.value === second.input.value) return true;
  second.fail(t("users.password.mismatch"));
  second.input.focus();
  return false;
}

/** Show the users page. */
export async function render(main, app) {
  const status = h("p", { class: "users-status", role: "status" });
  const alert = h("p", { class: "form-error", role: "alert" });
  const body = h("tbody");
  const table = h(
    "div",
    { class: "users-scroll" },
    h(
      "table",
      { class: "users-table users-stack", id: "users-table" },
      h("caption", { class: "sr-only" }, t("users.list.caption")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("users.name")),
          h("th", { scope: "col" }, t("users.role")),
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("users.actions"))),
        ),
      ),
      body,
    ),
  );

  function report(message) {
    alert.textContent = "";
    status.textContent = message;
  }

  function fail(error) {
    status.textContent = "";
    alert.textContent = errorText(error);
  }

  async function load() {
    const users = await api("GET", "/users");
    replace(body, users.map(row));
  }

  function row(user) {
    const own = user.name.toLowerCase() === app.me.name.toLowerCase();
    const nameCell = h(
      "th",
      { scope: "row" },
      user.name,
      own ? h("span", { class: "users-you" }, t("users.you")) : null,
    );
    if (own) {
      return h(
        "tr",
        { dataset: { user: user.name } },
        nameCell,
        h("td", {}, roleLabel(user.role)),
        h("td", { class: "users-actions" }, h("a", { href: "#/account" }, t("users.own.password"))),
      );
    }
    const select = roleSelect(user.role, "admin", {
      class: "users-role",
      "aria-label": t("users.role.of", { name: user.name }),
      onchange: async () => {
        select.disabled = true;
        try {
          const changed = await api("PUT", `/users/${encodeURIComponent(user.name)}/role`, {
            role: select.value,
          });
          user.role = changed.role;
          report(t("users.role.changed", { name: user.name, role: roleLabel(changed.role) }));
        } catch (error) {
          select.value = user.role;
          fail(error);
        } finally {
          select.disabled = false;
        }
      },
    });
    return h(
      "tr",
      { dataset: { user: user.name } },
      nameCell,
      h("td", {}, select),
      h(
        "td",
        { class: "users-actions" },
        h("button", { type: "button", class: "users-reset", onclick: () => resetPassword(user) }, t("users.reset")),
        h(
          "button",
          { type: "button", class: "users-remove users-danger", onclick: () => remove(user) },
          t("users.remove"),
        ),
      ),
    );
  }

  async function resetPassword(user) {
    const formAlert = h("p", { class: "form-error", role: "alert" });
    const password = field(
      "users-reset-password",
      t("users.password.new"),
      passwordInput("new-password"),
      t("users.password.rule"),
    );
    const repeat = field("users-reset-repeat", t("users.password.repeat"), passwordInput("new-password"));
    const done = await formDialog(
      main,
      t("users.reset.title", { name: user.name }),
      [h("p", { class: "hint" }, t("users.reset.intro")), password.node, repeat.node, formAlert],
      t("users.reset.submit"),
      async () => {
        clearErrors([password, repeat], formAlert);
        if (!samePasswords(password, repeat)) return false;
        try {
          await api("PUT", `/users/${encodeURIComponent(user.name)}/password`, { password: password.input.value });
          return true;
        } catch (error) {
          showRefusal(error, [[/password/i, password]], formAlert);
          return false;
        }
      },
    );
    if (done) report(t("users.reset.done", { name: user.name }));
  }

  async function remove(user) {
    const sure = await confirmDialog(
      main,
      t("users.remove.title", { name: user.name }),
      t("users.remove.text"),
      t("users.remove"),
    );
    if (!sure) return;
    try {
      await api("DELETE", `/users/${encodeURIComponent(user.name)}`);
      report(t("users.remove.done", { name: user.name }));
    } catch (error) {
      fail(error);
    }
    await load().catch(fail);
  }

  // Adding a user.
  const addAlert = h("p", { class: "form-error", role: "alert" });
  const name = field(
    "users-add-name",
    t("users.name"),
    h("input", { autocomplete: "off", maxlength: MAX_NAME, required: true, spellcheck: "false" }),
    t("users.name.rule"),
  );
  const role = field("users-add-role", t("users.role"), roleSelect("viewer"));
  const password = field(
    "users-add-password",
    t("users.password"),
    passwordInput("new-password"),
    t("users.password.rule"),
  );
  const repeat = field("users-add-repeat", t("users.password.repeat"), passwordInput("new-password"));
  const addButton = h("button", { type: "submit", class: "primary" }, t("users.add.submit"));
  const addForm = h(
    "form",
    {
      class: "card users-form",
      id: "users-add",
      "aria-labelledby": "users-add-title",
      onsubmit: async (event) => {
        event.preventDefault();
        clearErrors([name, role, password, repeat], addAlert);
        if (!samePasswords(password, repeat)) return;
        addButton.disabled = true;
        try {
          const user = await api("POST", "/users", {
            name: name.input.value.trim(),
            role: role.input.value,
            password: password.input.value,
          });
          addForm.reset();
          report(t("users.add.done", { name: user.name, role: roleLabel(user.role) }));
          await load();
        } catch (error) {
          showRefusal(
            error,
            [
              [/password/i, password],
              [/role/i, role],
              [/name/i, name],
            ],
            addAlert,
          );
        } finally {
          addButton.disabled = false;
        }
      },
    },
    h("h3", { id: "users-add-title" }, t("users.add.title")),
    name.node,
    role.node,
    password.node,
    repeat.node,
    addAlert,
    h("div", { class: "users-buttons" }, addButton),
  );

  await load();
  replace(
    main,
    h(
      "div",
      { class: "users-page" },
      h("h2", {}, t("users.title")),
      h("p", { class: "muted" }, t("users.intro")),
      h("section", { class: "card users-list", "aria-label": t("users.list.caption") }, table, status, alert),
      addForm,
    ),
  );
}
