"""Execute the book's chapters with papermill, in table-of-contents order, one line per chapter.

    python tools/run_chapters.py                     # execute in place (outputs stored in book/)
    python tools/run_chapters.py --only 03           # chapters whose file name contains '03'
    python tools/run_chapters.py --out /tmp/gpu -p device cuda   # elsewhere, with parameters
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import papermill as pm
import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files() -> list[str]:
    """Every file listed in _toc.yml (without suffix), in order, the root included."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return [str(toc["root"]), *files]


def chapters() -> list[Path]:
    """Notebook chapters listed in _toc.yml, in order (markdown pages are skipped)."""
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def parse_value(text: str) -> object:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else stays a string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write executed notebooks here instead of in place")
    ap.add_argument("--only", action="append", default=[], help="substring of chapter file names")
    ap.add_argument("--keep-going", action="store_true", help="run the other chapters after a failure")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = ap.parse_args()
    params = {k: parse_value(v) for k, v in args.p}
    todo = [c for c in chapters() if not args.only or any(s in c.name for s in args.only)]
    if not todo:
        print("no chapter matched", file=sys.stderr)
        return 1
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")
    total = time.perf_counter()
    failed = []
    for nb in todo:
        target = (args.out / nb.name) if args.out else nb
        start = time.perf_counter()
        print(f"{nb.relative_to(ROOT)} ...", end=" ", flush=True)
        try:
            pm.execute_notebook(
                str(nb), str(target), parameters=params, cwd=str(nb.parent),
                kernel_name="python3", progress_bar=False,
            )
        except pm.PapermillExecutionError as exc:
            print(f"FAILED after {time.perf_counter() - start:.0f} s")
            print(f"  cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr, flush=True)
            failed.append(nb.name)
            if not args.keep_going:
                return 1
            continue
        print(f"{time.perf_counter() - start:.0f} s", flush=True)
    print(f"{len(todo)} chapter(s) in {time.perf_counter() - total:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
