"""The settings pages' contract with the server: problems by field, sections, every label."""

import json
import re
from pathlib import Path

from emsbox import config_doc
from emsbox.app import LIVE_SECTIONS
from emsbox.config import Config, to_data
from emsbox.languages import LANGUAGES
from emsbox.web.api.config_routes import ADMIN_SECTIONS, by_field

APP = Path(__file__).resolve().parents[2] / "src" / "emsbox" / "web" / "static" / "app"
SETTINGS_JS = (APP / "settings.js").read_text(encoding="utf-8")


def settings() -> list[tuple[str, str, bool]]:
    """Every setting and group of settings: (path without list indexes, Model.key, is a list)."""
    return [
        (
            c.path.replace("[]", ""),
            f"{c.owner.__name__}.{c.name}",
            c.is_list and c.group is not None,
        )
        for c in config_doc.settings()
    ]


def js_list(name: str) -> list[str]:
    return json.loads(re.search(rf"const {name} = (\[[^\]]*\]);", SETTINGS_JS).group(1))


def strings(code: str) -> dict[str, str]:
    return json.loads((APP / "i18n" / code / "settings.json").read_text(encoding="utf-8"))


def test_problems_are_keyed_by_their_field_path():
    problems = [
        "meter.loads[0].ct_primary_a: Input should be greater than 0",
        "meter: load names must be unique: hvac",
        "meter.loads[0].ct_primary_a: a second reason",
        "something without a path",
    ]
    assert by_field(problems) == {
        "meter.loads[0].ct_primary_a": "Input should be greater than 0",
        "meter": "load names must be unique: hvac",
        "(top level)": "something without a path",
    }


def test_a_refused_configuration_names_each_field(api):
    data = to_data(api.service.saved_config, redact=True)
    data["meter"]["main"]["nominal_voltage_v"] = 600
    data["meter"]["loads"][0]["ct_primary_a"] = -5
    r = api.client.put("/api/v1/config", json=data, headers=api.headers("installer"))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert set(errors) == {"meter.main.nominal_voltage_v", "meter.loads[0].ct_primary_a"}
    assert "less than or equal to 500" in errors["meter.main.nominal_voltage_v"]
    assert len(r.json()["problems"]) == 2


def test_the_page_knows_the_sections_the_server_guards():
    assert js_list("ADMIN_SECTIONS") == list(ADMIN_SECTIONS)
    assert js_list("LIVE_SECTIONS") == list(LIVE_SECTIONS)
    assert set(LIVE_SECTIONS) | set(ADMIN_SECTIONS) <= set(Config.model_fields)


def test_every_setting_has_a_label_and_help_in_every_language():
    for code in LANGUAGES:
        text = strings(code)
        for path, owned, _ in settings():
            for kind in ("field", "help"):
                keys = (f"settings.{kind}.{path}", f"settings.{kind}.{owned}")
                assert any(k in text for k in keys), (code, kind, path)


def test_every_label_names_a_setting_that_exists():
    names = {p for p, _, _ in settings()} | {o for _, o, _ in settings()}
    for code in LANGUAGES:
        for key in strings(code):
            kind, _, name = key.removeprefix("settings.").partition(".")
            if kind in ("field", "help"):
                assert name in names, (code, key)


def test_every_list_of_settings_names_its_items():
    lists = [path for path, _, is_list in settings() if is_list]
    assert "meter.loads" in lists
    for code in LANGUAGES:
        for path in lists:
            assert f"settings.item.{path}" in strings(code), (code, path)
