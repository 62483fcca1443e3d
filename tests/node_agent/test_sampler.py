"""Sampler: registry-driven collectors, failures reported, options and config file."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from resource_agent.api.samples import CollectorState, Sample
from resource_agent.cli.options import collector_options
from resource_agent.config.durations import parse_duration
from resource_agent.node_agent import sampler as sampler_module
from resource_agent.node_agent.collectors.base import REGISTRY, Collector, CollectorContext, CollectorUnavailable, Registration
from resource_agent.node_agent.sampler import Sampler, resolve_enabled
from resource_agent.node_agent.settings import AgentConfig


class Crashing(Collector):
    name = "crashing"

    def update(self, sample: Sample) -> None:
        raise RuntimeError("boom")


class Counting(Collector):
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def update(self, sample: Sample) -> None:
        self.calls += 1

    def close(self) -> None:
        self.closed = True


def _unavailable(context: CollectorContext) -> Collector:
    raise CollectorUnavailable("nothing here")


@pytest.fixture
def registered_collectors(monkeypatch: pytest.MonkeyPatch) -> Counting:
    counting = Counting()
    monkeypatch.setitem(REGISTRY, "crashing", Registration("crashing", True, lambda context: Crashing()))
    monkeypatch.setitem(REGISTRY, "counting", Registration("counting", True, lambda context: counting))
    monkeypatch.setitem(REGISTRY, "absent", Registration("absent", True, _unavailable))
    return counting


def _states(sample: Sample) -> dict[str, tuple[CollectorState, str | None]]:
    return {status.name: (status.state, status.reason) for status in sample.collectors}


def test_crashing_collector_is_reported_while_the_others_run(registered_collectors: Counting) -> None:
    only = {name: name in {"crashing", "counting", "absent"} for name in REGISTRY}
    with Sampler(CollectorContext(), only) as sampler:
        states = _states(sampler.sample())
        sampler.sample()
    assert states["crashing"] == (CollectorState.FAILED, "RuntimeError: boom")
    assert states["counting"] == (CollectorState.OK, None)
    assert states["absent"] == (CollectorState.UNAVAILABLE, "nothing here")
    assert registered_collectors.calls == 2 and registered_collectors.closed


def test_unknown_collector_and_broken_module_are_reported(registered_collectors: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler_module, "_import_failures", {"broken": "import failed: SyntaxError: bad"})
    sample = Sampler(CollectorContext(), dict.fromkeys(REGISTRY, False) | {"nosuch": True}).sample()
    assert _states(sample) == {
        "broken": (CollectorState.FAILED, "import failed: SyntaxError: bad"),
        "nosuch": (CollectorState.FAILED, "no such collector"),
    }


def test_real_collectors_are_registered_and_on_by_default() -> None:
    enabled = resolve_enabled()
    assert enabled["system"] and enabled["pressure"] and enabled["gpu"]


def test_simulation_collector_turns_the_real_ones_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "scenario", Registration("scenario", False, lambda context: Counting()))
    enabled = resolve_enabled({"scenario": True, "gpu": True})
    assert enabled["scenario"] and enabled["gpu"] and not enabled["system"]


@click.command()
@collector_options
def show(enabled: dict[str, bool], config: AgentConfig) -> None:
    context = config.collector_context()
    click.echo(f"{context.host_proc}|{context.node_name}|{','.join(context.lmcache_urls)}|{sorted(enabled.items())}|{config.interval}")


def test_command_line_wins_over_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "env-node")
    config = tmp_path / "agent.yaml"
    config.write_text("hostProc: /host/proc\nlmcache_urls: [http://a:1]\ncollectors: {gpu: false, pressure: false}\ninterval: 10s\n")
    result = CliRunner().invoke(show, ["--config", str(config), "--collector.gpu", "--lmcache-url", "http://b:2", "--lmcache-url", "http://c:3"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "/host/proc|env-node|http://b:2,http://c:3|[('gpu', True), ('pressure', False)]|10.0"


def test_every_setting_comes_from_the_environment_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults < YAML file < RESOURCE_AGENT_* environment < command line, for every field."""
    config = tmp_path / "agent.yaml"
    config.write_text("interval: 10s\nwindow: 10m\nlmcacheUrls: [http://file:1]\n")
    monkeypatch.setenv("RESOURCE_AGENT_INTERVAL", "1m30s")
    monkeypatch.setenv("RESOURCE_AGENT_LMCACHE_URLS", '["http://env:2"]')
    settings = AgentConfig.load(config)
    assert (settings.interval, settings.window, settings.lmcache_urls) == (90.0, 600.0, ["http://env:2"])
    assert AgentConfig.load(config, interval=2.0).interval == 2.0


def test_agent_accepts_go_durations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart documents `1m30s`; the agent used to refuse to start with it."""
    from resource_agent.cli.node_agent import agent

    seen: dict[str, float] = {}

    class Stop(Exception):
        pass

    def fake_make_server(node_agent: object, listen: object, security: object = None) -> object:
        seen["interval"] = node_agent.settings.interval_seconds  # type: ignore[attr-defined]
        seen["report"] = node_agent.settings.report_interval_seconds  # type: ignore[attr-defined]
        raise Stop

    monkeypatch.setattr("resource_agent.cli.node_agent.make_server", fake_make_server)
    result = CliRunner().invoke(agent, ["--interval", "1m30s", "--report-interval", "2m", "--no-collector.gpu", "--no-collector.lmcache"])
    assert isinstance(result.exception, Stop), result.output
    assert seen == {"interval": 90.0, "report": 120.0}


def test_a_report_heartbeat_shorter_than_the_report_interval_is_refused() -> None:
    """Summaries come once per report interval: a shorter heartbeat could never be kept."""
    from resource_agent.cli.node_agent import agent

    result = CliRunner().invoke(agent, ["--report-interval", "2m", "--report-heartbeat", "1m", "--no-collector.gpu"])
    assert result.exit_code != 0 and "report_heartbeat" in result.output and "report_interval" in result.output


def test_bad_config_file_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("interval: soon\nlmcacheUrls: 3\n")
    result = CliRunner().invoke(show, ["--config", str(config)])
    assert result.exit_code != 0
    assert "invalid config" in result.output and "interval" in result.output and "lmcacheUrls" in result.output


def test_collector_switches_exist_for_every_registered_collector() -> None:
    help_text = CliRunner().invoke(show, ["--help"]).output
    for name in ("system", "pressure", "gpu"):
        assert f"--collector.{name} / --no-collector.{name}" in help_text


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("5s", 5.0), ("5m", 300.0), ("1h", 3600.0), ("2", 2.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5s", "0s", "5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
