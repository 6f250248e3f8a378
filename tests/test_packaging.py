"""The pins in pyproject.toml, requirements.lock and envs/*.yaml agree."""

import re
import tomllib

import yaml
from conftest import REPO


def _pins(lines):
    return {
        m.group(1).lower(): m.group(2) for line in lines if (m := re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s;]+)", line))
    }


def test_lock_file_holds_every_pyproject_pin_at_the_same_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    locked = _pins((REPO / "requirements.lock").read_text().splitlines())
    assert wanted, "pyproject.toml has no exact pins"
    assert {k: locked.get(k) for k in wanted} == wanted


def test_conda_envs_pin_the_same_versions_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"])
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        deps = yaml.safe_load(env.read_text())["dependencies"]
        pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        pinned = _pins(pip)
        assert pinned, f"{env.name} pins nothing"
        assert {k: wanted.get(k) for k in pinned} == pinned, env.name


def test_every_rule_but_all_has_log_conda_threads_and_resources():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m.start() for m in re.finditer(r"^rule \w+:", text, re.M)] + [len(text)]
        for begin, end in zip(starts, starts[1:], strict=False):
            block = text[begin:end]
            for directive in ("log:", "conda:", "threads:", "resources:"):
                assert f"\n    {directive}" in block, f"{smk.name}: {block.splitlines()[0]} lacks {directive}"
