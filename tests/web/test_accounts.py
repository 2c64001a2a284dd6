"""The account store on real SQLite files: users, roles, passwords, tokens and sessions."""

import sqlite3
import stat
import threading

import pytest
from argon2 import PasswordHasher

from emsbox.web import account_db
from emsbox.web.accounts import AccountError, AccountStore, LoginRefused, Role, User
from emsbox.web.throttle import LoginThrottle

PASSWORD = "correct horse battery"


class FakeClock:
    """Seconds that move only when told."""

    def __init__(self, start=1_700_000_000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def cheap_hasher(**kw):
    # Argon2id with tiny parameters: the same code path, milliseconds instead of 100 ms.
    return PasswordHasher(time_cost=kw.get("time_cost", 1), memory_cost=8, parallelism=1)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    return AccountStore(
        tmp_path / "users.sqlite3",
        hasher=cheap_hasher(),
        clock=clock,
        throttle=LoginThrottle(clock=clock),
    )


@pytest.fixture
def admin(store):
    return store.add_user("ada", PASSWORD, Role.ADMIN)


def db_rows(store, sql, args=()):
    with sqlite3.connect(store.path) as conn:
        return conn.execute(sql, args).fetchall()


# -- roles -------------------------------------------------------------------------------


def test_roles_include_the_lower_ones():
    assert Role.ADMIN.allows(Role.INSTALLER) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.INSTALLER.allows(Role.VIEWER) and Role.INSTALLER.allows(Role.INSTALLER)
    assert not Role.INSTALLER.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.INSTALLER)
    assert [r.value for r in Role] == ["viewer", "installer", "admin"]
    assert Role("admin") is Role.ADMIN and str(Role.VIEWER) == "viewer"


# -- the file ----------------------------------------------------------------------------


def test_file_is_private_wal_and_versioned(tmp_path, store, admin):
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == account_db.SCHEMA_VERSION == 2
        conn.execute("SELECT count(*) FROM users").fetchone()
        # While a connection is open the log files exist, with the database's own mode.
        for suffix in ("-wal", "-shm"):
            side = store.path.with_name(store.path.name + suffix)
            assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600
    finally:
        conn.close()


def test_loose_permissions_are_tightened(tmp_path):
    path = tmp_path / "users.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    AccountStore(path, hasher=cheap_hasher())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_data_dir_is_created_private(tmp_path):
    path = tmp_path / "new" / "users.sqlite3"
    AccountStore(path, hasher=cheap_hasher())
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_reopening_keeps_everything(tmp_path, store, admin):
    again = AccountStore(store.path, hasher=cheap_hasher())
    assert again.get_user("ada") == admin
    assert again.verify_password("ada", PASSWORD, "c").name == "ada"


def test_a_newer_schema_is_refused(tmp_path, store):
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(AccountError, match="schema version 99"):
        AccountStore(store.path, hasher=cheap_hasher())


def test_a_foreign_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE stuff (x)")
    with pytest.raises(AccountError, match="not an emsbox account store"):
        AccountStore(path, hasher=cheap_hasher())
    assert db_rows_path(path, "SELECT name FROM sqlite_master") == [("stuff",)]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "users.sqlite3"
    path.write_bytes(b"this is not a database at all, not even close" * 10)
    with pytest.raises(AccountError, match=r"not a usable SQLite database|users\.sqlite3"):
        AccountStore(path, hasher=cheap_hasher())


