"""The pins in pyproject.toml, requirements.lock and envs/*.yaml agree; the code keeps its agreed shape."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
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


def test_every_rule_but_all_has_log_benchmark_conda_threads_and_resources():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m.start() for m in re.finditer(r"^rule \w+:", text, re.M)] + [len(text)]
        for begin, end in zip(starts, starts[1:], strict=False):
            block = text[begin:end]
            for directive in ("log:", "benchmark:", "conda:", "threads:", "resources:"):
                assert f"\n    {directive}" in block, f"{smk.name}: {block.splitlines()[0]} lacks {directive}"


SCRIPTS = REPO / "workflow_scripts" / "scripts"
PARTS = r"privacy|privacy\.study|robustness\.ga|robustness\.fimba|report"
STAGE_IMPORT = re.compile(rf"^from gfm_audit\.({PARTS})\.stages import (\w+)  # noqa: E402$", re.M)
RULE_SCRIPT = re.compile(r"^rule (\w+):(?:(?!\nrule ).)*?\n    script:\n        \"([^\"]+)\"", re.M | re.S)


def test_every_rule_script_is_run_rule_of_its_stage_function():
    """Rule X runs scripts/X.py, whose code is only ``run_rule(snakemake, X_rule)`` from its part's stages.py."""
    rules = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        rules.update(RULE_SCRIPT.findall(smk.read_text()))
    assert rules == {s.stem: f"../workflow_scripts/scripts/{s.name}" for s in SCRIPTS.glob("*.py")}
    shapes = {}
    for script in sorted(SCRIPTS.glob("*.py")):
        text = script.read_text()
        assert (ast.get_docstring(ast.parse(text)) or "").startswith(f"Rule {script.stem}: "), script.name
        ((half, stage),) = STAGE_IMPORT.findall(text)
        assert stage == f"{script.stem}_rule", script.name
        function = getattr(importlib.import_module(f"gfm_audit.{half}.stages"), stage, None)
        assert function is not None, f"{script.name}: gfm_audit.{half}.stages has no {stage}"
        assert list(inspect.signature(function).parameters) == ["job"], stage
        code = text.split('"""', 2)[2].replace(f"{half}.stages import {stage}", "HALF.stages import STAGE")
        shapes[script.name] = code.replace(f"run_rule(snakemake, {stage})", "run_rule(snakemake, STAGE)")
    first = shapes["score_shard.py"]
    assert "run_rule(snakemake, STAGE)" in first
    assert {name for name, code in shapes.items() if code != first} == set()


def test_stages_modules_load_no_torch_and_no_matplotlib():
    """Rules run in different conda envs (envs/*.yaml): a stage function imports its heavy libraries itself."""
    modules = [
        "gfm_audit.privacy.stages",
        "gfm_audit.privacy.study.stages",
        "gfm_audit.robustness.ga.stages",
        "gfm_audit.robustness.fimba.stages",
        "gfm_audit.report.stages",
    ]
    heavy = ["torch", "transformers", "matplotlib"]
    code = f"import sys; import {', '.join(modules)}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO / "workflow_scripts", capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _public_functions():
    """``(qualified name, function)`` of every public function and method in gfm_audit (dataclass fields aside)."""
    import gfm_audit

    for info in pkgutil.walk_packages(gfm_audit.__path__, "gfm_audit."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and (attr != "__init__" or dataclasses.is_dataclass(obj)):
                        continue
                    function = getattr(member, "__func__", member)  # classmethod, staticmethod
                    if inspect.isfunction(function):
                        yield f"{module.__name__}.{name}.{attr}", function


def test_no_public_function_takes_more_than_three_positional_parameters():
    """Past three, parameters are keyword-only (``*``), so that calls name what they pass."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    too_many = {}
    functions = list(_public_functions())
    for name, function in functions:
        params = [p.name for p in inspect.signature(function).parameters.values() if p.kind in positional]
        params = params[1:] if params[:1] in (["self"], ["cls"]) else params
        if len(params) > 3:
            too_many[name] = params
    assert len(functions) > 100  # the walk found the package
    assert too_many == {}
