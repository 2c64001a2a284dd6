"""The vocabulary of accounts: roles, users, API tokens and the errors that refuse them.

Kept apart from ``accounts`` so that the password, database and command-line modules can name
these types without importing the store itself. ``emsbox.web.accounts`` re-exports them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# User and token names: short, printable in a shell and a URL path without quoting.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
NAME_RULE = "1 to 64 characters among letters, digits and _ . @ -"


class Role(StrEnum):
    """What a user or token may do; each role includes everything the lower ones may."""

    VIEWER = "viewer"
    INSTALLER = "installer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in viewer < installer < admin (string order would be alphabetical)."""
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        """Whether this role may do what ``required`` may (admin ⊃ installer ⊃ viewer)."""
        return self.rank >= Role(required).rank


_RANKS = {Role.VIEWER: 0, Role.INSTALLER: 1, Role.ADMIN: 2}


def lower_role(a: Role, b: Role) -> Role:
    """The lesser of two roles."""
    return a if a.rank <= b.rank else b


@dataclass(frozen=True)
class User:
    """A user account (never its password). Times are seconds since the Unix epoch."""

    name: str
    role: Role
    created_at: float
    password_changed_at: float


@dataclass(frozen=True)
class TokenInfo:
    """An API token without its secret.

    ``role`` is the role the token acts with: the one it was created with, lowered to its
    owner's current role if the owner was demoted since. ``owner`` is None for a token made on
    the command line, which acts on behalf of no user.
    """

    id: str
    name: str
    role: Role
    owner: str | None
    created_at: float
    last_used_at: float | None


class AccountError(Exception):
    """An account operation was refused or the account store is unusable; one-line message."""


class LoginRefused(AccountError):  # noqa: N818 - a refusal, not a failure of the program
    """A login was refused: wrong name or password, or too many failures.

    ``retry_after_s`` is how long the caller must wait before the next attempt is even
    considered (0 when it may try again at once).
    """

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def check_name(name: str, what: str = "user") -> str:
    """``name`` if it is a valid user or token name, else AccountError saying why."""
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 70 else name[:64] + "..."
        raise AccountError(f"invalid {what} name {shown!r}: use {NAME_RULE}")
    return name


def as_role(role: Role | str) -> Role:
    """``role`` as a Role, or AccountError naming the valid ones."""
    try:
        return Role(role)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {role!r}: use one of {valid}") from None
