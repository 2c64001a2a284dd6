"""``emsbox user ...`` and ``emsbox token ...``: in process through run(), and as a process."""

import argparse
import io
import stat
import subprocess
import sys

import pytest

from emsbox import accounts_cli
from emsbox.web.accounts import AccountStore, Role

PASSWORD = "a long enough password"


class Stdin(io.StringIO):
    """Standard input that may claim to be a terminal."""

    def __init__(self, text="", tty=False):
        super().__init__(text)
        self.tty = tty

    def isatty(self):
        return self.tty


def cli(data_dir, *argv, stdin="", tty=False):
    """Parse and run one command; return (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="emsbox")
    accounts_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    status = accounts_cli.run(args, data_dir, Stdin(stdin, tty), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    assert cli(d, "user", "add", "ada", "--role", "admin", stdin=PASSWORD + "\n")[0] == 0
    return d


def store(data_dir):
    return AccountStore(data_dir / accounts_cli.ACCOUNTS_FILE)


def test_user_add_reads_the_first_line_of_stdin(tmp_path):
    d = tmp_path / "fresh"
    status, out, err = cli(
        d, "user", "add", "bob", "--role", "viewer", stdin="pw with spaces \nx\n"
    )
    assert status == 0 and out == "" and "added user 'bob' with role viewer" in err
    assert store(d).verify_password("bob", "pw with spaces ", "test").role is Role.VIEWER
    assert stat.S_IMODE((d / "users.sqlite3").stat().st_mode) == 0o600


def test_user_add_prompts_twice_on_a_terminal(tmp_path, monkeypatch):
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt, stream=None: next(answers))
    d = tmp_path / "d"
    assert cli(d, "user", "add", "ada", "--role", "admin", tty=True)[0] == 0
    status, _, err = cli(d, "user", "add", "bob", "--role", "admin", tty=True)
    assert status == 2 and err == "emsbox user add: the two passwords differ; nothing changed\n"
    assert [u.name for u in store(d).list_users()] == ["ada"]


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("user", "add", "ada", "--role", "viewer"), PASSWORD, "a user named 'ada' exists already"),
        (("user", "add", "bob", "--role", "viewer"), "short\n", "at least 8 characters"),
        (("user", "add", "bob", "--role", "viewer"), "", "no password on standard input"),
        (("user", "add", "b b", "--role", "viewer"), PASSWORD, "invalid user name 'b b'"),
        (("user", "remove", "ada"), "", "refusing to remove 'ada': it is the last admin"),
        (("user", "remove", "zed"), "", "no user named 'zed'"),
        (("user", "role", "ada", "viewer"), "", "refusing to demote 'ada': it is the last admin"),
        (("user", "passwd", "zed"), PASSWORD, "no user named 'zed'"),
        (("user", "passwd", "ada"), "ada\n", "at least 8 characters"),
        (("token", "revoke", "nothing"), "", "no token with id or name 'nothing'"),
        (("token", "create", "t", "--owner", "zed"), "", "no user named 'zed'"),
    ],
)
def test_refusals_exit_2_with_one_line(data_dir, argv, stdin, message):
    status, out, err = cli(data_dir, *argv, stdin=stdin)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert err.startswith(f"emsbox {argv[0]} {argv[1]}: ")


def test_user_list_role_passwd_remove(data_dir):
    assert cli(data_dir, "user", "add", "ivan", "--role", "installer", stdin=PASSWORD)[0] == 0
    status, out, _ = cli(data_dir, "user", "list")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["NAME", "ROLE", "CREATED", "PASSWORD", "SET"]
    assert [line.split()[:2] for line in lines[1:]] == [["ada", "admin"], ["ivan", "installer"]]
    assert cli(data_dir, "user", "role", "ivan", "viewer")[0] == 0
    assert store(data_dir).get_user("ivan").role is Role.VIEWER
    assert cli(data_dir, "user", "passwd", "ivan", stdin="the new password\n")[0] == 0
    assert store(data_dir).verify_password("ivan", "the new password", "t").name == "ivan"
    assert cli(data_dir, "user", "remove", "ivan")[0] == 0
    assert store(data_dir).get_user("ivan") is None


def test_token_create_prints_only_the_secret(data_dir):
    status, out, err = cli(data_dir, "token", "create", "grafana", "--role", "installer")
    secret = out.strip()
    assert status == 0 and out == secret + "\n" and secret.startswith("emsbox_")
    assert secret not in err and "grafana" in err and "no owner" in err
    info = store(data_dir).verify_token(secret)
    assert info.name == "grafana" and info.role is Role.INSTALLER and info.owner is None


def test_token_owner_ceiling_list_and_revoke(data_dir):
    cli(data_dir, "user", "add", "vic", "--role", "viewer", stdin=PASSWORD)
    status, _, err = cli(data_dir, "token", "create", "x", "--role", "admin", "--owner", "vic")
    assert status == 2 and "above the owner's role viewer" in err
    status, out, _ = cli(data_dir, "token", "create", "vic-t", "--owner", "vic")
    assert status == 0
    secret = out.strip()
    assert store(data_dir).verify_token(secret).role is Role.VIEWER  # default role
    status, out, _ = cli(data_dir, "token", "list")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ID", "NAME", "ROLE", "OWNER", "CREATED", "LAST", "USED"]
    assert rows[1][1:4] == ["vic-t", "viewer", "vic"]
    assert secret not in out
    assert cli(data_dir, "token", "revoke", "vic-t")[0] == 0
    assert store(data_dir).verify_token(secret) is None


def test_the_parser_offers_every_command():
    parser = argparse.ArgumentParser(prog="emsbox")
    accounts_cli.register(parser.add_subparsers(dest="command", required=True))
    for argv in (
        ["user", "list"],
        ["user", "add", "a", "--role", "viewer"],
        ["user", "remove", "a"],
        ["user", "passwd", "a"],
        ["user", "role", "a", "admin"],
        ["token", "create", "t"],
        ["token", "list"],
        ["token", "revoke", "t"],
    ):
        args = parser.parse_args([*argv, "--data-dir", "/somewhere"])
        assert str(args.data_dir) == "/somewhere"
    with pytest.raises(SystemExit):
        parser.parse_args(["user", "add", "a", "--role", "root"])


def test_end_to_end_as_a_process(tmp_path):
    d = tmp_path / "data"

    def emsbox(*argv, stdin=None):
        return subprocess.run(
            [sys.executable, "-m", "emsbox.accounts_cli", *argv, "--data-dir", str(d)],
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = emsbox("user", "add", "ada", "--role", "admin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = emsbox("token", "create", "reader", "--role", "viewer")
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and r.stdout.startswith("emsbox_")
    secret = r.stdout.strip()
    assert store(d).verify_token(secret).name == "reader"
    r = emsbox("user", "remove", "ada")
    assert r.returncode == 2 and r.stderr.strip().endswith("it is the last admin")
    r = emsbox("user", "add", "bob", "--role", "viewer", stdin="")
    assert r.returncode == 2 and "no password on standard input" in r.stderr
