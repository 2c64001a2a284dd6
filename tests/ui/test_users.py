"""The users and my-account pages in Chromium: users, roles, passwords, tokens, lockout, viewers."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from ui_support import (
    ACTION_TIMEOUT_MS,
    ADMIN,
    ADMIN_PASSWORD,
    login,
    screenshot,
)

APP = Path(__file__).resolve().parents[2] / "src" / "emsbox" / "web" / "static" / "app"
PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another fine passphrase"


@pytest.fixture(scope="module")
def admin_api(ready) -> Iterator[httpx.Client]:
    """The API as the admin, by a session of its own."""
    with httpx.Client(base_url=f"{ready.url}api/v1", verify=False, timeout=60) as client:
        r = client.post("/login", json={"name": ADMIN, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        yield client


def _roles(admin_api: httpx.Client) -> dict[str, str]:
    r = admin_api.get("/users")
    assert r.status_code == 200, r.text
    return {u["name"]: u["role"] for u in r.json()}


def _add_user(admin_api: httpx.Client, name: str, role: str, password: str = PASSWORD) -> None:
    r = admin_api.post("/users", json={"name": name, "password": password, "role": role})
    assert r.status_code == 201, r.text


class Problems:
    """Console errors and failed requests of a page; refusals (4xx) only where expected."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.refusals: set[tuple[str, str, int]] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message) -> None:
        # The browser logs every 4xx answer too; those are checked as responses instead.
        refused = re.match(r"Failed to load resource: .* status of 4\d\d", message.text)
        if message.type == "error" and not refused:
            self.errors.append(message.text)

    def _failed(self, request) -> None:
        if not request.url.endswith("/api/v1/stream"):  # aborted when the page is left
            self.errors.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response) -> None:
        if response.status >= 400:
            path = "/" + response.url.split("/", 3)[3]
            self.refusals.add((response.request.method, path, response.status))
        if response.status >= 500:
            self.errors.append(f"{response.request.method} {response.url}: {response.status}")

    def assert_none(self, *expected: tuple[str, str, int]) -> None:
        """Fail on any error, and on any refusal but the ``(method, path, status)`` expected."""
        assert not self.errors, self.errors
        # Before logging in, the app asks who the caller is and is told: nobody (401).
        unexpected = self.refusals - {*expected, ("GET", "/api/v1/me", 401)}
        assert not unexpected, sorted(unexpected)


def _open(page: Page, served, path: str) -> None:
    page.goto(f"{served.url}#/{path}")
    expect(page.locator("main .users-page")).to_be_visible()


def _no_overflow(page: Page) -> None:
    # Against the screen's width: a phone browser widens its window to fit content that is wider.
    width = page.evaluate("document.documentElement.scrollWidth") - page.viewport_size["width"]
    assert width <= 0, f"the page scrolls sideways by {width} px"


def _row(page: Page, name: str):
    return page.locator(f"#users-table tbody tr[data-user='{name}']")


