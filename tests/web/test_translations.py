"""The web app's languages: every string in each, and every key the pages use exists.

Strings live in one file per part of the app, ``i18n/<language>/<part>.json``; a key's prefix
names its part's file, so two parts can never define the same key.
"""

import json
import re
from pathlib import Path

from emsbox.languages import LANGUAGES

APP = Path(__file__).resolve().parents[2] / "src" / "emsbox" / "web" / "static" / "app"
# The parts i18n.js loads, read from it so that a new part cannot be forgotten here.
NAMESPACES = json.loads(
    re.search(r"NAMESPACES = (\[[^\]]*\])", (APP / "i18n.js").read_text()).group(1)
)


def _part(code, ns):
    return json.loads((APP / "i18n" / code / f"{ns}.json").read_text(encoding="utf-8"))


def _strings(code):
    merged = {}
    for ns in NAMESPACES:
        part = _part(code, ns)
        assert not set(part) & set(merged), (code, ns, sorted(set(part) & set(merged)))
        merged |= part
    return merged


def test_every_part_has_a_file_in_every_language_and_nothing_else():
    for code in LANGUAGES:
        files = {p.stem for p in (APP / "i18n" / code).glob("*.json")}
        assert files == set(NAMESPACES), code


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
        # Keys also stand in tables (the dashboard's tiles) as plain string literals, or are
        # composed from a prefix (t(`role.${name}`)): such prefixes count as used.
        quoted |= set(re.findall(r"\"([a-z]+\.[\w.]+)\"", text))
        quoted |= {p + "*" for p in re.findall(r"\bt\(`([\w.]+)\$\{", text)}
    assert called, "no t(...) calls found"
    missing = called - set(_strings("en"))
    assert not missing
    prefixes = tuple(q[:-1] for q in quoted if q.endswith("*"))
    unused = {k for k in set(_strings("en")) - called - quoted if not k.startswith(prefixes)}
    assert not unused, f"strings no page uses: {sorted(unused)}"
