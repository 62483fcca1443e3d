"""The `resource-agent` command line: every click command, option set and terminal rendering.

Each subcommand is a module of this package, imported only when it runs, so
`collect` and `scan` never pay for kopf or the Kubernetes client. The
developer commands (`dev-cluster`, `demo`) live in `devtools/`, which only a
source checkout has.
"""

from __future__ import annotations

import importlib
import sys

import click

# httpx (the agent's LMCache and serving scrapers, the LLM SDKs) imports its own command line,
# `httpx._main`, and with it rich and pygments whenever they are installed: ~4 MiB of the agent's RSS. A None entry
# makes that optional import fail, which httpx handles (`httpx.main` then says to install httpx[cli]).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None in sys.modules: the import raises ImportError

# name -> "module:attribute" of a click command, imported on first use.
SUBCOMMANDS: dict[str, str] = {
    "collect": "resource_agent.cli.node_agent:collect",
    "agent": "resource_agent.cli.node_agent:agent",
    "scan": "resource_agent.cli.analysis:scan",
    "analyze": "resource_agent.cli.analysis:analyze",
    "operator": "resource_agent.cli.operator:operator",
    "crds": "resource_agent.cli.crds:crds",
    "dev-cluster": "devtools.devcluster.cli:dev_cluster",
    "demo": "devtools.demo.cli:demo",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when first invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
                raise  # a missing dependency inside the command, not the command's own module
            return _needs_source_checkout(cmd_name)
        command: click.Command = getattr(module, attribute)
        return command


def _needs_source_checkout(name: str) -> click.Command:
    @click.command(name, help="(developer tooling: needs a source checkout)")
    def command() -> None:
        raise click.ClickException(f"'{name}' is developer tooling and needs a source checkout of resource-agent")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resource-agent")
def main() -> None:
    """Measure GPU, host and KV-cache resources and recommend what to change."""
