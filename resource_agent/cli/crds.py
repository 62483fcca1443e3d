"""`resource-agent crds`: print or write the CRDs generated from the models."""

from __future__ import annotations

from pathlib import Path

import click

from resource_agent.api.crd import all_crds, render


@click.command("crds")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Write one file per CRD here.")
def crds(output_dir: Path | None) -> None:
    """Print the CustomResourceDefinitions (or write them with --output-dir)."""
    documents = {name: render(crd) for name, crd in all_crds().items()}
    if output_dir is None:
        click.echo("---\n".join(documents.values()), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (output_dir / name).write_text(text)
        click.echo(f"wrote {output_dir / name}")
