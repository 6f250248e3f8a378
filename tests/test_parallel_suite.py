"""make test's parallel run: the modules that share one workflow run go to one xdist worker, every module whole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import MODEL_RUN_MODULES, _worker_group

TESTS = Path(__file__).resolve().parent

RECORDING_MODULE = """
import json, os, pathlib

def _record(name):
    out = pathlib.Path(os.environ["WORKER_LOG"])
    with out.open("a") as f:
        f.write(json.dumps([__name__, name, os.environ.get("PYTEST_XDIST_WORKER", "main")]) + "\\n")

def test_one():
    _record("one")

def test_two():
    _record("two")

def test_three():
    _record("three")
"""


def test_the_model_run_modules_form_one_unit_and_other_modules_their_own():
    units = {_worker_group(f"tests/{name}.py::test_x") for name in MODEL_RUN_MODULES}
    assert units == {"model_run"}
    assert _worker_group("tests/test_docs.py::test_x[a::b]") == "tests/test_docs.py"


def test_make_tests_worker_options_keep_each_unit_on_one_worker(tmp_path):
    # A copy of this suite's conftest beside stand-in modules of the same names: the scheduler is the one make test
    # uses, on modules that only record which worker ran each test.
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    modules = [*sorted(MODEL_RUN_MODULES), "test_alpha", "test_beta", "test_gamma"]
    for name in modules:
        (tmp_path / f"{name}.py").write_text(RECORDING_MODULE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    log = tmp_path / "workers.jsonl"
    makefile = (TESTS.parent / "Makefile").read_text()
    options = makefile.split("$(BIN)/pytest -n $(TEST_WORKERS) ", 1)[1].split("\n", 1)[0].split()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", *options, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "WORKER_LOG": str(log), "PYTHONPATH": str(TESTS.parent / "workflow_scripts")},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 3 * len(modules)
    workers = {}
    for module, _, worker in runs:
        workers.setdefault(module, set()).add(worker)
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len({next(iter(workers[name])) for name in MODEL_RUN_MODULES}) == 1, workers
    # Both workers got work: the run was parallel.
    assert {w for ws in workers.values() for w in ws} == {"gw0", "gw1"}
