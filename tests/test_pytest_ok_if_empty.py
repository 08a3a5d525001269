"""tools/pytest_ok_if_empty.py: a test step that collects nothing fails unless told it may."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "pytest_ok_if_empty.py"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args, "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_an_empty_collection_fails_by_default(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("x = 1\n")
    result = run(str(tmp_path), cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "checks nothing" in result.stderr


def test_an_empty_collection_passes_when_allowed(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("x = 1\n")
    result = run("--allow-empty", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0 and "allowed here" in result.stdout


def test_failures_and_passes_keep_pytest_codes(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_ok():\n    assert True\n")
    assert run("--allow-empty", str(tmp_path), cwd=tmp_path).returncode == 0
    (tmp_path / "test_one.py").write_text("def test_bad():\n    assert False\n")
    assert run("--allow-empty", str(tmp_path), cwd=tmp_path).returncode == 1
