"""User accounts, API tokens and web sessions, kept in one SQLite file (``users.sqlite3``).

- Passwords are hashed with Argon2id (``emsbox.web.passwords``); failed logins are throttled
  per account and per client address (``emsbox.web.throttle``).
- API tokens and session secrets are random and shown once; only their SHA-256 is stored.
- A token's role never exceeds its owner's: checked when it is made, and lowered when it is
  used if the owner was demoted since. Removing a user removes their tokens and sessions.

There are no default accounts: the first user is made on the command line
(``emsbox user add NAME --role admin``). Thread-safe; see ``account_db`` for the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from emsbox.web import account_db
from emsbox.web.account_db import ThreadConnections, locked_transaction
from emsbox.web.account_types import (
    AccountError,
    LoginRefused,
    Role,
    TokenInfo,
    User,
    as_role,
    check_name,
    lower_role,
)
from emsbox.web.passwords import MAX_PASSWORD_CHARS, PasswordHashing, check_password_rule
from emsbox.web.throttle import LoginThrottle, Throttled

__all__ = [
    "AccountError",
    "AccountStore",
    "LoginRefused",
    "Role",
    "TokenInfo",
    "User",
]

log = logging.getLogger(__name__)

TOKEN_PREFIX = "emsbox"
# Token id: public (listed, used to revoke), only needs to be unique; 64 random bits.
_TOKEN_ID_BYTES = 8
# Secrets: 256 random bits, beyond any guessing.
_SECRET_BYTES = 32
_TOKEN_FORMAT = re.compile(r"emsbox_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
# A secret longer than any we issue is refused before it is hashed.
_MAX_SECRET_CHARS = 128
# A token's last use is written at most this often: a write (with fsync) on every API request
# would wear flash storage and slow every call, and a minute is precise enough to audit.
LAST_USED_RESOLUTION_S = 60.0
_BAD_LOGIN = "wrong user name or password"
# Throttling key shared by names no account can have, so junk cannot fill the throttle.
_INVALID_NAME_KEY = "\0invalid"


def _digest(secret: str) -> str:
    # SHA-256, not Argon2: a token or session secret has 256 random bits, so no amount of
    # hashing speed makes finding a preimage feasible; a slow hash only protects low-entropy
    # secrets such as passwords, and would cost tens of ms and 64 MiB on every API request.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _throttle_key(name: str) -> str:
    return name.casefold() if len(name) <= 64 else _INVALID_NAME_KEY


class AccountStore:
    """Users, API tokens and web sessions in the SQLite file at ``path``.

    ``hasher`` sets the Argon2id parameters (tests pass cheap ones); ``clock`` gives
    wall-clock seconds for stored times and session expiry; ``throttle`` counts failed logins.
    """

    def __init__(
        self,
        path: Path,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._path = path
        self._clock = clock
        self._hashing = PasswordHashing(hasher)
        self._throttle = throttle or LoginThrottle()
        # Serialises this process's writes; SQLite's lock serialises them with other processes.
        self._write_lock = threading.Lock()
        self._admin_seen = False
        account_db.prepare(path)
        self._connections = ThreadConnections(path)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str, role: Role | str) -> User:
        """Create a user; AccountError if the name is taken or invalid or the password weak."""
        check_name(name)
        role = as_role(role)
        check_password_rule(name, password)
        password_hash = self._hashing.hash(password)  # slow: before taking the write lock
        now = self._clock()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO users (name, role, password_hash, created_at,"
                    " password_changed_at) VALUES (?, ?, ?, ?, ?)",
                    (name, role.value, password_hash, now, now),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"a user named {name!r} exists already") from None
        return User(name, role, now, now)

    def remove_user(self, name: str) -> None:
        """Remove a user with their tokens and sessions; the last admin cannot be removed."""
        with self._write() as conn:
            user = self._user_row(conn, name)
            if user.role is Role.ADMIN and self._admin_count(conn) == 1:
                raise AccountError(f"refusing to remove {user.name!r}: it is the last admin")
            # Foreign keys would cascade; deleting explicitly keeps it true even without them.
            conn.execute("DELETE FROM sessions WHERE user = ?", (user.name,))
            conn.execute("DELETE FROM tokens WHERE owner = ?", (user.name,))
            conn.execute("DELETE FROM preferences WHERE user = ?", (user.name,))
            conn.execute("DELETE FROM users WHERE name = ?", (user.name,))
        self._throttle.forget_account(_throttle_key(name))

    def set_role(self, name: str, role: Role | str) -> User:
        """Give a user another role; the last admin cannot be demoted."""
        role = as_role(role)
        with self._write() as conn:
            user = self._user_row(conn, name)
            if user.role is Role.ADMIN and role is not Role.ADMIN and self._admin_count(conn) == 1:
                raise AccountError(f"refusing to demote {user.name!r}: it is the last admin")
            conn.execute("UPDATE users SET role = ? WHERE name = ?", (role.value, user.name))
        return User(user.name, role, user.created_at, user.password_changed_at)

    def set_password(self, name: str, password: str, keep_session: str | None = None) -> None:
        """Set a user's password and end their sessions but ``keep_session`` (the one of the
        user changing it), if given; their API tokens stay valid."""
        with self._read() as conn:
            user = self._user_row(conn, name)
        check_password_rule(user.name, password)
        password_hash = self._hashing.hash(password)
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                (password_hash, self._clock(), user.name),
            ).rowcount
            if updated == 0:
                raise AccountError(f"no user named {name!r}")
            conn.execute(
                "DELETE FROM sessions WHERE user = ? AND secret_sha256 != ?",
                (user.name, _digest(keep_session) if keep_session else ""),
            )
        # A new password set by an administrator also lifts a lockout.
        self._throttle.forget_account(_throttle_key(name))

    def preferences(self, name: str) -> dict[str, Any]:
        """What the user chose in the web app, by key (JSON values)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM preferences WHERE user = ? ORDER BY key", (name,)
            ).fetchall()
        return {str(k): json.loads(v) for k, v in rows}

    def set_preferences(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Store ``changes`` (a value of None removes the key); returns all the user's."""
        with self._write() as conn:
            user = self._user_row(conn, name)
            for key, value in changes.items():
                if value is None:
                    conn.execute(
                        "DELETE FROM preferences WHERE user = ? AND key = ?", (user.name, key)
                    )
                else:
                    conn.execute(
                        "INSERT INTO preferences (user, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (user, key) DO UPDATE SET value = excluded.value",
                        (user.name, key, json.dumps(value)),
                    )
        return self.preferences(user.name)

    def get_user(self, name: str) -> User | None:
        """The user named ``name`` (case-insensitive), or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, role, created_at, password_changed_at FROM users WHERE name = ?",
                (name,),
            ).fetchone()
        return None if row is None else User(row[0], Role(row[1]), row[2], row[3])

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, role, created_at, password_changed_at FROM users ORDER BY name"
            ).fetchall()
        return [User(r[0], Role(r[1]), r[2], r[3]) for r in rows]

    def has_admin(self) -> bool:
        """Whether an admin exists: until one does, the first-start setup is open."""
        # The last admin can be neither removed nor demoted: once true, it stays true.
        if not self._admin_seen:
            with self._read() as conn:
                self._admin_seen = self._admin_count(conn) > 0
        return self._admin_seen

    def has_users(self) -> bool:
        """Whether any user exists (none on a fresh device: no default accounts)."""
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def verify_password(self, name: str, password: str, client: str) -> User:
        """The user if ``password`` is theirs; else LoginRefused.

        ``client`` is the caller's address, for throttling. A throttled attempt is refused
        before any hashing; an unknown name costs the same hash as a known one, so neither
        timing nor throttling tells which names exist.
        """
        account_key = _throttle_key(name)
        try:
            attempt = self._throttle.begin(account_key, client)
        except Throttled as t:
            raise LoginRefused(str(t), t.retry_after_s) from None
        row = None
        if len(name) <= 64:
            with self._read() as conn:
                row = conn.execute(
                    "SELECT name, role, created_at, password_changed_at, password_hash"
                    " FROM users WHERE name = ?",
                    (name,),
                ).fetchone()
        if row is None or len(password) > MAX_PASSWORD_CHARS:
            self._hashing.verify_nothing(password[:MAX_PASSWORD_CHARS])
            raise LoginRefused(_BAD_LOGIN, self._throttle.wait_after(attempt))
        if not self._hashing.verify(row[4], password):
            raise LoginRefused(_BAD_LOGIN, self._throttle.wait_after(attempt))
        self._throttle.succeeded(attempt)
        if self._hashing.needs_rehash(row[4]):
            self._rehash(row[0], row[4], password)
        return User(row[0], Role(row[1]), row[2], row[3])

    # -- API tokens ------------------------------------------------------------------------

    def create_token(self, name: str, role: Role | str, owner: str | None) -> tuple[TokenInfo, str]:
        """Make an API token; return its description and its secret (shown only this once).

        ``owner`` None: a token of the command line, acting for no user (whoever can run the
        command line can read the data directory anyway). Otherwise the token's role may not
        exceed the owner's, and the token dies with the owner.
        """
        check_name(name, "token")
        role = as_role(role)
        token_id = secrets.token_hex(_TOKEN_ID_BYTES)
        secret = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        now = self._clock()
        with self._write() as conn:
            if owner is not None:
                owner_user = self._user_row(conn, owner)
                if not owner_user.role.allows(role):
                    raise AccountError(
                        f"a token of {owner_user.name!r} cannot have role {role.value}: above"
                        f" the owner's role {owner_user.role.value}"
                    )
                owner = owner_user.name
            try:
                conn.execute(
                    "INSERT INTO tokens (id, name, role, owner, secret_sha256, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (token_id, name, role.value, owner, _digest(secret), now),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"a token named {name!r} exists already") from None
        return TokenInfo(token_id, name, role, owner, now, None), secret

    def verify_token(self, secret: str) -> TokenInfo | None:
        """The token whose secret this is, or None (unknown, malformed, revoked, owner gone)."""
        if len(secret) > _MAX_SECRET_CHARS:
            return None
        match = _TOKEN_FORMAT.fullmatch(secret)
        if match is None:
            return None
        with self._read() as conn:
            row = conn.execute(_TOKEN_SELECT + " WHERE t.id = ?", (match.group(1),)).fetchone()
        # Constant-time: the id is public, the digest must not be learnt byte by byte.
        if row is None or not hmac.compare_digest(row[6], _digest(secret)):
            return None
        info = _token_info(row)
        if info is None:
            return None
        now = self._clock()
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_RESOLUTION_S:
            try:
                with self._write() as conn:
                    conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, info.id))
            except AccountError as exc:
                # Bookkeeping only: a busy or full disk must not refuse a valid token.
                log.warning("could not record the use of token %s: %s", info.id, exc)
            else:
                info = TokenInfo(info.id, info.name, info.role, info.owner, info.created_at, now)
        return info

    def revoke_token(self, token: str) -> TokenInfo:
        """Revoke (delete) the token with this id, or else this name; AccountError if none."""
        with self._write() as conn:
            row = conn.execute(_TOKEN_SELECT + " WHERE t.id = ?", (token,)).fetchone()
            if row is None:
                row = conn.execute(_TOKEN_SELECT + " WHERE t.name = ?", (token,)).fetchone()
            if row is None:
                raise AccountError(f"no token with id or name {token!r}")
            conn.execute("DELETE FROM tokens WHERE id = ?", (row[0],))
        return _stored_token(row)

    def list_tokens(self, owner: str | None = None) -> list[TokenInfo]:
        """The tokens of ``owner`` (every token when None), oldest first; never their secrets."""
        with self._read() as conn:
            if owner is None:
                rows = conn.execute(_TOKEN_SELECT + " ORDER BY t.created_at, t.name").fetchall()
            else:
                rows = conn.execute(
                    _TOKEN_SELECT + " WHERE t.owner = ? ORDER BY t.created_at, t.name", (owner,)
                ).fetchall()
        return [info for info in map(_token_info, rows) if info is not None]

    # -- web sessions ----------------------------------------------------------------------

    def create_session(self, user: str | User, lifetime_s: float) -> str:
        """Open a web session for ``user`` lasting ``lifetime_s``; return its secret."""
        name = user.name if isinstance(user, User) else user
        if not lifetime_s > 0.0:
            raise AccountError(f"session lifetime must be > 0 s, got {lifetime_s}")
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        now = self._clock()
        with self._write() as conn:
            canonical = self._user_row(conn, name).name
            # Housekeeping where it is cheap: expired sessions go when a new one is made.
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO sessions (secret_sha256, user, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (_digest(secret), canonical, now, now + lifetime_s),
            )
        return secret

    def verify_session(self, secret: str) -> User | None:
        """The user of a live session, or None (unknown, ended or expired)."""
        if not secret or len(secret) > _MAX_SECRET_CHARS:
            return None
        # Looked up by digest: timing can at most reveal digest prefixes, which do not help
        # anyone find a secret.
        with self._read() as conn:
            row = conn.execute(
                "SELECT u.name, u.role, u.created_at, u.password_changed_at, s.expires_at"
                " FROM sessions s JOIN users u ON u.name = s.user WHERE s.secret_sha256 = ?",
                (_digest(secret),),
            ).fetchone()
        if row is None or row[4] <= self._clock():
            return None
        return User(row[0], Role(row[1]), row[2], row[3])

    def end_session(self, secret: str) -> None:
        """End one session (logout); unknown secrets are ignored."""
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE secret_sha256 = ?", (_digest(secret),))

    def end_sessions_of(self, user: str | User) -> int:
        """End every session of ``user``; return how many there were."""
        name = user.name if isinstance(user, User) else user
        with self._write() as conn:
            return int(conn.execute("DELETE FROM sessions WHERE user = ?", (name,)).rowcount)

    # -- internals -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (every thread's connection); the store cannot be used after."""
        self._connections.close()

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.use()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """This process's write lock, this thread's connection and an IMMEDIATE transaction."""
        return locked_transaction(self._connections, self._write_lock)

    def _rehash(self, name: str, old_hash: str, password: str) -> None:
        new_hash = self._hashing.hash(password)
        with self._write() as conn:
            # Only if unchanged meanwhile: never overwrite a password set in between.
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )

    @staticmethod
    def _user_row(conn: sqlite3.Connection, name: str) -> User:
        row = conn.execute(
            "SELECT name, role, created_at, password_changed_at FROM users WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise AccountError(f"no user named {name!r}")
        return User(row[0], Role(row[1]), row[2], row[3])

    @staticmethod
    def _admin_count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0])


# Columns 0-5 make a TokenInfo; 6 is the stored digest of the secret, 7 the owner's current
# role (NULL when the token has no owner, or when its owner is gone).
_TOKEN_SELECT = (
    "SELECT t.id, t.name, t.role, t.owner, t.created_at, t.last_used_at, t.secret_sha256,"
    " u.role FROM tokens t LEFT JOIN users u ON u.name = t.owner"
)
_TokenRow = tuple[str, str, str, str | None, float, float | None, str, str | None]


def _stored_token(row: _TokenRow) -> TokenInfo:
    """The token as stored, with the role it was created with."""
    return TokenInfo(row[0], row[1], Role(row[2]), row[3], row[4], row[5])


def _token_info(row: _TokenRow) -> TokenInfo | None:
    """The token acting with the lower of its role and its owner's; None if the owner is gone."""
    info = _stored_token(row)
    if info.owner is None:
        return info
    owner_role = row[7]
    if owner_role is None:
        return None
    return TokenInfo(
        info.id,
        info.name,
        lower_role(info.role, Role(owner_role)),
        info.owner,
        info.created_at,
        info.last_used_at,
    )
