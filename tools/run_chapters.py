"""Execute the book's chapters with papermill, in table-of-contents order, one line per chapter.

    python tools/run_chapters.py                     # execute in place (outputs stored in book/)
    python tools/run_chapters.py --only 03           # chapters whose file name contains '03'
    python tools/run_chapters.py --out /tmp/gpu -p device cuda   # elsewhere, with parameters
    python tools/run_chapters.py --strip-only        # only drop volatile metadata from stored chapters
    python tools/run_chapters.py --out /tmp/gpu -p device cuda --keep-going --record book/results/gpu_check.json

``--record`` writes one results file (with the machine record of the ``device`` parameter: GPU
name, CUDA, torch): per chapter ``ok``, the error when it failed, and its seconds.

Kernels draw with the inline backend (figures are stored as image/png) whatever MPLBACKEND the
caller has; a chapter whose drawing cell stored no picture fails. Written notebooks keep their
outputs but lose the metadata that changes on every run (papermill timings, execution timestamps),
so a re-run shows in `git diff` only what changed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The backend ipykernel uses by default; an inherited MPLBACKEND=Agg would store no figure at all.
INLINE = "module://matplotlib_inline.backend_inline"
# ipykernel >= 7 warns on every start that TCP is unencrypted; the kernel only listens on 127.0.0.1.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
# A cell that draws: the stop hook's patterns, figure constructors, and any seqtag.plots helper.
DRAWS = re.compile(
    r"plt\.show\(|\bplot_\w+\(|\bimshow\(|\.savefig\(|\bplt\.(subplots|figure)\(|\bplots\.\w+\("
)
# Cell and notebook metadata that papermill and nbclient rewrite on every run.
VOLATILE_CELL_KEYS = ("papermill", "execution")
VOLATILE_NB_KEYS = ("papermill",)


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


def kernel_env() -> None:
    """Environment every chapter kernel inherits: inline figures, no progress bars."""
    os.environ["MPLBACKEND"] = INLINE
    os.environ.setdefault("TQDM_DISABLE", "1")


def missing_pictures(nb: dict) -> list[int]:
    """Indexes of code cells that draw (see DRAWS) but stored no image output."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or not DRAWS.search("".join(cell["source"])):
            continue
        if not any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {})):
            out.append(i)
    return out


def merge_streams(cell: dict) -> bool:
    """Join consecutive stream outputs of one stream (stdout/stderr) into one; True if it changed.

    A kernel flushes `print` output whenever it likes, so the same cell can store one stream
    output on one run and two on the next: the notebook would change without its text changing.
    """
    outputs = cell.get("outputs", [])
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (prev is not None and out.get("output_type") == "stream" == prev.get("output_type")
                and out.get("name") == prev.get("name")):
            text = "".join(prev["text"]) + "".join(out["text"])
            prev["text"] = text
            continue
        merged.append(out)
    if len(merged) == len(outputs):
        return False
    cell["outputs"] = merged
    return True


def strip_volatile(nb: dict) -> bool:
    """Drop run-specific metadata in place (outputs and execution counts stay); True if it changed."""
    changed = False
    for key in VOLATILE_NB_KEYS:
        changed |= nb.get("metadata", {}).pop(key, None) is not None
    for cell in nb["cells"]:
        changed |= merge_streams(cell)
        meta = cell.setdefault("metadata", {})
        for key in VOLATILE_CELL_KEYS:
            changed |= meta.pop(key, None) is not None
        if meta.get("tags") == []:
            del meta["tags"]
            changed = True
    return changed


def write_clean(path: Path) -> bool:
    """Strip the volatile metadata of the notebook at `path` and rewrite it (nbformat's layout)."""
    nb = nbformat.read(path, as_version=4)
    changed = strip_volatile(nb)
    text = nbformat.writes(nb) + "\n"
    if text != path.read_text(encoding="utf-8"):
        path.write_text(text, encoding="utf-8")
        return True
    return changed


def execute(nb: Path, target: Path, params: dict, cwd: Path, kernel: str = "python3") -> None:
    """Run `nb` with papermill into `target`, then strip its volatile metadata.

    Raises:
        papermill.PapermillExecutionError: a cell failed (the partial notebook is still written).
        RuntimeError: a drawing cell stored no picture.
    """
    import papermill as pm

    kernel_env()
    try:
        pm.execute_notebook(
            str(nb), str(target), parameters=params, cwd=str(cwd), kernel_name=kernel,
            progress_bar=False, log_output=False, extra_arguments=QUIET_KERNEL,
        )
    finally:
        if target.exists():
            write_clean(target)
    missing = missing_pictures(nbformat.read(target, as_version=4))
    if missing:
        raise RuntimeError(f"{target.name}: cells {missing} draw but stored no picture (matplotlib backend?)")


def record_run(path: Path, rows: list[dict], params: dict, total: float) -> None:
    """Write `rows` (one per chapter: name, ok, error, seconds) as a results file at `path`."""
    sys.path.insert(0, str(ROOT))
    from seqtag.io import save_results

    device = params.get("device", "cpu")
    save_results(path, {
        "command": "python tools/run_chapters.py " + " ".join(sys.argv[1:]),
        "parameters": params, "chapters": rows, "ok": all(r["ok"] for r in rows), "seconds": total,
    }, schedule=f"every chapter through papermill, parameters {params or 'none'}", device=device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write executed notebooks here instead of in place")
    ap.add_argument("--only", action="append", default=[], help="substring of chapter file names")
    ap.add_argument("--keep-going", action="store_true", help="run the other chapters after a failure")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--strip-only", action="store_true", help="only strip volatile metadata, run nothing")
    ap.add_argument("--record", type=Path, help="also write a results file: per chapter ok/error/seconds, the machine")
    args = ap.parse_args()
    params = {k: parse_value(v) for k, v in args.p}
    todo = [c for c in chapters() if not args.only or any(s in c.name for s in args.only)]
    if not todo:
        print("no chapter matched", file=sys.stderr)
        return 1
    if args.strip_only:
        changed = [nb.name for nb in todo if write_clean(nb)]
        print(f"stripped volatile metadata from {len(changed)} of {len(todo)} chapter(s): {changed or 'none'}")
        return 0
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    failed: list[str] = []
    rows: list[dict] = []
    for nb in todo:
        target = (args.out / nb.name) if args.out else nb
        start = time.perf_counter()
        print(f"{nb.relative_to(ROOT)} ...", end=" ", flush=True)
        try:
            execute(nb, target, params, cwd=nb.parent)
        except Exception as exc:  # a failed cell (PapermillExecutionError) or a missing picture
            print(f"FAILED after {time.perf_counter() - start:.0f} s")
            where = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else str(exc)
            print(f"  {where}", file=sys.stderr, flush=True)
            failed.append(nb.name)
            rows.append({"chapter": nb.name, "ok": False, "error": where, "seconds": time.perf_counter() - start})
            if not args.keep_going:
                break
            continue
        rows.append({"chapter": nb.name, "ok": True, "error": None, "seconds": time.perf_counter() - start})
        print(f"{time.perf_counter() - start:.0f} s", flush=True)
    if args.record:
        record_run(args.record, rows, params, time.perf_counter() - total)
    if failed and not args.keep_going:
        return 1
    print(f"{len(todo)} chapter(s) in {time.perf_counter() - total:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