def db_rows_path(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


# -- users -------------------------------------------------------------------------------


def test_add_list_get_and_has_users(store, clock):
    assert not store.has_users() and store.list_users() == []
    ada = store.add_user("ada", PASSWORD, Role.ADMIN)
    assert ada == User("ada", Role.ADMIN, clock.now, clock.now)
    store.add_user("bob.smith@site-1", PASSWORD, "viewer")
    assert store.has_users()
    assert [(u.name, u.role) for u in store.list_users()] == [
        ("ada", Role.ADMIN),
        ("bob.smith@site-1", Role.VIEWER),
    ]
    assert store.get_user("ADA") == ada  # names compare without case
    assert store.get_user("nobody") is None


def test_passwords_are_stored_as_argon2id(store, admin):
    [(stored,)] = db_rows(store, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2id$v=19$")
    assert PASSWORD not in store.path.read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("", PASSWORD, "invalid user name"),
        ("a" * 65, PASSWORD, "invalid user name"),
        ("has space", PASSWORD, "invalid user name"),
        ("slash/", PASSWORD, "invalid user name"),
        ("élodie", PASSWORD, "invalid user name"),
        ("bob", "short", "at least 8 characters"),
        ("bob", "x" * 1025, "at most 1024 characters"),
        ("bobbybobby", "BobbyBobby", "must not be the user name"),
    ],
)
def test_add_user_refusals(store, name, password, message):
    with pytest.raises(AccountError, match=message) as info:
        store.add_user(name, password, Role.VIEWER)
    assert "\n" not in str(info.value)
    assert not store.has_users()


def test_password_rule_accepts_any_long_enough_password(store):
    store.add_user("a", "        ", Role.ADMIN)  # no composition rules: eight spaces will do
    store.add_user("b", "x" * 1024, Role.VIEWER)
    store.add_user("c", "pässwörd", Role.VIEWER)


def test_passwords_are_unicode_normalised(store):
    composed, decomposed = "caf\u00e9-au-lait", "cafe\u0301-au-lait"
    store.add_user("ada", composed, Role.ADMIN)
    assert store.verify_password("ada", decomposed, "c").name == "ada"


def test_duplicate_user_is_refused_whatever_the_case(store, admin):
    with pytest.raises(AccountError, match="a user named 'ADA' exists already"):
        store.add_user("ADA", PASSWORD, Role.VIEWER)


def test_unknown_role_is_refused(store):
    with pytest.raises(AccountError, match="unknown role 'root'"):
        store.add_user("ada", PASSWORD, "root")


def test_unknown_users_are_refused(store, admin):
    for call in (
        lambda: store.remove_user("nobody"),
        lambda: store.set_role("nobody", Role.VIEWER),
        lambda: store.set_password("nobody", PASSWORD),
        lambda: store.create_session("nobody", 60),
        lambda: store.create_token("t", Role.VIEWER, "nobody"),
    ):
        with pytest.raises(AccountError, match="no user named 'nobody'"):
            call()


def test_the_last_admin_can_be_neither_removed_nor_demoted(store, admin):
    with pytest.raises(AccountError, match="last admin"):
        store.remove_user("ada")
    with pytest.raises(AccountError, match="last admin"):
        store.set_role("ada", Role.INSTALLER)
    store.add_user("root2", PASSWORD, Role.ADMIN)
    assert store.set_role("ada", Role.INSTALLER).role is Role.INSTALLER
    with pytest.raises(AccountError, match="last admin"):
        store.remove_user("root2")
    store.remove_user("ada")
    assert [u.name for u in store.list_users()] == ["root2"]


def test_set_role(store, admin):
    store.add_user("bob", PASSWORD, Role.VIEWER)
    assert store.set_role("BOB", "installer") == User(
        "bob", Role.INSTALLER, store.get_user("bob").created_at, store.get_user("bob").created_at
    )
    assert store.get_user("bob").role is Role.INSTALLER


def test_verify_password(store, admin):
    user = store.verify_password("Ada", PASSWORD, "10.0.0.1")
    assert user.name == "ada" and user.role is Role.ADMIN
    with pytest.raises(LoginRefused, match="wrong user name or password") as wrong:
        store.verify_password("ada", PASSWORD + "!", "10.0.0.1")
    with pytest.raises(LoginRefused, match="wrong user name or password") as unknown:
        store.verify_password("nobody", PASSWORD, "10.0.0.1")
    # The same answer whether or not the name exists.
    assert str(wrong.value) == str(unknown.value)
    assert wrong.value.retry_after_s == unknown.value.retry_after_s == 0.0
    with pytest.raises(LoginRefused):
        store.verify_password("ada", "x" * 5000, "10.0.0.1")
    with pytest.raises(LoginRefused):
        store.verify_password("n" * 5000, PASSWORD, "10.0.0.2")


