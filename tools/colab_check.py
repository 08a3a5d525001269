"""Execute chapters as Colab does, one line per chapter with its time.

    python tools/colab_check.py                 # every chapter (make colab-check)
    python tools/colab_check.py --only 01 --only 12 --out /tmp/colab   # some, keeping the notebooks

What "as Colab does" means here:
- a base environment (.colab/base, built once) holds only what Colab preinstalls:
  requirements-colab.txt, constrained by requirements.txt (torch stays the pinned CPU build);
- each chapter gets a FRESH environment on top of it (a new Colab runtime per notebook), so an extra
  that one chapter installed never hides another chapter's missing extra;
- `google.colab` is importable and imported at start-up (a stand-in module), so the install cell runs;
- the install cell installs seqtag built once from `git+file://localhost/<this checkout>` (the
  COMMITTED tree, built as Colab's pip builds it; SEQTAG_INSTALL_URL overrides) with the extras the
  cell names; seqtag's own dependencies come from the package registry;
- the working directory is an empty temporary folder, not book/: no results/ folder beside the chapter;
- each chapter runs with papermill at its default (quick) parameters; corpora come from SEQTAG_DATA
  when set (Colab itself downloads them with pooch).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_chapters  # noqa: E402

ROOT = run_chapters.ROOT
BASE = ROOT / ".colab" / "base"
REQUIREMENTS = ROOT / "requirements-colab.txt"
FAKE_COLAB = '"""Stand-in for Colab\'s google.colab (tools/colab_check.py): chapters only test that it is there."""\n'


def _site_packages(venv: Path) -> Path:
    rel = Path(sysconfig.get_path("purelib", vars={"base": "", "platbase": ""}).lstrip("/"))
    return venv / rel


def base_env(python: str = sys.executable) -> Path:
    """Build (or reuse) the base environment of Colab's preinstalled packages; its site-packages."""
    want = hashlib.sha256(REQUIREMENTS.read_bytes() + (ROOT / "requirements.txt").read_bytes()).hexdigest()
    stamp = BASE / ".requirements.sha256"
    if not (stamp.exists() and stamp.read_text() == want):
        print(f"building {BASE.relative_to(ROOT)} from {REQUIREMENTS.name} ...", flush=True)
        subprocess.run([python, "-m", "venv", "--clear", str(BASE)], check=True)
        subprocess.run(
            [str(BASE / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-r", str(REQUIREMENTS), "-c", str(ROOT / "requirements.txt")],
            check=True,
        )
        stamp.write_text(want)
    fake = BASE / "fake" / "google" / "colab"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(FAKE_COLAB)
    return _site_packages(BASE)


def chapter_env(where: Path, base_site: Path, name: str, jupyter: Path) -> None:
    """A fresh environment `where` that sees the base packages and google.colab, and its kernel `name`."""
    subprocess.run([str(BASE / "bin" / "python"), "-m", "venv", "--without-pip", str(where)], check=True)
    site = _site_packages(where)
    # Path lines first (the base packages, pip included, and the stand-in), then the start-up import.
    (site / "zz_colab.pth").write_text(f"{base_site}\n{BASE / 'fake'}\nimport google.colab\n")
    spec = jupyter / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(where / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Colab-like ({name})", "language": "python",
    }))


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send this process's stderr (and so the kernel's, which inherits it: pip's messages) to `path`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def wheel_from_git(folder: Path) -> str:
    """Build seqtag's wheel once from `git+file://localhost/<checkout>` as Colab's pip would (isolated
    build of the committed tree); every chapter's install cell then installs that wheel, with its extras."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(BASE / "bin" / "python"), "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", str(folder), f"seqtag @ git+file://localhost{ROOT}"],
        stderr=subprocess.PIPE, text=True,
    )
    if done.returncode != 0:
        tail = [ln for ln in done.stderr.splitlines() if "is ignored: it is neither" not in ln][-15:]
        raise SystemExit("colab-check: building seqtag from git failed:\n" + "\n".join(tail))
    wheel = next(folder.glob("seqtag-*.whl"))
    print(f"seqtag wheel built from git+file://localhost{ROOT} in {time.perf_counter() - start:.0f} s")
    return wheel.as_uri()


def uncommitted() -> list[str]:
    """Files the git install will not carry: uncommitted changes in the package or its data."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "seqtag", "book/results", "pyproject.toml",
         "setup.py"], capture_output=True, text=True,
    )
    return [line[3:] for line in out.stdout.splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="substring of chapter file names")
    ap.add_argument("--out", type=Path, help="keep the executed notebooks here")
    ap.add_argument("--keep-going", action="store_true", help="run the other chapters after a failure")
    ap.add_argument("--book", type=Path, help="run the chapters of this folder (copies) instead of book/")
    args = ap.parse_args()
    todo = [c for c in run_chapters.chapters() if not args.only or any(s in c.name for s in args.only)]
    if args.book:
        todo = [args.book.resolve() / c.name for c in todo]
    if not todo:
        print("no chapter matched", file=sys.stderr)
        return 1
    dirty = uncommitted()
    if dirty:
        print(f"note: the install cell installs the committed tree; not in it: {' '.join(dirty[:6])}")
    base_site = base_env()
    total = time.perf_counter()
    failed = []
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        tmp = Path(tmp)
        url = os.environ.get("SEQTAG_INSTALL_URL") or wheel_from_git(tmp / "wheel")
        jupyter = tmp / "jupyter"
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter), os.environ.get("JUPYTER_PATH")]))
        os.environ["SEQTAG_INSTALL_URL"] = url
        os.environ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
            os.environ.pop(key, None)
        out = args.out or tmp / "out"
        out.mkdir(parents=True, exist_ok=True)
        for nb in todo:
            name = f"colab-{nb.stem.split('_')[0]}"
            start = time.perf_counter()
            print(f"{nb.relative_to(ROOT) if nb.is_relative_to(ROOT) else nb} (Colab-like) ...", end=" ", flush=True)
            work = tmp / nb.stem
            work.mkdir()
            log = out / f"{nb.stem}.stderr.log"
            try:
                with stderr_to(log):
                    chapter_env(tmp / f"venv-{nb.stem}", base_site, name, jupyter)
                    run_chapters.execute(nb, out / nb.name, {}, cwd=work, kernel=name)
            except Exception as exc:  # a failed cell (PapermillExecutionError), a missing picture, a failed venv
                print(f"FAILED after {time.perf_counter() - start:.0f} s")
                where = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else str(exc)
                tail = [ln for ln in log.read_text(errors="replace").splitlines()
                        if ln.strip() and "is ignored: it is neither" not in ln]
                print(f"  {where}", *[f"  | {ln}" for ln in tail[-15:]], sep="\n", file=sys.stderr, flush=True)
                failed.append(nb.name)
                if not args.keep_going:
                    break
                continue
            print(f"{time.perf_counter() - start:.0f} s", flush=True)
    print(f"{len(todo)} chapter(s) Colab-like in {time.perf_counter() - total:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