def test_admin_adds_users_and_the_server_refusals_show_by_their_fields(page, ready, admin_api):
    problems = Problems(page)
    login(page, ready)
    _open(page, ready, "users")
    expect(_row(page, ADMIN).locator(".users-you")).to_be_visible()
    # No way to remove or demote oneself from this page.
    expect(_row(page, ADMIN).locator("button, select")).to_have_count(0)

    page.fill("#users-add-name", "ivan")
    page.select_option("#users-add-role", "installer")
    page.fill("#users-add-password", "password")
    page.fill("#users-add-repeat", "password")
    page.click("#users-add button[type=submit]")
    expect(page.locator("#users-add-password-error")).to_contain_text("commonly used passwords")
    expect(page.locator("#users-add-password")).to_have_attribute("aria-invalid", "true")
    assert "ivan" not in _roles(admin_api)

    page.fill("#users-add-password", PASSWORD)
    page.fill("#users-add-repeat", PASSWORD + "x")
    page.click("#users-add button[type=submit]")
    expect(page.locator("#users-add-repeat-error")).to_have_text("The two passwords differ.")
    expect(page.locator("#users-add-password-error")).to_be_empty()

    page.fill("#users-add-repeat", PASSWORD)
    page.click("#users-add button[type=submit]")
    expect(page.locator(".users-list .users-status")).to_contain_text("ivan was added as")
    expect(_row(page, "ivan").locator("select")).to_have_value("installer")
    expect(page.locator("#users-add-name")).to_have_value("")

    # A name taken already (names ignore case) is refused by the name field.
    page.fill("#users-add-name", "IVAN")
    page.fill("#users-add-password", PASSWORD)
    page.fill("#users-add-repeat", PASSWORD)
    page.click("#users-add button[type=submit]")
    expect(page.locator("#users-add-name-error")).to_contain_text("exists already")

    page.fill("#users-add-name", "vera")
    page.select_option("#users-add-role", "viewer")
    page.click("#users-add button[type=submit]")
    expect(_row(page, "vera").locator("select")).to_have_value("viewer")
    roles = _roles(admin_api)
    assert roles["ivan"] == "installer"
    assert roles["vera"] == "viewer"
    screenshot(page, "users-desktop")
    problems.assert_none(("POST", "/api/v1/users", 400))


