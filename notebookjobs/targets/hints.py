"""How to allow a target: the exact line to add to whitelist.yaml, in the file's own style.

Settings say only *which* targets are allowed, not how the file writes them, so this reads the
YAML node tree (``yaml.compose`` keeps styles and positions) to match what is there: a block
list gets ``- member``, a block mapping gets ``member: {}``, and a flow collection such as
``[a, b]`` gets its line rewritten with the member appended (overrides kept as written).
"""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_OWNER_COLUMN = 2  # indentation of owners under allowed_jobs when the file shows none


def _find(text: str, owner: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(the allowed_jobs node, the owner's value node) in the YAML text; None where missing."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return None, None
    if not isinstance(root, yaml.MappingNode):
        return None, None
    allowed = next((v for k, v in root.value if k.value == "allowed_jobs"), None)
    if not isinstance(allowed, yaml.MappingNode):
        return None, None
    value = next((v for k, v in allowed.value if k.value == owner), None)
    return allowed, value


def _owner_indent(allowed: yaml.Node | None) -> str:
    if isinstance(allowed, yaml.MappingNode) and allowed.value:
        return " " * allowed.value[0][0].start_mark.column
    return " " * DEFAULT_OWNER_COLUMN


def allow_hint(target: str, whitelist_path: Path, text: str | None = None) -> str:
    """What to write in whitelist.yaml so ``target`` may run: an instruction, then the line.
    ``text``: the file's text, when the caller has read it already."""
    owner, _, member = target.rpartition(".")
    if text is None:
        try:
            text = whitelist_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    allowed, node = _find(text, owner)
    name = whitelist_path.name
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        # The item's own column is after "- "; the dash starts the line's indentation.
        line = text.splitlines()[node.value[0].start_mark.line]
        indent = line[:len(line) - len(line.lstrip())]
        return f"add under allowed_jobs > {owner} in {name}:\n{indent}- {member}"
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        indent = " " * node.value[0][0].start_mark.column
        return f"add under allowed_jobs > {owner} in {name}:\n{indent}{member}: {{}}"
    if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and node.flow_style:
        written = text[node.start_mark.index:node.end_mark.index]
        inner = written[1:-1].strip()
        entry = member if isinstance(node, yaml.SequenceNode) else f"{member}: {{}}"
        rewritten = written[0] + (f"{inner}, {entry}" if inner else entry) + written[-1]
        return (f"change the {owner} line under allowed_jobs in {name} to:\n"
                f"{_owner_indent(allowed)}{owner}: {rewritten}")
    if node is not None:  # the owner is there with an empty value
        return (f"change the {owner} line under allowed_jobs in {name} to:\n"
                f"{_owner_indent(allowed)}{owner}: [{member}]")
    return f"add under allowed_jobs in {name}:\n{_owner_indent(allowed)}{owner}: [{member}]"
