"""The `resource-agent` command line.

Each subcommand lives beside the code it drives and is imported only when it
runs, so `collect` and `scan` never pay for kopf or the Kubernetes client.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command, imported on first use.
SUBCOMMANDS: dict[str, str] = {
    "collect": "resource_agent.node_agent.commands:collect",
    "agent": "resource_agent.node_agent.commands:agent",
    "scan": "resource_agent.analysis.commands:scan",
    "analyze": "resource_agent.analysis.commands:analyze",
    "operator": "resource_agent.operator.commands:operator",
    "crds": "resource_agent.api.commands:crds",
    "dev-cluster": "resource_agent.devcluster.commands:dev_cluster",
    "demo": "resource_agent.demo.command:demo",
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
            if exc.name != module_name:
                raise
            return _unavailable(cmd_name)
        return getattr(module, attribute)


def _unavailable(name: str) -> click.Command:
    @click.command(name, help="(not available in this build)")
    def command() -> None:
        raise click.ClickException(f"'{name}' is not available in this build")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resource-agent")
def main() -> None:
    """Measure GPU, host and KV-cache resources and recommend what to change."""
