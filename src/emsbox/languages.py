"""The languages of the web app: every string exists in each (checked by a test)."""

from __future__ import annotations

from typing import Literal, get_args

Language = Literal["en", "it"]
LANGUAGES: tuple[str, ...] = get_args(Language)
NAMES: dict[str, str] = {"en": "English", "it": "Italiano"}
