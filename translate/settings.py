"""Typed settings from plain data: config files, `--set` strings and environment variables, one mechanism.

`decode_settings(cls, values, where)` turns a mapping into the frozen dataclass `cls` with msgspec (values over
the dataclass's defaults). Strings convert where the field's type asks for it ("3e-3" for a float, "true" for a
bool), so a TOML number, a `--set train.lr=3e-3` and `TRANSLATE_MAX_TEXTS=64` all go through the same code and
fail with the same one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from translate.errors import ConfigError

T = TypeVar("T")


def decode_settings(
    cls: type[T], values: Mapping[str, Any], where: str, spell: Callable[[str], str] | None = None
) -> T:
    """`cls` with `values` applied over its defaults; unknown keys and wrong types raise ConfigError.

    `where` names the settings in messages ("[train]"); `spell` says how the user wrote a key, where that differs
    from "{where} setting {key}" (an environment variable's name).
    """
    spell = spell or (lambda key: f"{where} setting {key}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown {where} setting(s): {', '.join(unknown)} (known: {', '.join(known)})")
    try:
        return msgspec.convert(dict(values), cls, strict=False, dec_hook=_to_path)
    except msgspec.ValidationError as e:
        raise ConfigError(_type_error(cls, values, where, spell, e)) from None


def _to_path(kind: type, value: Any) -> Any:
    """msgspec has no Path type: a string (or a Path) becomes one."""
    if kind is Path and isinstance(value, (str, Path)):
        return Path(value)
    raise TypeError(f"Expected `{getattr(kind, '__name__', kind)}`, got `{type(value).__name__}`")


def _type_error(cls: type, values: Mapping[str, Any], where: str, spell: Callable[[str], str], error: Exception) -> str:
    """msgspec's "Expected `float`, got `str` - at `$.lr`" as "[train] setting lr must be float, not 'fast'"."""
    found = re.search(r"at `\$\.(\w+)", str(error))
    if not found or found.group(1) not in values:
        return f"invalid {where} settings: {error}"
    key = found.group(1)
    expected = typing.get_type_hints(cls)[key]
    name = getattr(expected, "__name__", str(expected).replace("typing.", ""))
    return f"{spell(key)} must be {name}, not {values[key]!r}"


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML, YAML or JSON config file into plain data."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError(f"config file {path} must end in .toml, .yaml, .yml or .json")
    text = path.read_text(encoding="utf-8")
    try:
        data = _parse(path.suffix, text)
    except Exception as e:  # tomllib, json and yaml each raise their own error types
        raise ConfigError(f"cannot parse {path}: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings at the top level")
    return data


def _parse(suffix: str, text: str) -> Any:
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml  # only YAML users pay for the import

    return yaml.safe_load(text) or {}


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dict merge: `overrides` wins, tables are merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