def test_set_password_changes_it_and_ends_sessions(store, admin, clock):
    session = store.create_session("ada", 3600)
    clock.advance(10)
    store.set_password("ada", "a brand new one")
    assert store.verify_session(session) is None
    assert store.get_user("ada").password_changed_at == clock.now
    with pytest.raises(LoginRefused):
        store.verify_password("ada", PASSWORD, "c")
    assert store.verify_password("ada", "a brand new one", "c").name == "ada"
    with pytest.raises(AccountError, match="at least 8"):
        store.set_password("ada", "short")


def test_a_user_changing_their_password_keeps_their_own_session_only(store, admin):
    mine, other = store.create_session("ada", 3600), store.create_session("ada", 3600)
    store.set_password("ada", "a brand new one", keep_session=mine)
    assert store.verify_session(mine).name == "ada"
    assert store.verify_session(other) is None


def test_password_equal_to_name_is_refused_on_change(store):
    store.add_user("longname1", PASSWORD, Role.ADMIN)
    with pytest.raises(AccountError, match="must not be the user name"):
        store.set_password("longname1", "LongName1")


def test_rehash_on_login_when_parameters_change(tmp_path, store, admin):
    [(old,)] = db_rows(store, "SELECT password_hash FROM users")
    assert ",t=1," in old
    stronger = AccountStore(store.path, hasher=cheap_hasher(time_cost=2))
    stronger.verify_password("ada", PASSWORD, "c")
    [(new,)] = db_rows(store, "SELECT password_hash FROM users")
    assert new.startswith("$argon2id$") and ",t=2," in new and new != old
    assert stronger.verify_password("ada", PASSWORD, "c").name == "ada"
    # A failed login rehashes nothing.
    weaker = AccountStore(store.path, hasher=cheap_hasher(time_cost=1))
    with pytest.raises(LoginRefused):
        weaker.verify_password("ada", "not the password", "c")
    assert db_rows(store, "SELECT password_hash FROM users") == [(new,)]


def test_removing_a_user_removes_tokens_and_sessions(store, admin):
    store.add_user("bob", PASSWORD, Role.INSTALLER)
    _, secret = store.create_token("bob-t", Role.VIEWER, "bob")
    session = store.create_session("bob", 600)
    store.remove_user("bob")
    assert store.verify_token(secret) is None
    assert store.verify_session(session) is None
    assert store.list_tokens(None) == []
    assert db_rows(store, "SELECT count(*) FROM sessions") == [(0,)]
    with pytest.raises(LoginRefused):
        store.verify_password("bob", PASSWORD, "c")
    # A new user of the same name does not inherit anything.
    store.add_user("bob", PASSWORD, Role.ADMIN)
    assert store.verify_token(secret) is None and store.verify_session(session) is None


def test_writes_from_many_threads(store, admin):
    errors = []

    def work(i):
        try:
            store.add_user(f"user{i}", PASSWORD, Role.VIEWER)
            _, secret = store.create_token(f"token{i}", Role.VIEWER, f"user{i}")
            assert store.verify_token(secret) is not None
            assert store.verify_session(store.create_session(f"user{i}", 60)).name == f"user{i}"
        except Exception as e:  # collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_users()) == 13 and len(store.list_tokens()) == 12


# -- tokens ------------------------------------------------------------------------------


