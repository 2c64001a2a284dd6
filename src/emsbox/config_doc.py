"""The configuration's settings as Markdown tables, for docs/configuration.md (kept in sync)."""

from __future__ import annotations

import json
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from emsbox.config import Config
from emsbox.doc_marker import rewrite_after_marker


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation, and whether it is a list of them."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        inner, _ = _model_of(typing.get_args(annotation)[0])
        return inner, True
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            inner, is_list = _model_of(arg)
            if inner is not None:
                return inner, is_list
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


@dataclass(frozen=True)
class Setting:
    """One setting, or group of settings, of the configuration."""

    path: str  # key path; "[]" after a list of groups: "meter.loads[].name"
    owner: type[BaseModel]  # the model that declares it
    name: str
    group: type[BaseModel] | None  # the model of a group (or of a list's items)
    is_list: bool


def settings(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[Setting]:
    """Every setting and group of settings below ``model``, each group before its members."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        group, is_list = _model_of(field.annotation)
        yield Setting(path, model, name, group, is_list)
        if group is not None:
            yield from settings(group, f"{path}[]" if is_list else path)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not None)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " / ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{origin.__name__}[{args}]"
    if annotation is type(None):
        return "empty"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " / ".join(f"`{m.value}`" for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return json.dumps([v.model_dump(mode="json") for v in value])
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if value is None:
        return "empty"
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel], prefix: str, out: list[str]) -> list[tuple[str, type]]:
    nested: list[tuple[str, type]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        inner, is_list = _model_of(field.annotation)
        if inner is not None and not is_list:
            nested.append((key, inner))
            continue
        if inner is not None:
            nested.append((f"{key}[]", inner))
        kind = f"list of {inner.__name__}" if inner is not None else _type_name(field.annotation)
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{key}` | {kind} | {_default(field)} | {description} |")
    return nested


def configuration_tables() -> str:
    """One Markdown table per section: key, type, default and description of every setting."""
    parts: list[str] = []
    queue: list[tuple[str, type]] = [
        (name, _model_of(field.annotation)[0] or Config)
        for name, field in Config.model_fields.items()
    ]
    while queue:
        key, model = queue.pop(0)
        assert issubclass(model, BaseModel)
        rows = ["| key | type | default | description |", "|---|---|---|---|"]
        nested = _rows(model, f"{key}.", rows)
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts.append(f"### `[{key}]`\n\n{doc}\n\n" + "\n".join(rows) + "\n")
        queue[0:0] = nested
    return "\n".join(parts)


MARKER = "<!-- generated below by: python -m emsbox.config_doc docs/configuration.md -->\n"


def rewrite(path: Path) -> None:
    """Replace everything after the marker line of ``path`` with the current tables."""
    rewrite_after_marker(path, MARKER, configuration_tables())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rewrite(Path(sys.argv[1]))
    else:
        print(configuration_tables(), end="")
