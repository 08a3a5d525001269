"""The book's own rules, checked on the stored notebooks (see book/README.md)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import run_chapters  # noqa: E402
import sync_install_cells  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _code(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_chapter_in_the_toc_exists_and_every_notebook_is_listed():
    listed = run_chapters.toc_files()
    missing = [f for f in listed if not any((ROOT / f"{f}{s}").exists() for s in (".ipynb", ".md"))]
    assert missing == [], f"_toc.yml lists files that do not exist: {missing}"
    unlisted = {p.name for p in CHAPTERS} - {p.name for p in run_chapters.chapters()}
    assert unlisted == set(), f"notebooks not in _toc.yml: {unlisted}"


def test_install_cells_are_in_sync_with_the_chapters_and_config():
    # extras derived from each chapter, the URL of _config.yml, the hide tags (make sync fixes)
    assert sync_install_cells.problems(fix=False) == []


# --------------------------------------------------------------------------------- pictures (17.1)
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_drawing_cell_stored_a_picture(path: Path):
    nb = json.loads(path.read_text())
    missing = run_chapters.missing_pictures(nb)
    assert missing == [], (
        f"{path.name}: cells {missing} draw but stored no image/png; re-execute the chapter with "
        "`python tools/run_chapters.py --only {path.name[:2]}` (kernels draw inline there)"
    )


def test_the_picture_check_can_fail():
    def cell(src: str, outputs: list) -> dict:
        return {"cell_type": "code", "source": src, "outputs": outputs, "metadata": {}}

    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
    nb = {"cells": [
        cell("plt.show()", []),                      # drew, stored nothing: the bug of issue 17
        cell("plot_curves(history)\nplt.show()", [png]),
        cell("fig, ax = plt.subplots()", []),
        cell("seqtag.plots.plot_confusion(m)", []),
        cell("ax.imshow(x)", [png]),
        cell("print('no figure here')", []),
    ]}
    assert run_chapters.missing_pictures(nb) == [0, 2, 3]
    # the stop hook's own pattern is covered
    for src in ("plt.show()", "plot_x(", "imshow(", "fig.savefig("):
        assert run_chapters.DRAWS.search(src), src


def test_kernels_draw_inline_whatever_the_caller_set(monkeypatch):
    # The cause of the missing pictures: MPLBACKEND=Agg exported for everything, inherited by kernels.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_chapters.kernel_env()
    assert run_chapters.os.environ["MPLBACKEND"] == run_chapters.INLINE
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"(?m)^export MPLBACKEND", makefile), "never export MPLBACKEND to every recipe"
    nbval = re.search(r"(?ms)^nbval:.*?(?=^\S)", makefile).group(0)
    assert "MPLBACKEND=$(INLINE)" in nbval and "INLINE := module://matplotlib_inline.backend_inline" in makefile


# ------------------------------------------------------------------------ volatile metadata (17.9)
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_volatile_metadata_is_stored(path: Path):
    nb = json.loads(path.read_text())
    assert not run_chapters.strip_volatile(nb), (
        f"{path.name} stores papermill timings or execution timestamps: "
        "python tools/run_chapters.py --strip-only (make book strips them itself)"
    )


def test_strip_volatile_keeps_outputs_and_drops_timings():
    nb = {
        "metadata": {"papermill": {"duration": 3.2}, "kernelspec": {"name": "python3"}},
        "cells": [{
            "cell_type": "code", "execution_count": 4, "source": "1 + 1",
            "metadata": {"papermill": {"duration": 0.1}, "execution": {"iopub.status.idle": "2026"},
                         "tags": ["parameters"]},
            "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}, "execution_count": 4}],
        }, {"cell_type": "markdown", "source": "x", "metadata": {"tags": []}}],
    }
    assert run_chapters.strip_volatile(nb) is True
    assert nb["metadata"] == {"kernelspec": {"name": "python3"}}
    assert nb["cells"][0]["metadata"] == {"tags": ["parameters"]}
    assert nb["cells"][0]["outputs"][0]["data"] == {"text/plain": "2"} and nb["cells"][0]["execution_count"] == 4
    assert nb["cells"][1]["metadata"] == {}
    assert run_chapters.strip_volatile(nb) is False  # idempotent


def test_write_clean_is_stable(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", metadata={"papermill": {"duration": 1}})])
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert run_chapters.write_clean(path) is True
    once = path.read_text()
    assert "papermill" not in once
    assert run_chapters.write_clean(path) is False and path.read_text() == once


def test_consecutive_streams_are_merged_so_a_rerun_stores_the_same_json():
    def cell(*texts, name="stdout"):
        return {"cell_type": "code", "source": "print(1); print(2)", "metadata": {},
                "outputs": [{"output_type": "stream", "name": name, "text": t} for t in texts]}

    split = cell("1\n", "2\n")
    assert run_chapters.strip_volatile({"metadata": {}, "cells": [split]}) is True
    assert split["outputs"] == cell("1\n2\n")["outputs"]
    mixed = cell("1\n")
    mixed["outputs"].append({"output_type": "stream", "name": "stderr", "text": "w\n"})
    assert run_chapters.strip_volatile({"metadata": {}, "cells": [mixed]}) is False  # stdout, stderr stay apart
    assert len(mixed["outputs"]) == 2


# ---------------------------------------------------------------------- stored results (issue 12)
RELATIVE_RESULTS = re.compile(
    r"""["'](?:\.\./)?(?:book/)?results/[\w.*-]+\.json["']"""  # "results/ewt_upos.json"
    r"""|Path\(\s*["'](?:\.\./|book/)?results/?["']"""  # Path("results")
    r"""|^\s*\w+\s*=\s*["'](?:\.\./)?results/?["']""",  # results = "results"
    re.M,
)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_read_stored_results_through_the_package(path: Path):
    nb = json.loads(path.read_text())
    bad = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and RELATIVE_RESULTS.search(_src(c))]
    assert bad == [], (
        f"{path.name}: cells {bad} name a results/ folder relative to the notebook (Colab has none): "
        "use seqtag.results.load(name) / seqtag.results.path(name)"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_rules(path: Path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and _src(cells[0]).startswith("# ")
    assert re.search(r"what you will learn", _src(cells[0]), re.I), "open with what you will learn"
    code = _code(nb)
    assert "google.colab" in _src(code[0]), "first code cell must be the Colab install cell"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert re.search(r'^device = "auto"', _src(params[0]), re.M)
    assert re.search(r"^seed = \d+", _src(params[0]), re.M)
    for i, cell in enumerate(code):
        src = _src(cell)
        if src.strip():
            assert cell.get("execution_count") is not None, f"code cell {i} was never executed"
        raises = "NBVAL_RAISES_EXCEPTION" in src
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        assert raises or not errors, f"cell {i} has an error output but is not NBVAL_RAISES_EXCEPTION"
        if "NBVAL_IGNORE_OUTPUT" in src:
            nxt = code[i + 1] if i + 1 < len(code) else None
            assert nxt is not None and "assert" in _src(nxt), (
                f"cell {i} is NBVAL_IGNORE_OUTPUT but the next code cell asserts nothing:\n{src[:200]}"
            )
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = "".join(data.get("text/plain", []))
            lone_repr = re.match(r"<(Figure size|matplotlib\.|Axes)", text) and "image/png" not in data
            assert not lone_repr, f"cell {i} stores a bare figure/axes repr: end it with plt.show()"


def test_a_chapter_run_stores_its_figure_cleanly_even_under_agg(tmp_path, monkeypatch, capfd):
    """End to end: papermill through run_chapters.execute, with MPLBACKEND=Agg inherited (the cause of
    issue 17's missing pictures): the figure is stored, no volatile metadata, no kernel warning."""
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('device = "auto"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.title('t')\nplt.xlabel('x')\nplt.show()"
        ),
    ])
    src, out = tmp_path / "c.ipynb", tmp_path / "out.ipynb"
    src.write_text(nbformat.writes(nb))
    run_chapters.execute(src, out, {}, cwd=tmp_path)
    done = json.loads(out.read_text())
    assert run_chapters.missing_pictures(done) == []
    assert "image/png" in done["cells"][1]["outputs"][0]["data"]
    assert "papermill" not in out.read_text() and '"execution"' not in out.read_text()
    err = capfd.readouterr().err
    assert "running over TCP" not in err, err


