"""``emsbox user ...`` and ``emsbox token ...``: accounts and API tokens on the command line.

Works on the account file in the data directory directly, also while the service runs.
Passwords are read from standard input when it is not a terminal (the first line), else
asked for twice without echo. A token's secret is the only thing printed on standard output,
so ``TOKEN=$(emsbox token create grafana --role viewer)`` captures just it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from emsbox.web.account_types import AccountError, Role

if TYPE_CHECKING:
    # Imported when a command runs, so that building the parser (every `emsbox` call) stays
    # free of the password hashing and database modules.
    from emsbox.web.accounts import AccountStore

ACCOUNTS_FILE = "users.sqlite3"
EXIT_REFUSED = 2
_ROLES = [role.value for role in Role]


class _InputError(Exception):
    """A command refused before it reached the store (e.g. passwords that differ)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``user`` and ``token`` commands to the command line's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the account file is kept (default: the per-user data directory)",
    )

    user = subparsers.add_parser("user", help="manage user accounts (web app logins)")
    users = user.add_subparsers(dest="user_command", required=True)
    add = users.add_parser(
        "add",
        parents=[common],
        help="create a user (password from stdin, or asked twice on a terminal)",
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=_ROLES)
    users.add_parser("list", parents=[common], help="list users and their roles")
    remove = users.add_parser(
        "remove", parents=[common], help="remove a user with their tokens and sessions"
    )
    remove.add_argument("name")
    passwd = users.add_parser(
        "passwd", parents=[common], help="set a user's password (ends their sessions)"
    )
    passwd.add_argument("name")
    role = users.add_parser("role", parents=[common], help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=_ROLES)

    token = subparsers.add_parser("token", help="manage API tokens")
    tokens = token.add_subparsers(dest="token_command", required=True)
    create = tokens.add_parser(
        "create", parents=[common], help="create a token; prints its secret (shown only once)"
    )
    create.add_argument("name")
    create.add_argument("--role", default=Role.VIEWER.value, choices=_ROLES)
    create.add_argument(
        "--owner",
        default=None,
        help="user the token acts for: its role may not exceed theirs, and it dies with"
        " them (default: no owner)",
    )
    tokens.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke a token by id or name")
    revoke.add_argument("token", metavar="NAME_OR_ID")


def run(
    args: argparse.Namespace,
    data_dir: Path,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Execute a parsed ``user`` or ``token`` command; return the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    sub = args.user_command if args.command == "user" else args.token_command
    try:
        from emsbox.web.accounts import AccountStore

        store = AccountStore(data_dir / ACCOUNTS_FILE)
        if args.command == "user":
            _user(store, args, stdin, stdout, stderr)
        else:
            _token(store, args, stdout, stderr)
    except (AccountError, _InputError) as exc:
        print(f"emsbox {args.command} {sub}: {_one_line(exc)}", file=stderr)
        return EXIT_REFUSED
    except OSError as exc:
        reason = exc.strerror or _one_line(exc)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"emsbox {args.command} {sub}:{where} {reason}", file=stderr)
        return EXIT_REFUSED
    return 0


def _user(
    store: AccountStore, args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO
) -> None:
    command = args.user_command
    if command == "add":
        user = store.add_user(args.name, _new_password(stdin, stderr), args.role)
        print(f"added user {user.name!r} with role {user.role.value}", file=stderr)
    elif command == "list":
        rows = [("NAME", "ROLE", "CREATED", "PASSWORD SET")]
        rows += [
            (u.name, u.role.value, _when(u.created_at), _when(u.password_changed_at))
            for u in store.list_users()
        ]
        _table(rows, stdout)
    elif command == "remove":
        store.remove_user(args.name)
        print(f"removed user {args.name!r}, their tokens and sessions", file=stderr)
    elif command == "passwd":
        if store.get_user(args.name) is None:  # say so before asking for a password
            raise AccountError(f"no user named {args.name!r}")
        store.set_password(args.name, _new_password(stdin, stderr))
        print(f"password of {args.name!r} changed; their web sessions ended", file=stderr)
    elif command == "role":
        user = store.set_role(args.name, args.role)
        print(f"{user.name!r} now has role {user.role.value}", file=stderr)


def _token(store: AccountStore, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
    command = args.token_command
    if command == "create":
        info, secret = store.create_token(args.name, args.role, args.owner)
        owner = f"owner {info.owner!r}" if info.owner else "no owner"
        print(
            f"created token {info.name!r} (id {info.id}, role {info.role.value}, {owner});"
            " its secret is printed once, on standard output: store it now",
            file=stderr,
        )
        print(secret, file=stdout)
    elif command == "list":
        rows = [("ID", "NAME", "ROLE", "OWNER", "CREATED", "LAST USED")]
        rows += [
            (t.id, t.name, t.role.value, t.owner or "-", _when(t.created_at), _when(t.last_used_at))
            for t in store.list_tokens(None)
        ]
        _table(rows, stdout)
    elif command == "revoke":
        info = store.revoke_token(args.token)
        print(f"revoked token {info.name!r} (id {info.id})", file=stderr)


def _new_password(stdin: TextIO, stderr: TextIO) -> str:
    """The new password: the first line of stdin when it is not a terminal, else asked twice."""
    if not stdin.isatty():
        line = stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise _InputError("no password on standard input (give it as the first line)")
        return password
    first = getpass.getpass("New password: ", stream=stderr)
    second = getpass.getpass("Repeat it: ", stream=stderr)
    if first != second:
        raise _InputError("the two passwords differ; nothing changed")
    return first


def _table(rows: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out
        )


def _when(t: float | None) -> str:
    if t is None:
        return "never"
    return dt.datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``user`` or ``token`` commands alone (``python -m emsbox.accounts_cli user list``)."""
    from emsbox.config import default_data_dir

    parser = argparse.ArgumentParser(prog="emsbox", description="emsbox accounts and tokens")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    return run(args, data_dir)


if __name__ == "__main__":
    sys.exit(main())
