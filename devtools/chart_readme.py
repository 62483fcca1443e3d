"""Generate charts/resource-agent/README.md from values.yaml's helm-docs comments (`# -- text`).

    python -m devtools.chart_readme           # write the README
    python -m devtools.chart_readme --check   # exit 1 when the committed README differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "resource-agent"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+|\"[^\"]+\"):(?: |$)")
HEADER = """# resource-agent

{description}

Generated from `values.yaml` by `python -m devtools.chart_readme`; do not edit
(a test fails when it drifts). Installation, RBAC, security and monitoring:
[docs/helm.md](../../docs/helm.md); alerts: [docs/alerts.md](../../docs/alerts.md).

```sh
helm install resource-agent charts/resource-agent -n resource-agent --create-namespace
```

The agent runs on GPU nodes recognised by any of the common GPU labels
(`agent.gpuNodeAffinity`); `--set agent.gpuNodeAffinity.enabled=false` runs it on
every node.

## Values

| Key | Default | Description |
|---|---|---|
"""


def documented(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) for every key with a `# --` comment, in file order."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# -- "):
            pending = [stripped[5:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("-"):
            if stripped:
                pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match["key"].strip('"')
        stack.append((indent, key))
        if pending is not None:
            out.append((".".join(k for _, k in stack), " ".join(pending)))
            pending = None
    return out


def _lookup(values: Any, dotted: str) -> Any:
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def render() -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows = []
    for key, description in documented(text):
        default = json.dumps(_lookup(values, key))
        cell = default if len(default) <= 60 else "see values.yaml"
        escaped = description.replace("|", "\\|")
        rows.append(f"| `{key}` | `{cell}` | {escaped} |")
    return HEADER.format(description=chart.get("description", "")) + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    path = CHART / "README.md"
    content = render()
    if path.exists() and path.read_text() == content:
        return 0
    if args.check:
        print(f"stale: {path.relative_to(ROOT)} (run python -m devtools.chart_readme)", file=sys.stderr)
        return 1
    path.write_text(content)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
