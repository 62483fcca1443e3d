"""CLI conventions: -o/--output, --log-level on long-running commands, one way to show defaults."""

from __future__ import annotations

import json
import re

import click
import pytest
import yaml
from click.testing import CliRunner

from resource_agent.cli import SUBCOMMANDS, main

LONG_RUNNING = ("agent", "operator", "demo")
WITH_OUTPUT = {"collect": {"table", "json", "yaml"}, "scan": {"table", "json", "yaml"}, "analyze": {"table", "json", "yaml"}, "crds": {"table", "json", "yaml"}}


def _commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    ctx = click.Context(main)

    def add(name: str, command: click.Command) -> None:
        found[name] = command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                sub_command = command.get_command(ctx, sub)
                assert sub_command is not None
                add(f"{name} {sub}", sub_command)

    for name in SUBCOMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        add(name, command)
    return found


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts + p.secondary_opts), None)


@pytest.mark.parametrize("name", sorted(WITH_OUTPUT))
def test_output_option_is_kubectl_style(name: str) -> None:
    command = _commands()[name]
    option = _option(command, "-o")
    assert option is not None and {"-o", "--output", "--format"} <= set(option.opts), f"{name}: -o/--output/--format"
    assert isinstance(option.type, click.Choice) and set(option.type.choices) == WITH_OUTPUT[name]


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_commands_take_log_level(name: str) -> None:
    option = _option(_commands()[name], "--log-level")
    assert option is not None, f"{name} has no --log-level"
    assert isinstance(option.type, click.Choice) and {"debug", "info", "warning", "error"} <= set(option.type.choices)


def test_defaults_are_shown_one_way() -> None:
    """Defaults read `[default: X]`, as click's show_default prints them, never '(default: X)' or 'Default X.'."""
    wrong: list[str] = []
    for name, command in _commands().items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            text = param.help or ""
            if re.search(r"\(default|[.;] [Dd]efault[: ]|default: until", text.replace("[default:", "")):
                wrong.append(f"{name} {param.opts[0]}: {text!r}")
            unset = param.default is getattr(click.core, "UNSET", None) or param.default in (None, False, ())
            has_default = not unset and not param.is_flag and not param.multiple
            if has_default and not param.show_default and "[default:" not in text:
                wrong.append(f"{name} {param.opts[0]}: default {param.default!r} not shown")
    assert not wrong, "\n".join(wrong)


def test_collect_yaml_output_parses() -> None:
    result = CliRunner().invoke(main, ["collect", "-o", "yaml", "--no-collector.lmcache"])
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.output)
    assert "collectors" in document


def test_crds_json_output_is_a_list_of_every_crd() -> None:
    result = CliRunner().invoke(main, ["crds", "--output", "json"])
    assert result.exit_code == 0, result.output
    kinds = {item["spec"]["names"]["kind"] for item in json.loads(result.output)["items"]}
    assert kinds == {"ResourceReport", "ResourceRecommendation", "WorkloadUsageCheckpoint"}


def test_crds_table_refuses_output_dir(tmp_path) -> None:
    result = CliRunner().invoke(main, ["crds", "-o", "table", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "not a table" in result.output
