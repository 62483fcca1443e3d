"""`resource-agent crds`: print or write the CRDs generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from resource_agent.api.crd import all_crds, render
from resource_agent.cli.options import output_option


def _table(crds: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "short names", "version", "scope", title="CustomResourceDefinitions")
    for crd in crds.values():
        spec = crd["spec"]
        names = spec["names"]
        table.add_row(crd["metadata"]["name"], names["kind"], ", ".join(names["shortNames"]), spec["versions"][0]["name"], spec["scope"])
    Console().print(table)


@click.command("crds")
@output_option(("yaml", "json", "table"), default="yaml")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Write one file per CRD here (yaml or json).")
def crds(output_format: str, output_dir: Path | None) -> None:
    """Print the CustomResourceDefinitions (or write them with --output-dir)."""
    generated = all_crds()
    if output_format == "table":
        if output_dir is not None:
            raise click.UsageError("--output-dir writes yaml or json, not a table")
        _table(generated)
        return
    if output_format == "json":
        documents = {Path(name).with_suffix(".json").name: json.dumps(crd, indent=2) + "\n" for name, crd in generated.items()}
    else:
        documents = {name: render(crd) for name, crd in generated.items()}
    if output_dir is None:
        if output_format == "json":
            items = [json.loads(text) for text in documents.values()]
            click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        else:
            click.echo("---\n".join(documents.values()), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (output_dir / name).write_text(text)
        click.echo(f"wrote {output_dir / name}")
