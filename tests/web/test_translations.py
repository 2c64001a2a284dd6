"""The web app's languages: every string in each, and every key the pages use exists."""

import json
import re
from pathlib import Path

from emsbox.languages import LANGUAGES

APP = Path(__file__).resolve().parents[2] / "src" / "emsbox" / "web" / "static" / "app"


def _strings(code):
    return json.loads((APP / "i18n" / f"{code}.json").read_text(encoding="utf-8"))


def test_every_language_has_every_string():
    english = _strings("en")
    for code in LANGUAGES:
        strings = _strings(code)
        assert set(strings) == set(english), code
        assert all(isinstance(v, str) and v.strip() for v in strings.values()), code
        for key, text in strings.items():  # the same placeholders as in English
            assert set(re.findall(r"\{(\w+)\}", text)) == set(
                re.findall(r"\{(\w+)\}", english[key])
            ), (code, key)


def test_every_key_the_pages_use_is_translated():
    called, quoted = set(), set()
    for script in APP.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        called |= set(re.findall(r"\bt\(\"([\w.]+)\"", text))
        # Keys also stand in tables (the dashboard's tiles) as plain string literals.
        quoted |= set(re.findall(r"\"([a-z]+\.[\w.]+)\"", text))
    assert called, "no t(...) calls found"
    missing = called - set(_strings("en"))
    assert not missing
    unused = set(_strings("en")) - called - quoted
    assert not unused, f"strings no page uses: {sorted(unused)}"
