"""config/README.md is the config schema rendered as Markdown, and stays so."""

import pytest
from gfm_audit.config_reference import README_COMMAND, README_PATH, main, schema_markdown


def test_config_readme_is_the_current_schema_rendered():
    expected = schema_markdown()
    committed = README_PATH.read_text() if README_PATH.exists() else ""
    if committed != expected:
        old, new = committed.splitlines(), expected.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
        pytest.fail(
            f"config/README.md is not the rendering of config/config.schema.yaml (first difference at line "
            f"{line + 1}); regenerate it from the repository root with: {README_COMMAND}"
        )


def test_schema_markdown_has_a_section_per_top_level_key_and_a_row_per_key():
    schema = {
        "title": "T",
        "description": "D.",
        "required": ["a"],
        "properties": {
            "a": {
                "type": "object",
                "description": "Section a.",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "minLength": 1, "description": "A | B."},
                    "n": {"type": "integer", "minimum": 1, "default": 3},
                    "p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5},
                    "mode": {"enum": ["x", True], "default": "x"},
                    "opt": {"type": ["string", "null"], "default": None},
                    "inner": {"type": "object", "default": {}, "properties": {"k": {"type": "boolean"}}},
                    "sub": {"type": "object", "description": "Sub.", "properties": {"s": {"type": "integer"}}},
                },
            },
            "m": {
                "type": "object",
                "default": {},
                "propertyNames": {"pattern": "^[a-z]+$"},
                "additionalProperties": {
                    "type": "object",
                    "properties": {"xs": {"type": "array", "items": {"type": "number"}, "default": [1, 2]}},
                },
            },
            "t": {"type": ["string", "null"], "default": None, "description": "Scalar."},
        },
    }
    text = schema_markdown(schema)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["# T", "## `a`", "### `a.sub`", "## `m`", "## `t`"]
    assert "Required. Section a." in text
    assert "| `a.path` | non-empty string | required | A \\| B. |" in text
    assert "| `a.n` | integer ≥ 1 | `3` |  |" in text
    assert "| `a.p` | number in (0, 1] | `0.5` |  |" in text
    assert "| `a.mode` | one of `x`, `true` | `x` |  |" in text
    assert "| `a.opt` | string or null | `null` |  |" in text
    assert "| `a.inner.k` | boolean |  |  |" in text
    assert "| `a.sub.s` | integer |  |  |" in text.split("### `a.sub`")[1]
    assert "| `m` | mapping of names matching `^[a-z]+$` to settings | `{}` |  |" in text
    assert "| `m.<name>.xs` | list of numbers | `[1, 2]` |  |" in text
    assert "| `t` | string or null | `null` | Scalar. |" in text


def test_main_writes_the_rendering_to_the_given_path(tmp_path, capsys):
    out = tmp_path / "README.md"
    assert main([str(out)]) == 0
    assert out.read_text() == schema_markdown()
    assert str(out) in capsys.readouterr().out
    assert main([str(out), "extra"]) == 2
