"""Command-line and config-file settings shared by every command that samples.

`collector_options` adds node_exporter-style switches (`--collector.<name>` /
`--no-collector.<name>` for every registered collector), the host paths, the
LMCache URLs, the node name and `--config FILE`, then calls the command with
a built `CollectorContext` (`context`), the enabled map (`enabled`) and the
parsed config file (`config`). The command line wins over the file.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from resource_agent.node_agent.collectors.base import CollectorContext
from resource_agent.node_agent.sampler import SIMULATION_COLLECTOR, registrations

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from "500ms", "5s", "5m", "1h" or a plain number of seconds."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 5s, 5m, 1h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


class Duration(click.ParamType):
    """A click parameter holding a duration, converted to seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


class AgentConfig(BaseModel):
    """The agent's YAML config file (snake_case or camelCase keys)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    host_proc: Path | None = None
    host_sys: Path | None = None
    host_root: Path | None = None
    node_name: str | None = None
    lmcache_urls: list[str] = Field(default_factory=list)
    collectors: dict[str, bool] = Field(default_factory=dict)
    scenario: str | None = None
    scenario_seed: int | None = None
    interval: float | None = None
    window: float | None = None
    report_interval: float | None = None
    listen: str | None = None
    state_file: Path | None = None

    @field_validator("interval", "window", "report_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, (str, int, float)) else value


class ConfigError(click.ClickException):
    """The config file cannot be read or does not match AgentConfig."""


def load_config(path: Path | None) -> AgentConfig:
    """Parse the YAML config file; a clear error names the file and the bad field."""
    if path is None:
        return AgentConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of settings, got {type(data).__name__}")
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid config {path}: {problems}") from exc


def default_node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


def build_context(
    config: AgentConfig,
    *,
    host_proc: Path | None = None,
    host_sys: Path | None = None,
    host_root: Path | None = None,
    node_name: str | None = None,
    lmcache_urls: tuple[str, ...] = (),
    scenario: str | None = None,
    scenario_seed: int | None = None,
    switches: dict[str, bool | None] | None = None,
) -> tuple[CollectorContext, dict[str, bool]]:
    """Merge command-line values over the config file into a context and the explicit enabled map."""
    context = CollectorContext(
        host_proc=host_proc or config.host_proc or Path("/proc"),
        host_sys=host_sys or config.host_sys or Path("/sys"),
        host_root=host_root or config.host_root or Path("/"),
        node_name=node_name or config.node_name or default_node_name(),
        lmcache_urls=tuple(lmcache_urls or config.lmcache_urls),
        scenario=scenario or config.scenario,
        scenario_seed=scenario_seed if scenario_seed is not None else (config.scenario_seed or 0),
    )
    enabled = dict(config.collectors)
    enabled.update({name: value for name, value in (switches or {}).items() if value is not None})
    if context.scenario is not None:
        enabled.setdefault(SIMULATION_COLLECTOR, True)
    return context, enabled


def _switch_parameter(name: str) -> str:
    return "collector_" + re.sub(r"\W", "_", name)


def collector_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the sampling options to a click command; it receives `context`, `enabled` and `config`."""
    names = [registration.name for registration in registrations()]
    defaults = {registration.name: registration.enabled_by_default for registration in registrations()}

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        config = load_config(kwargs.pop("config_file"))
        switches = {name: kwargs.pop(_switch_parameter(name)) for name in names}
        context, enabled = build_context(
            config,
            host_proc=kwargs.pop("host_proc"),
            host_sys=kwargs.pop("host_sys"),
            host_root=kwargs.pop("host_root"),
            node_name=kwargs.pop("node_name"),
            lmcache_urls=kwargs.pop("lmcache_urls"),
            scenario=kwargs.pop("scenario"),
            scenario_seed=kwargs.pop("scenario_seed"),
            switches=switches,
        )
        return command(context=context, enabled=enabled, config=config, **kwargs)

    options = [
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Agent YAML config file (the command line wins)."),
        click.option("--host-proc", type=click.Path(file_okay=False, path_type=Path), help="Host /proc mount (like node_exporter --path.procfs). Default /proc."),
        click.option("--host-sys", type=click.Path(file_okay=False, path_type=Path), help="Host /sys mount (like node_exporter --path.sysfs). Default /sys."),
        click.option("--host-root", type=click.Path(file_okay=False, path_type=Path), help="Host / mount for filesystem usage (like node_exporter --path.rootfs). Default /."),
        click.option("--node-name", help="Node name (default: $NODE_NAME, else the hostname)."),
        click.option("--lmcache-url", "lmcache_urls", multiple=True, metavar="URL", help="LMCache internal API URL (repeatable)."),
        click.option("--scenario", help="Simulated node profile (turns on the scenario collector)."),
        click.option("--scenario-seed", type=int, help="Random seed of the simulated profile."),
    ]
    for name in names:
        state = "on" if defaults[name] else "off"
        options.append(
            click.option(
                f"--collector.{name}/--no-collector.{name}",
                _switch_parameter(name),
                default=None,
                help=f"Enable the {name} collector (default {state}).",
            )
        )
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