def test_run_chapters_records_each_chapter_ok_or_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make gpu-check`'s record: every chapter, ok or the failing cell's error, seconds, the machine."""
    import nbformat

    good, bad = tmp_path / "01_good.ipynb", tmp_path / "02_bad.ipynb"
    for path, code in ((good, "device = 'cpu'\nx = 1 + 1"), (bad, "device = 'cpu'\nraise ValueError('no CUDA here')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nb.cells[0].metadata["tags"] = ["parameters"]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, path)
    monkeypatch.setattr(run_chapters, "chapters", lambda: [good, bad])
    monkeypatch.setattr(run_chapters, "ROOT", tmp_path)
    record = tmp_path / "gpu_check.json"
    monkeypatch.setattr(sys, "argv", ["run_chapters.py", "--keep-going", "--out", str(tmp_path / "out"),
                                      "-p", "device", "cpu", "--record", str(record)])
    assert run_chapters.main() == 1  # one chapter failed
    data = json.loads(record.read_text())
    rows = {r["chapter"]: r for r in data["chapters"]}
    assert rows["01_good.ipynb"]["ok"] and rows["01_good.ipynb"]["error"] is None
    assert not rows["02_bad.ipynb"]["ok"] and "ValueError: no CUDA here" in rows["02_bad.ipynb"]["error"]
    assert not data["ok"] and data["parameters"] == {"device": "cpu"} and data["machine"]["torch"]
    assert all(r["seconds"] >= 0 for r in data["chapters"])
