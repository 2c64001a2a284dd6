"""Common passwords that new passwords may not be (NIST SP 800-63B §5.1.1.2).

The list (``data/common_passwords.txt``) holds the entries of 8 or more characters of zxcvbn's
frequency list of passwords from breach corpuses, lowercase; shorter ones are already refused
by the length rule. It is read on first use and kept as a frozenset of str: about 1.2 MB.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources


def is_common(password: str) -> bool:
    """Whether ``password`` (NFKC-normalised, case ignored) is on the list of common passwords."""
    return unicodedata.normalize("NFKC", password).casefold() in _common_passwords()


@functools.cache
def _common_passwords() -> frozenset[str]:
    # importlib.resources finds the file in a source tree, a wheel install or a zip alike.
    text_file = resources.files("emsbox.web") / "data" / "common_passwords.txt"
    text = text_file.read_text(encoding="utf-8")
    return frozenset(
        line for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")
    )
