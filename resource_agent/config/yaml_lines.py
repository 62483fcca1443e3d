"""Where a key is in a YAML file: the line of every mapping key and list item, by path (from yaml's node marks).

Settings and policy errors name the field *and* its line (`config.yaml: line 7: interval: ...`), so
a person finds the bad key in a long file or a Helm-rendered ConfigMap at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

Path = tuple[str, ...]


def key_lines(text: str) -> dict[Path, int]:
    """1-based line of each key by its path; list items by index, and scalar items also by their value.

    Keys are as written (a caller that normalises keys maps them back). Text that is not YAML gives {}."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[Path, int] = {}

    def walk(node: yaml.Node, path: Path) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines.setdefault(child, key.start_mark.line + 1)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault((*path, str(index)), item.start_mark.line + 1)
                if isinstance(item, yaml.ScalarNode):
                    lines.setdefault((*path, str(item.value)), item.start_mark.line + 1)
                walk(item, (*path, str(index)))

    if root is not None:
        walk(root, ())
    return lines


def line_of(lines: Mapping[Path, int], parts: Sequence[str]) -> int | None:
    """The line of the longest prefix of `parts` that is in the file (a missing key: its parent's line)."""
    for end in range(len(parts), 0, -1):
        if (line := lines.get(tuple(parts[:end]))) is not None:
            return line
    return None


def yaml_error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML syntax error points at."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return None if mark is None else int(mark.line) + 1
