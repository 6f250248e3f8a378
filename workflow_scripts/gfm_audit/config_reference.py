"""config/README.md: the config schema as Markdown, a section per top-level key and a table row per key.

``python -m gfm_audit.config_reference`` writes it; tests/test_config_reference.py fails while the file
and config/config.schema.yaml disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import SCHEMA_PATH, load_schema

README_PATH = SCHEMA_PATH.parent / "README.md"
README_COMMAND = ".venv/bin/python -m gfm_audit.config_reference"


def _yaml_value(value: Any) -> str:
    """A value as it is written in a config file (flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _range(node: Mapping[str, Any]) -> str:
    """`` ≥ 1``, `` in (0, 1]``...: the bounds of a number, or nothing."""
    low = ("[", node["minimum"]) if "minimum" in node else ("(", node.get("exclusiveMinimum"))
    high = ("]", node["maximum"]) if "maximum" in node else (")", node.get("exclusiveMaximum"))
    if low[1] is not None and high[1] is not None:
        return f" in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low[1] is not None:
        return f" {'≥' if low[0] == '[' else '>'} {low[1]}"
    if high[1] is not None:
        return f" {'≤' if high[0] == ']' else '<'} {high[1]}"
    return ""


def _schema_type(node: Mapping[str, Any], plural: bool = False) -> str:
    """What a value of this schema node may be, in a few words (``plural`` for the items of a list)."""
    if "enum" in node:
        return ("values from " if plural else "one of ") + ", ".join(f"`{_yaml_value(v)}`" for v in node["enum"])
    types = node.get("type", "any")
    words = []
    for kind in [types] if isinstance(types, str) else types:
        noun = kind + ("s" if plural else "")
        if kind in ("integer", "number"):
            words.append(noun + _range(node))
        elif kind == "string":
            noun = ("non-empty " if node.get("minLength", 0) >= 1 else "") + noun
            words.append(noun + (f" matching `{node['pattern']}`" if "pattern" in node else ""))
        elif kind == "array":
            items = _schema_type(node["items"], plural=True) if "items" in node else "values"
            noun = ("non-empty " if node.get("minItems", 0) >= 1 else "") + noun.replace("array", "list")
            words.append(f"{noun} of {items}" + (", no repeats" if node.get("uniqueItems") else ""))
        elif kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
            names = node.get("propertyNames", {}).get("pattern")
            words.append("mapping of names" + (f" matching `{names}`" if names else "") + " to settings")
        else:
            words.append(noun)
    return " or ".join(words)


def _text(node: Mapping[str, Any]) -> str:
    return " ".join(str(node.get("description", "")).split())


def _schema_rows(key: str, node: Mapping[str, Any], required: bool, sections: list) -> list[tuple[str, ...]]:
    """``(key, type, default, description)`` for a schema node and every key under it, depth first.

    An object of fixed keys has no row of its own; one with a description becomes
    a section of its own instead, appended to ``sections`` as ``(key, node, required)``.
    A mapping of user-chosen names has a row, and its entries' keys read ``<name>``.
    """
    default = "required" if required else (f"`{_yaml_value(node['default'])}`" if "default" in node else "")
    rows = [] if "properties" in node else [(key, _schema_type(node), default, _text(node))]
    entry = node.get("additionalProperties")
    children = [
        (f"{key}.{name}", sub, name in node.get("required", [])) for name, sub in node.get("properties", {}).items()
    ]
    if isinstance(entry, Mapping):
        children += [
            (f"{key}.<name>.{name}", sub, name in entry.get("required", []))
            for name, sub in entry.get("properties", {}).items()
        ]
    for child in children:
        if "properties" in child[1] and _text(child[1]):
            sections.append(child)
        else:
            rows += _schema_rows(*child, sections)
    return rows


def _schema_section(key: str, node: Mapping[str, Any], required: bool, level: int) -> list[str]:
    """A heading, the description of an object or mapping, the table of its keys, then its sub-sections."""
    sections: list[tuple[str, Mapping[str, Any], bool]] = []
    rows = _schema_rows(key, node, required, sections)
    lines = ["", f"{'#' * level} `{key}`", ""]
    if "properties" in node or isinstance(node.get("additionalProperties"), Mapping):
        if _text(node) or required:
            lines += [" ".join(["Required."] * required + [_text(node)]).strip(), ""]
        if rows and rows[0][0] == key:  # a mapping: its description is the paragraph above
            rows[0] = (*rows[0][:3], "")
    if rows:
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for row in rows:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in (f"`{row[0]}`", *row[1:])) + " |")
    else:
        lines.pop()
    for section in sections:
        lines += _schema_section(*section, level + 1)
    return lines


def schema_markdown(schema: Mapping[str, Any] | None = None) -> str:
    """The schema as Markdown (config/README.md): a section per top-level key, a table row per key under it."""
    schema = load_schema() if schema is None else schema
    lines = [
        "<!-- Generated from config.schema.yaml: edit the schema, then run from the repository root",
        f"     {README_COMMAND}",
        "     tests/test_config_reference.py fails while the two disagree. -->",
        "",
        f"# {schema.get('title', 'Configuration')}",
        "",
        _text(schema),
        "",
        "Keys are written with dots for nesting (`windows.length` is `length:` under `windows:`); `<name>`",
        "stands for a name you choose. A default of `required` means the key must be given; no default means",
        "the key is unset unless given. The demo's values are in `demo.yaml`; `config.yaml` is the base of your own",
        "run and holds only these defaults.",
    ]
    for name, node in schema["properties"].items():
        lines += _schema_section(name, node, name in schema.get("required", []), 2)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m gfm_audit.config_reference [PATH]``: write the schema as Markdown to config/README.md (or PATH)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or args[:1] in (["-h"], ["--help"]):
        print("usage: python -m gfm_audit.config_reference [PATH]  (writes config/README.md unless PATH is given)")
        return 2
    path = Path(args[0]) if args else README_PATH
    path.write_text(schema_markdown())
    print(f"gfm-audit: wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