def test_admin_changes_a_role_resets_a_password_and_removes_a_user(
    page, browser: Browser, ready, admin_api
):
    _add_user(admin_api, "rita", "viewer")
    problems = Problems(page)
    login(page, ready)
    _open(page, ready, "users")

    # The role changes at once and the page says so.
    _row(page, "rita").locator("select").select_option("installer")
    expect(page.locator(".users-list .users-status")).to_contain_text("rita is now")
    assert _roles(admin_api)["rita"] == "installer"

    # Reset password: a dialog with the new password twice; Escape closes it with no change.
    _row(page, "rita").locator(".users-reset").click()
    dialog = page.locator("dialog.users-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("New password for rita")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    _row(page, "rita").locator(".users-reset").click()
    page.fill("#users-reset-password", "rita")
    page.fill("#users-reset-repeat", "rita")
    dialog.locator("button[type=submit]").click()
    expect(page.locator("#users-reset-password-error")).to_contain_text("too short")
    page.fill("#users-reset-password", OTHER_PASSWORD)
    page.fill("#users-reset-repeat", OTHER_PASSWORD)
    screenshot(page, "users-reset-dialog-desktop")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_have_count(0)
    expect(page.locator(".users-list .users-status")).to_contain_text(
        "password of rita was changed"
    )

    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        other = context.new_page()
        login(other, ready, "rita", OTHER_PASSWORD)
        expect(other.locator(".topbar .who")).to_contain_text("rita")
    finally:
        context.close()

    # Removal asks first; cancelling keeps the user.
    _row(page, "rita").locator(".users-remove").click()
    expect(dialog.locator("h2")).to_have_text("Remove the user rita?")
    dialog.locator("button[value=cancel]").click()
    expect(dialog).to_have_count(0)
    assert "rita" in _roles(admin_api)
    _row(page, "rita").locator(".users-remove").click()
    dialog.locator("button[value=ok]").click()
    expect(page.locator(".users-list .users-status")).to_have_text("rita was removed.")
    expect(_row(page, "rita")).to_have_count(0)
    assert "rita" not in _roles(admin_api)
    r = admin_api.put("/users/rita/role", json={"role": "viewer"})
    assert r.status_code in (400, 404) and "no user named" in r.json()["detail"], r.text
    problems.assert_none(("PUT", "/api/v1/users/rita/password", 400))


def test_own_password_change_keeps_this_session_and_ends_the_others(
    page, browser: Browser, ready, admin_api
):
    _add_user(admin_api, "olga", "installer")
    # Another browser where olga is logged in too.
    context = browser.new_context(ignore_https_errors=True, locale="en-US")
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        other = context.new_page()
        login(other, ready, "olga", PASSWORD)
        assert other.request.get(f"{ready.url}api/v1/me").status == 200

        problems = Problems(page)
        login(page, ready, "olga", PASSWORD)
        _open(page, ready, "account")
        expect(page.locator("#account-me [data-field=name]")).to_have_text("olga")
        expect(page.locator("#account-me [data-field=role]")).to_have_attribute(
            "data-role", "installer"
        )

        page.fill("#account-current", "not my password")
        page.fill("#account-new", OTHER_PASSWORD)
        page.fill("#account-repeat", OTHER_PASSWORD)
        page.click("#account-password button[type=submit]")
        expect(page.locator("#account-current-error")).to_have_text("the current password is wrong")

        page.fill("#account-current", PASSWORD)
        page.fill("#account-new", "olga")
        page.fill("#account-repeat", "olga")
        page.click("#account-password button[type=submit]")
        expect(page.locator("#account-new-error")).to_contain_text("too short")
        expect(page.locator("#account-current-error")).to_be_empty()

        page.fill("#account-new", OTHER_PASSWORD)
        page.fill("#account-repeat", OTHER_PASSWORD)
        page.click("#account-password button[type=submit]")
        expect(page.locator("#account-password .users-status")).to_contain_text(
            "every other session of yours was ended"
        )
        expect(page.locator("#account-current")).to_have_value("")
        # The other browser's session is over; this one goes on.
        assert other.request.get(f"{ready.url}api/v1/me").status == 401
        assert page.request.get(f"{ready.url}api/v1/me").json()["name"] == "olga"
        problems.assert_none(
            ("PUT", "/api/v1/me/password", 403), ("PUT", "/api/v1/me/password", 400)
        )
    finally:
        context.close()

    page.click("#logout")
    expect(page.locator("#login-name")).to_be_visible()
    login(page, ready, "olga", OTHER_PASSWORD)
    expect(page.locator(".topbar .who")).to_contain_text("olga")


def test_a_token_secret_is_shown_once_works_and_stops_working_once_revoked(page, ready):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    problems = Problems(page)
    login(page, ready)
    _open(page, ready, "account")
    expect(page.locator("#account-me [data-field=role]")).to_have_attribute("data-role", "admin")

    page.fill("#account-token-name", "building-scada")
    page.select_option("#account-token-role", "viewer")
    page.click("#account-token-create button[type=submit]")
    dialog = page.locator("dialog.users-dialog")
    expect(dialog).to_contain_text("it will not be shown again")
    secret = page.locator("#account-secret").input_value()
    assert secret.startswith("emsbox_"), secret
    page.click("#account-copy")
    expect(dialog.locator(".users-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "account-token-secret-desktop")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_have_count(0)
    # The secret is nowhere on the page any more.
    assert secret not in page.content()

    row = page.locator("#account-tokens tbody tr", has_text="building-scada")
    expect(row).to_have_count(1)
    # An admin sees every token, with its owner.
    expect(page.locator("#account-tokens thead")).to_contain_text("Owner")
    expect(row).to_contain_text(ADMIN)
    expect(row).to_contain_text("never")

    bearer = {"Authorization": f"Bearer {secret}"}
    url = f"{ready.url}api/v1/loads"
    assert httpx.get(url, headers=bearer, verify=False, timeout=30).status_code == 200
    screenshot(page, "account-desktop")

    row.locator(".account-revoke").click()
    expect(dialog.locator("h2")).to_have_text("Revoke the token building-scada?")
    dialog.locator("button[value=ok]").click()
    expect(page.locator("#account-tokens tbody tr", has_text="building-scada")).to_have_count(0)
    expect(page.locator(".users-page .users-status").last).to_contain_text("was revoked")
    assert httpx.get(url, headers=bearer, verify=False, timeout=30).status_code == 401
    problems.assert_none()


def test_a_viewer_can_change_nothing(page, ready, admin_api):
    _add_user(admin_api, "victor", "viewer")
    problems = Problems(page)
    login(page, ready, "victor", PASSWORD)
    nav = page.locator("nav.mainnav")
    expect(nav.locator("a[data-page=account]")).to_be_visible()
    expect(nav.locator("a[data-page=settings]")).to_have_count(0)
    expect(nav.locator("a[data-page=users]")).to_have_count(0)

    # The users page is not there for a viewer: the router shows the dashboard instead.
    page.goto(f"{ready.url}#/users")
    expect(page).to_have_url(re.compile(r"#/dashboard$"))
    expect(page.locator("main .loading")).to_have_count(0)
    expect(page.locator("#users-table")).to_have_count(0)
    expect(page.locator(".partial-action")).to_have_count(0)

    # My account: a token can have no role above the viewer's own.
    _open(page, ready, "account")
    expect(page.locator("#account-token-role option")).to_have_count(1)
    expect(page.locator("#account-tokens thead")).not_to_contain_text("Owner")
    page.fill("#account-token-name", "my-script")
    page.click("#account-token-create button[type=submit]")
    page.locator("dialog.users-dialog button[type=submit]").click()
    expect(page.locator("#account-tokens tbody tr", has_text="my-script")).to_contain_text(
        re.compile("viewer", re.IGNORECASE)
    )
    problems.assert_none()

    if (APP / "counters.js").exists():
        page.goto(f"{ready.url}#/counters")
        expect(page.locator("main .loading")).to_have_count(0)
        expect(page.locator(".partial-action")).to_have_count(0)

    # The API refuses the viewer's session whatever the page shows.
    api = f"{ready.url}api/v1"
    assert page.request.put(f"{api}/config", data={}).status == 403
    assert page.request.post(f"{api}/loads/main/partial", data={"action": "reset"}).status == 403
    new_user = {"name": "mallory", "password": PASSWORD, "role": "admin"}
    assert page.request.post(f"{api}/users", data=new_user).status == 403
    assert page.request.put(f"{api}/users/victor/role", data={"role": "admin"}).status == 403
    assert "mallory" not in _roles(admin_api)
    assert _roles(admin_api)["victor"] == "viewer"


def test_the_pages_fit_a_phone(phone_page, ready, admin_api):
    _add_user(admin_api, "phil", "viewer")
    problems = Problems(phone_page)
    login(phone_page, ready)
    for path in ("users", "account"):
        _open(phone_page, ready, path)
        _no_overflow(phone_page)
        screenshot(phone_page, f"{path}-phone")
    _open(phone_page, ready, "users")
    _row(phone_page, "phil").locator(".users-remove").click()
    dialog = phone_page.locator("dialog.users-dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    screenshot(phone_page, "users-remove-dialog-phone")
    phone_page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    problems.assert_none()


def test_repeated_wrong_passwords_make_the_login_page_ask_to_wait(page, ready, admin_api):
    # Last in the module: failures count against the browser's address too, not only lou.
    _add_user(admin_api, "lou", "viewer")
    problems = Problems(page)
    page.goto(ready.url)
    message = page.locator("main form .form-error")
    button = page.locator("main form button[type=submit]")
    throttled = re.compile(r"^Too many attempts\. Try again in (\d+) s\.$")
    seen = []
    # 3 failures are free; then each attempt must wait 1, 2, 4 ... s. A wait shorter than the
    # time a password check takes may be over before its answer comes, hence a few more tries.
    for _ in range(7):
        page.fill("#login-name", "lou")
        page.fill("#login-password", "wrong password")
        button.click()
        expect(message).not_to_be_empty()
        expect(button).to_be_enabled()
        seen.append(message.inner_text())
        if throttled.match(seen[-1]):
            break
    assert seen[:2] == ["Wrong user name or password."] * 2, seen
    assert throttled.match(seen[-1]), seen
    assert int(throttled.match(seen[-1]).group(1)) >= 1
    screenshot(page, "login-throttled-desktop")
    problems.assert_none(("POST", "/api/v1/login", 401))
