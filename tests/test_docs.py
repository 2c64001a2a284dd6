"""Documentation that is generated from the code stays in step with it."""

from pathlib import Path

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
