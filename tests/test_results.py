"""seqtag.results: stored results reach a chapter wherever the package is installed."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import seqtag.results as results

ROOT = Path(__file__).resolve().parent.parent
STORED = sorted(p.stem for p in (ROOT / "book" / "results").glob("*.json"))


def test_the_installed_package_data_is_the_checkouts_folder():
    # The editable install (make venv) maps seqtag._results onto book/results: no fallback needed.
    module = importlib.import_module("seqtag._results")
    assert [Path(p).resolve() for p in module.__path__] == [(ROOT / "book" / "results").resolve()]
    assert results.folder().resolve() == (ROOT / "book" / "results").resolve()
    assert results.names() == STORED


@pytest.mark.parametrize("name", STORED)
def test_every_stored_file_loads_by_name_from_another_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as in Colab: no book/results beside the notebook
    data = results.load(name)
    assert data == json.loads((ROOT / "book" / "results" / f"{name}.json").read_text())
    assert results.load(f"{name}.json") == data
    assert results.path(name) == results.folder() / f"{name}.json"


def test_a_missing_file_names_the_file_and_what_exists(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "folder", lambda: tmp_path)
    (tmp_path / "there.json").write_text("{}")
    with pytest.raises(results.ResultsNotFoundError, match=r"nope\.json.*stored: there"):
        results.load("nope")
    with pytest.raises(FileNotFoundError):  # ResultsNotFoundError is a FileNotFoundError
        results.load("nope")


def test_bad_json_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "folder", lambda: tmp_path)
    (tmp_path / "bad.json").write_text('{\n "a": 1,\n}\n')
    with pytest.raises(ValueError, match=r"bad\.json:3: not valid JSON"):
        results.load("bad")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        results.load("list")


@pytest.mark.parametrize("name", ["", "../ewt_upos", "a/b", ".hidden"])
def test_names_are_file_names_only(name):
    with pytest.raises(ValueError, match="a results name is a file name"):
        results.path(name)


def test_a_checkout_without_install_falls_back_to_book_results(monkeypatch):
    monkeypatch.setattr(results, "PACKAGE", "seqtag._no_such_package")
    assert results.folder() == results.CHECKOUT


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_ordinary_git_install_ships_the_json(tmp_path):
    """As in Colab: `pip install "seqtag @ git+URL"` (not editable) must carry book/results/*.json."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "book/results/*.json"], capture_output=True, text=True, check=True
    ).stdout.split()
    # the results are the folder's own files (git's * also matches below it: best_runs/ holds run files)
    want = sorted(Path(p).stem for p in tracked if Path(p).parent == Path("book/results"))
    # Build the wheel from the committed tree with this environment's setuptools (no network), then
    # install it without dependencies into a fresh virtual environment.
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "-w", str(wheels), f"seqtag @ git+file://localhost{ROOT}"],
        check=True, capture_output=True, text=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check",
         "--no-deps", *map(str, wheels.glob("seqtag-*.whl"))],
        check=True, capture_output=True, text=True,
    )
    # seqtag's own dependencies (torch, numpy) come from this environment, AFTER the new one's
    # site-packages, so `seqtag` itself is the freshly installed copy.
    probe = (
        "import json, sys; sys.path.append(sys.argv[1]); import seqtag, seqtag.results as r; "
        "print(json.dumps([seqtag.__file__, str(r.folder()), r.names(), "
        "[bool(r.load(n)) for n in r.names()]]))"
    )
    out = subprocess.run(
        [str(py), "-c", probe, sysconfig.get_paths()["purelib"]],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    module_file, folder, names, loaded = json.loads(out.stdout)
    assert Path(module_file).is_relative_to(venv), module_file
    assert Path(folder) == Path(module_file).parent / "_results"
    assert names == want
    assert loaded and all(loaded)