def test_token_round_trip(store, admin, clock):
    info, secret = store.create_token("grafana", Role.INSTALLER, "ada")
    assert secret.startswith(f"emsbox_{info.id}_") and len(secret) == len("emsbox_") + 16 + 1 + 43
    assert (info.name, info.role, info.owner, info.created_at, info.last_used_at) == (
        "grafana",
        Role.INSTALLER,
        "ada",
        clock.now,
        None,
    )
    clock.advance(5)
    used = store.verify_token(secret)
    assert used is not None and used.id == info.id and used.role is Role.INSTALLER
    assert used.last_used_at == clock.now
    assert store.list_tokens("ada") == [used]
    assert store.list_tokens("somebody-else") == []


def test_token_secret_is_stored_hashed_only(store, admin):
    info, secret = store.create_token("grafana", Role.VIEWER, "ada")
    store.verify_token(secret)
    # emsbox_<id>_<secret>: the id is hex; the secret (URL-safe base64) may hold "_" itself.
    random_part = secret.split("_", 2)[2]
    assert len(random_part) > 20
    for path in store.path.parent.iterdir():
        content = path.read_bytes()
        assert secret.encode() not in content and random_part.encode() not in content
    [(digest,)] = db_rows(store, "SELECT secret_sha256 FROM tokens")
    assert len(digest) == 64 and info.id in secret


def test_last_use_is_written_at_most_once_a_minute(store, admin, clock):
    _, secret = store.create_token("poller", Role.VIEWER, "ada")
    first = store.verify_token(secret).last_used_at
    clock.advance(30)
    assert store.verify_token(secret).last_used_at == first
    clock.advance(31)
    assert store.verify_token(secret).last_used_at == clock.now


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "emsbox_nope_nope",
        "Bearer emsbox_",
        "emsbox_0000000000000000_" + "A" * 43,
        "emsbox_" + "g" * 16 + "_" + "A" * 43,
        "x" * 10_000,
    ],
)
def test_malformed_or_unknown_tokens_are_refused(store, admin, bad):
    store.create_token("real", Role.VIEWER, "ada")
    assert store.verify_token(bad) is None


def test_a_token_with_a_wrong_secret_is_refused(store, admin):
    _, secret = store.create_token("real", Role.VIEWER, "ada")
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.verify_token(tampered) is None
    assert store.verify_token(secret + "x") is None
    assert store.verify_token(secret) is not None


def test_revoke_by_id_or_name(store, admin):
    a, secret_a = store.create_token("a", Role.VIEWER, "ada")
    b, secret_b = store.create_token("b", Role.VIEWER, None)
    assert store.revoke_token(a.id).name == "a"
    assert store.verify_token(secret_a) is None
    assert store.revoke_token("B").id == b.id
    assert store.verify_token(secret_b) is None
    with pytest.raises(AccountError, match="no token with id or name 'a'"):
        store.revoke_token("a")
    assert store.list_tokens() == []


def test_token_refusals(store, admin):
    store.add_user("vic", PASSWORD, Role.VIEWER)
    store.create_token("dup", Role.VIEWER, "ada")
    with pytest.raises(AccountError, match="a token named 'DUP' exists already"):
        store.create_token("DUP", Role.VIEWER, "vic")
    with pytest.raises(AccountError, match="invalid token name"):
        store.create_token("bad name", Role.VIEWER, "ada")
    with pytest.raises(AccountError, match="unknown role"):
        store.create_token("t", "superuser", "ada")


def test_a_token_never_exceeds_its_owners_role(store, admin):
    store.add_user("ivan", PASSWORD, Role.INSTALLER)
    with pytest.raises(
        AccountError, match="cannot have role admin: above the owner's role installer"
    ):
        store.create_token("too-much", Role.ADMIN, "ivan")
    info, secret = store.create_token("ok", Role.INSTALLER, "ivan")
    assert info.role is Role.INSTALLER
    # Demoting the owner lowers the token with them; promoting again restores it, no higher.
    store.set_role("ivan", Role.VIEWER)
    assert store.verify_token(secret).role is Role.VIEWER
    assert store.list_tokens("ivan")[0].role is Role.VIEWER
    store.set_role("ivan", Role.ADMIN)
    assert store.verify_token(secret).role is Role.INSTALLER


