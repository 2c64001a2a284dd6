"""New passwords on the list of common passwords are refused (NIST SP 800-63B §5.1.1.2)."""

from importlib import resources

import pytest
from argon2 import PasswordHasher

from emsbox.web.accounts import AccountError, AccountStore, Role
from emsbox.web.common_passwords import _common_passwords, is_common
from emsbox.web.passwords import MIN_PASSWORD_CHARS, check_password_rule

COMMON = "this password is on a list of commonly used passwords: choose another"
# Every password the other tests and the benchmarks give to new accounts: none may be common.
FIXTURE_PASSWORDS = [
    "correct horse battery",
    "a long enough password",
    "bench password 1",
    "the new password",
    "another good one",
    "a brand new one",
]


def data_lines():
    text = resources.files("emsbox.web").joinpath("data/common_passwords.txt").read_text("utf-8")
    return text.splitlines()


def entries():
    return [line for line in data_lines() if not line.startswith("#")]


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "12345678",
        "iloveyou",
        "trustno1",
        "sunshine",
        "Password",
        "ILOVEYOU",
        "Qwerty123",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password):
    with pytest.raises(AccountError, match=COMMON):
        check_password_rule("ada", password)


def test_compatibility_forms_are_normalised_before_the_lookup():
    # Fullwidth letters are the same password after NFKC, as they are when hashed.
    assert is_common("ｐａｓｓｗｏｒｄ")
    with pytest.raises(AccountError, match=COMMON):
        check_password_rule("ada", "ＰＡＳＳＷＯＲＤ")


@pytest.mark.parametrize("password", [*FIXTURE_PASSWORDS, "staple battery horse correct 42"])
def test_passphrases_and_the_test_passwords_are_accepted(password):
    assert not is_common(password)
    check_password_rule("ada", password)


def test_length_is_checked_before_the_list():
    # "pass" is common, but too short says more about what to do.
    with pytest.raises(AccountError, match="too short"):
        check_password_rule("ada", "pass")


def test_a_new_account_with_a_common_password_is_refused(tmp_path):
    store = AccountStore(
        tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    with pytest.raises(AccountError, match=COMMON):
        store.add_user("ada", "Baseball", Role.ADMIN)
    assert store.get_user("ada") is None


def test_the_file_is_lowercase_unique_and_has_only_long_enough_entries():
    lines = entries()
    assert len(lines) > 10_000
    assert all(line == line.strip() and line == line.casefold() for line in lines)
    assert len(set(lines)) == len(lines)
    assert min(len(line) for line in lines) >= MIN_PASSWORD_CHARS
    assert lines[:3] == ["password", "12345678", "123456789"]  # most frequent first


def test_the_header_names_the_source_and_is_skipped():
    header = data_lines()[0]
    assert header.startswith("#") and "zxcvbn" in header and "MIT" in header
    loaded = _common_passwords()
    assert loaded == frozenset(entries())
    assert not any(entry.startswith("#") for entry in loaded)
    assert not is_common(header)
