"""The one settings mechanism: defaults < YAML file < `RESOURCE_AGENT_*` environment < command line.

A command builds its settings with `SomeSettings.load(config_file, **command_line)`,
passing only the options given on the command line. YAML keys may be snake_case
or camelCase (Helm values are camelCase). Every error names the field and where
it came from.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from resource_agent.config.yaml_lines import key_lines, line_of, yaml_error_line

ENV_PREFIX = "RESOURCE_AGENT_"

_config_file: ContextVar[Path | None] = ContextVar("config_file", default=None)


class SettingsError(ValueError):
    """Settings that cannot be read or do not validate; the message names the field and its source."""


def snake_case(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).replace("-", "_").lower()


class YamlFileSource(PydanticBaseSettingsSource):
    """The top-level mapping of a YAML file, keys normalised to snake_case."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.path.read_text())
        except OSError as exc:
            raise SettingsError(f"cannot read config {self.path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            line = yaml_error_line(exc)
            where = f"config {self.path}" + (f": line {line}" if line else "")
            raise SettingsError(f"{where}: not valid YAML: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise SettingsError(f"config {self.path} must be a mapping of settings, got {type(data).__name__}")
        return {snake_case(str(key)): value for key, value in data.items()}


class LayeredSettings(BaseSettings):
    """Base of the agent's, the operator's and the LLM's settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        file_source = (YamlFileSource(settings_cls, path),) if path is not None else ()
        return (init_settings, env_settings, *file_source)

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
