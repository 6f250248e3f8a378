"""Reading the small JSON files of a downloaded checkpoint folder (tokenizer_config.json, special_tokens_map.json)."""

from __future__ import annotations

import json
import pathlib

from ..errors import InputError


def read_json(path: pathlib.Path) -> dict:
    """The file's JSON object; ``{}`` when the file is absent (these files are optional); a malformed file stops
    in one line naming it."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); restore the file from the hub"
        ) from None
