"""Command-line options shared by the commands that sample, and the duration parameter type.

`collector_options` adds node_exporter-style switches (`--collector.<name>` /
`--no-collector.<name>` for every registered collector), the host paths, the
LMCache URLs, the node name and `--config FILE`. Every option of the decorated
command whose name is an `AgentConfig` field is layered over the environment
and the file (`AgentConfig.load`); the command receives the result as `config`
and the enabled map as `enabled`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from resource_agent.config.durations import parse_duration
from resource_agent.config.layered import SettingsError
from resource_agent.node_agent.sampler import registrations
from resource_agent.node_agent.settings import AgentConfig


class DurationType(click.ParamType[float]):
    """A click parameter holding a duration (`90s`, `1m30s`, `1h`), converted to seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()
LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"])
OUTPUT_FORMATS = ("table", "json", "yaml")


def output_option(formats: tuple[str, ...] = OUTPUT_FORMATS, default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`-o/--output` as kubectl and helm spell it; `--format` stays as the same option."""
    return click.option(
        "-o", "--output", "--format", "output_format", type=click.Choice(formats), default=default, show_default=True,
        help="Output format (--format is the same option).",
    )


def log_level_option(default: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--log-level` of every long-running command; None leaves the default to the layered settings."""
    if default is None:
        return click.option("--log-level", type=LOG_LEVELS, help="Log level.  [default: info]")
    return click.option("--log-level", type=LOG_LEVELS, default=default, show_default=True, help="Log level.")


def _switch_parameter(name: str) -> str:
    return "collector_" + re.sub(r"\W", "_", name)


def load_agent_config(config_file: Path | None, given: dict[str, Any]) -> AgentConfig:
    try:
        return AgentConfig.load(config_file, **given)
    except (SettingsError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None


def collector_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the sampling options to a click command; it receives `config` and `enabled`."""
    names = [registration.name for registration in registrations()]
    defaults = {registration.name: registration.enabled_by_default for registration in registrations()}
    fields = set(AgentConfig.model_fields)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        config_file = kwargs.pop("config_file")
        switches = {name: kwargs.pop(_switch_parameter(name)) for name in names}
        given = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        if given.get("lmcache_urls") == ():
            given["lmcache_urls"] = None  # not given: the environment or the file may set them
        if given.get("serving_urls") == ():
            given["serving_urls"] = None
        config = load_agent_config(config_file, given)
        return command(config=config, enabled=config.enabled_collectors(switches), **kwargs)

    options = [
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Agent YAML config file (the environment and the command line win)."),
        click.option("--host-proc", type=click.Path(file_okay=False, path_type=Path), help="Host /proc mount (like node_exporter --path.procfs).  [default: /proc]"),
        click.option("--host-sys", type=click.Path(file_okay=False, path_type=Path), help="Host /sys mount (like node_exporter --path.sysfs).  [default: /sys]"),
        click.option("--host-root", type=click.Path(file_okay=False, path_type=Path), help="Host / mount for filesystem usage (like node_exporter --path.rootfs).  [default: /]"),
        click.option("--node-name", help="Node name.  [default: $NODE_NAME, else the host's name]"),
        click.option("--lmcache-url", "lmcache_urls", multiple=True, metavar="URL", help="LMCache internal API URL (repeatable)."),
        click.option("--serving-url", "serving_urls", multiple=True, metavar="ENGINE=URL", help="Serving engine metrics, e.g. vllm=http://10.0.0.5:8000 or sglang=http://host:30000 (repeatable)."),
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
                help=f"Enable the {name} collector.  [default: {state}]",
            )
        )
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
