"""Passwords: the rule new ones must meet, and Argon2id hashing with bounded memory use.

The rule follows NIST SP 800-63B §5.1.1: a minimum length, generous maximum, no composition
rules (they push people to predictable patterns), Unicode normalised so the same password
typed on two keyboards is the same password, and not on a list of common passwords
(§5.1.1.2: passwords from breach corpuses; see ``emsbox.web.common_passwords``).
"""

from __future__ import annotations

import threading
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from emsbox.web.account_types import AccountError
from emsbox.web.common_passwords import is_common

MIN_PASSWORD_CHARS = 8  # SP 800-63B: at least 8 characters for a memorised secret
# Long passphrases are welcome; the bound keeps request bodies small. (Argon2 first reduces any
# password with BLAKE2b, so even the longest costs no more to hash.)
MAX_PASSWORD_CHARS = 1024

# RFC 9106 §4, second recommended option (for memory-constrained machines): Argon2id,
# 3 passes over 64 MiB with 4 lanes; about 50-150 ms on a small ARM board. A change here makes
# stored hashes outdated: each is rehashed with the new parameters at its user's next login.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_PARALLELISM = 4
# Every hash holds ARGON2_MEMORY_KIB while it runs. Unbounded, a burst of login requests (each
# on its own worker thread) could exhaust a small device's memory; two at a time caps it at
# 128 MiB, and a login waits at worst for a few hash times.
MAX_CONCURRENT_HASHES = 2
# Checked against when the user name is unknown, so that probing names takes as long as
# trying a real account's password and timing does not tell which names exist.
_DUMMY_PASSWORD = "emsbox: no such user"


def normalise(password: str) -> str:
    """The password in Unicode NFKC form (SP 800-63B §5.1.1.2), as it is hashed and counted."""
    return unicodedata.normalize("NFKC", password)


def check_password_rule(name: str, password: str) -> None:
    """Raise AccountError with the reason if ``password`` may not be ``name``'s new password."""
    password = normalise(password)
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"password too short: use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"password too long: use at most {MAX_PASSWORD_CHARS} characters")
    if is_common(password):
        raise AccountError("this password is on a list of commonly used passwords: choose another")
    if password.casefold() == name.casefold():
        raise AccountError("the password must not be the user name")


def default_hasher() -> PasswordHasher:
    """An Argon2id hasher with this module's parameters."""
    return PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        type=Type.ID,
    )


class PasswordHashing:
    """Hash and check passwords with an Argon2id hasher, a few hashes at a time.

    Thread-safe: the hasher is stateless and the semaphore bounds concurrent work.
    """

    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        max_concurrent: int = MAX_CONCURRENT_HASHES,
    ) -> None:
        self._hasher = hasher or default_hasher()
        if self._hasher.type is not Type.ID:
            raise ValueError("passwords are hashed with Argon2id only")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """The encoded Argon2id hash (``$argon2id$v=19$...``) of a normalised password."""
        with self._slots:
            return self._hasher.hash(normalise(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; False also for a damaged hash."""
        try:
            with self._slots:
                return self._hasher.verify(stored_hash, normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_nothing(self, password: str) -> None:
        """Spend the time of one check on a password that matches no account."""
        self.verify(self._dummy(), password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _dummy(self) -> str:
        # Made on first use, with the current parameters, so it costs what a real check costs.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(_DUMMY_PASSWORD)
            return self._dummy_hash
