"""The README's config reference, generated from :mod:`rung.config` so it cannot drift."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from rung import config as cfg

BEGIN = "<!-- config-reference:begin -->"
END = "<!-- config-reference:end -->"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(annotation))
    if origin is tuple:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type):
        return annotation.__name__.replace("Config", " table").lower()
    return str(annotation)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    if info.default_factory is not None:
        return "(table)"
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`\"{value}\"`"
    if value == ():
        return "`[]`"
    return f"`{value!r}`".replace("'", '"')


def _models(ann: Any) -> list[type[BaseModel]]:
    if get_origin(ann) is typing.Annotated:
        ann = get_args(ann)[0]
    return [a for a in (get_args(ann) or (ann,)) if isinstance(a, type)
            and issubclass(a, BaseModel)]


def _variants(key: str, models: list[type[BaseModel]], desc: str,
              bracket: str) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for sub in models:
        label = key
        tag = sub.model_fields.get("type")
        if len(models) > 1 and tag is not None:
            label = f'{key} (type = "{get_args(tag.annotation)[0]}")'
        rows.append((bracket.replace("K", label), "table", "", desc))
        rows.extend(_rows(sub, f"{key}{'[]' if bracket.startswith('[[') else ''}."))
    return rows


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = info.annotation
        models = _models(ann)
        if get_origin(ann) is tuple and _models(get_args(ann)[0]):
            rows.extend(_variants(key, _models(get_args(ann)[0]), info.description or "",
                                  "[[K]]"))
        elif get_origin(ann) is tuple:
            rows.append((key, _type_name(ann), _default(info), info.description or ""))
        elif models:
            rows.extend(_variants(key, models, info.description or "", "[K]"))
        else:
            rows.append((key, _type_name(ann), _default(info), info.description or ""))
    return rows


def render() -> str:
    lines = [BEGIN, "| key | type | default | meaning |", "|---|---|---|---|"]
    for key, typ, default, desc in _rows(cfg.Config, ""):
        lines.append(f"| `{key}` | {typ} | {default} | {desc} |")
    lines.append(END)
    return "\n".join(lines)
