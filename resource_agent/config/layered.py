"""The one settings mechanism: defaults < YAML file < `RESOURCE_AGENT_*` environment < command line.

A command builds its settings with `SomeSettings.load(config_file, **command_line)`,
passing only the options given on the command line. YAML keys may be snake_case
or camelCase (Helm values are camelCase). Every error names the field and where
it came from.

The environment is read as pydantic-settings' `EnvSettingsSource` reads it (names
case-insensitive: the class's `env_prefix` + the field name, or the field's
validation aliases unprefixed; JSON for lists, dicts and models), and the layers are
merged key by key like its `deep_update`. It is not used itself: importing it costs
the agent about 5 MiB (asyncio, argparse and every settings provider), a tenth of its
memory (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from resource_agent.config.yaml_lines import key_lines, line_of, yaml_error_line

ENV_PREFIX = "RESOURCE_AGENT_"

_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class SettingsError(ValueError):
    """Settings that cannot be read or do not validate; the message names the field and its source."""


def snake_case(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).replace("-", "_").lower()


def yaml_file_values(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file, keys normalised to snake_case."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        line = yaml_error_line(exc)
        where = f"config {path}" + (f": line {line}" if line else "")
        raise SettingsError(f"{where}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config {path} must be a mapping of settings, got {type(data).__name__}")
    return {snake_case(str(key)): value for key, value in data.items()}


def environment_values(model: type[BaseModel], prefix: str) -> dict[str, Any]:
    """The fields of `model` the environment sets, by field name."""
    environment = {key.lower(): value for key, value in os.environ.items()}
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        for variable in _variables(name, field, prefix):
            if variable.lower() in environment:
                values[name] = _decode(environment[variable.lower()], field, variable)
                break
    return values


def _variables(name: str, field: FieldInfo, prefix: str) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [prefix + name]


def _decode(raw: str, field: FieldInfo, variable: str) -> Any:
    if not _is_complex(field.annotation):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise SettingsError(f"environment {variable}: not valid JSON for a {_type_name(field.annotation)}: {raw!r}") from None


def _is_complex(annotation: Any) -> bool:
    """A list, dict, set, tuple or model (or an optional one): given as JSON in the environment."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_complex(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is typing.Annotated:
        return _is_complex(typing.get_args(annotation)[0])
    kind = origin or annotation
    return isinstance(kind, type) and (issubclass(kind, (list, dict, set, frozenset, tuple)) or issubclass(kind, BaseModel))


def _type_name(annotation: Any) -> str:
    return getattr(typing.get_origin(annotation) or annotation, "__name__", str(annotation))


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; mappings are merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged


class LayeredSettings(BaseModel):
    """Base of the agent's, the operator's and the LLM's settings: constructing one reads the layers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)
    env_prefix: ClassVar[str] = ENV_PREFIX

    def __init__(self, **given: Any) -> None:
        path = _config_file.get()
        file_values = yaml_file_values(path) if path is not None else {}
        super().__init__(**merge(file_values, environment_values(type(self), self.env_prefix), given))

    @classmethod
    def load(cls, config_file: Path | str | None = None, **command_line: Any) -> Self:
        """Settings from every layer; `command_line` holds only the options actually given."""
        path = Path(config_file) if config_file is not None else None
        token = _config_file.set(path)
        try:
            return cls(**{key: value for key, value in command_line.items() if value is not None})
        except ValidationError as exc:
            if path is None:
                raise SettingsError(f"invalid settings ({ENV_PREFIX}* environment, command line): {describe(exc)}") from None
            spelled, lines = _file_keys(path)
            raise SettingsError(f"invalid config {path} (or its {ENV_PREFIX}* environment, command line): {describe(exc, spelled, lines)}") from None
        finally:
            _config_file.reset(token)


def _file_keys(path: Path) -> tuple[dict[str, str], dict[tuple[str, ...], int]]:
    """snake_case -> the key as the file spells it (errors name what the user wrote), and each key's line."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return {}, {}
    spelled = {snake_case(str(key)): str(key) for key in data} if isinstance(data, dict) else {}
    return spelled, key_lines(text)


def describe(exc: ValidationError, spelled: dict[str, str] | None = None, lines: dict[tuple[str, ...], int] | None = None) -> str:
    """`field: message; ...` for every error, with `unknown setting` for extra keys; `line N: ` before a
    field that is in the file (the value may still have come from the environment or command line)."""
    problems = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        if parts and spelled:
            parts[0] = spelled.get(parts[0], parts[0])
        location = ".".join(parts)
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        line = line_of(lines, parts) if lines and parts and (parts[0],) in lines else None
        problem = f"{location}: {message}" if location else message
        problems.append(f"line {line}: {problem}" if line else problem)
    return "; ".join(problems)
