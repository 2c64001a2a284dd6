"""Documentation that is generated from the code stays in step with it."""

from pathlib import Path

from emsbox import config_doc
from emsbox.gateways.modbus import map_export
from emsbox.variables_doc import variables_table

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_variables_doc_lists_exactly_the_vocabulary():
    text = (DOCS / "variables.md").read_text(encoding="utf-8")
    assert text.endswith(variables_table()), "run: python -m emsbox.variables_doc"


def test_every_doc_link_points_to_an_existing_file():
    for page in DOCS.glob("*.md"):
        for part in page.read_text(encoding="utf-8").split("](")[1:]:
            target = part.split(")")[0]
            if target.endswith(".md") and "://" not in target:
                assert (DOCS / target).exists(), f"{page.name} links to missing {target}"


def test_configuration_doc_lists_every_setting():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert text.endswith(config_doc.MARKER + "\n" + config_doc.configuration_tables()), (
        "run: python -m emsbox.config_doc docs/configuration.md"
    )


def test_modbus_doc_has_the_current_register_maps():
    text = (DOCS / "modbus.md").read_text(encoding="utf-8")
    assert text.endswith(map_export.MARKER + "\n" + map_export.as_markdown()), (
        "run: python -m emsbox.gateways.modbus.map_export docs/modbus.md"
    )


def test_mqtt_doc_has_the_current_home_assistant_table():
    from emsbox.gateways.mqtt import discovery_doc

    text = (DOCS / "mqtt.md").read_text(encoding="utf-8")
    assert text.endswith(discovery_doc.MARKER + "\n" + discovery_doc.as_markdown()), (
        "run: python -m emsbox.gateways.mqtt.discovery_doc docs/mqtt.md"
    )
