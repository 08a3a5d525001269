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


def test_install_cells_point_at_the_configured_repository():
    assert sync_install_cells.problems(fix=False) == []


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