def test_command_line_tokens_have_no_owner_and_no_ceiling(store):
    info, secret = store.create_token("cli", Role.ADMIN, None)
    assert info.owner is None
    assert store.verify_token(secret).role is Role.ADMIN
    assert store.list_tokens(None) == [store.verify_token(secret)]


def test_a_token_whose_owner_vanished_stops_working(store, admin):
    # Even if the row survived (e.g. foreign keys off in some other tool), the token is dead.
    store.add_user("bob", PASSWORD, Role.VIEWER)
    _, secret = store.create_token("orphan", Role.VIEWER, "bob")
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DELETE FROM users WHERE name = 'bob'")
    assert store.verify_token(secret) is None
    assert store.list_tokens() == []


# -- sessions ----------------------------------------------------------------------------


def test_sessions_expire(store, admin, clock):
    secret = store.create_session("ada", 3600)
    assert store.verify_session(secret) == admin
    clock.advance(3599)
    assert store.verify_session(secret) == admin
    clock.advance(1)
    assert store.verify_session(secret) is None


def test_session_secrets_are_stored_hashed(store, admin):
    secret = store.create_session(admin, 60)
    for path in store.path.parent.iterdir():
        assert secret.encode() not in path.read_bytes()


def test_end_session_and_end_sessions_of(store, admin):
    one, two = store.create_session("ada", 60), store.create_session("ada", 60)
    store.end_session(one)
    assert store.verify_session(one) is None and store.verify_session(two) == admin
    store.end_session("not a session")
    three = store.create_session("ada", 60)
    assert store.end_sessions_of("ada") == 2
    assert store.verify_session(two) is None and store.verify_session(three) is None


def test_session_refusals_and_junk(store, admin):
    with pytest.raises(AccountError, match="lifetime"):
        store.create_session("ada", 0)
    for junk in ("", "x", "y" * 10_000):
        assert store.verify_session(junk) is None


def test_expired_sessions_are_cleaned_up(store, admin, clock):
    store.create_session("ada", 10)
    clock.advance(11)
    store.create_session("ada", 10)
    assert db_rows(store, "SELECT count(*) FROM sessions") == [(1,)]


def test_session_role_follows_the_user(store, admin):
    store.add_user("bob", PASSWORD, Role.ADMIN)
    secret = store.create_session("bob", 60)
    store.set_role("bob", Role.VIEWER)
    assert store.verify_session(secret).role is Role.VIEWER


def test_each_thread_has_its_own_connection_closed_with_the_thread(store, admin):
    import gc

    def use():
        assert store.get_user("ada") == admin

    for _ in range(20):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    use()
    gc.collect()
    # Only this thread's connection is left open; the ended threads' went with them.
    assert len(store._connections._open) == 1


def test_a_closed_store_refuses_use(store, admin):
    store.close()
    with pytest.raises(AccountError, match="closed"):
        store.get_user("ada")
    with pytest.raises(AccountError, match="closed"):
        threading_result(lambda: store.get_user("ada"))


def threading_result(call):
    result = []

    def run():
        try:
            result.append(call())
        except Exception as e:  # handed back to the test thread
            result.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def test_a_busy_file_does_not_refuse_a_valid_token(tmp_path, monkeypatch, clock):
    monkeypatch.setattr(account_db, "BUSY_TIMEOUT_S", 0.05)
    store = AccountStore(tmp_path / "users.sqlite3", hasher=cheap_hasher(), clock=clock)
    store.add_user("ada", PASSWORD, Role.ADMIN)
    _, secret = store.create_token("t", Role.VIEWER, "ada")
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        info = store.verify_token(secret)
        assert info is not None and info.last_used_at is None
        with pytest.raises(AccountError, match="locked"):
            store.add_user("bob", PASSWORD, Role.VIEWER)
    finally:
        other.close()
    assert store.verify_token(secret).last_used_at == clock.now
