"""seqtag.notebook.glue: what the prose shows is the glued value's text, a string without quotes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

myst_nb = pytest.importorskip("myst_nb")
formatters = pytest.importorskip("IPython.core.formatters")

from seqtag.notebook import glue  # noqa: E402


def _glued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any], bool]]:
    seen: list[tuple[str, dict[str, Any], bool]] = []

    def record(name: str, variable: Any, display: bool = True) -> None:
        seen.append((name, formatters.format_display_data(variable)[0], display))

    monkeypatch.setattr(myst_nb, "glue", record)
    return seen


def test_a_glued_string_shows_its_text_without_quotes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _glued(monkeypatch)
    glue("iv", "96.6%", display=False)
    glue("words", "it's 'quoted'")
    glue("n", 12)
    assert [(name, bundle["text/plain"], shown) for name, bundle, shown in seen] == [
        ("iv", "96.6%", False), ("words", "it's 'quoted'", True), ("n", "12", True)]


def test_no_stored_chapter_glues_a_quoted_string() -> None:
    """What the HTML shows for {glue:}`name` is the stored text/plain: a str's repr would show as 'text'."""
    quoted = []
    for path in sorted((Path(__file__).resolve().parents[1] / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for out in cell.get("outputs", []):
                name = out.get("metadata", {}).get("scrapbook", {}).get("name")
                text = "".join(next((v for k, v in out.get("data", {}).items() if k.endswith("text/plain")), ""))
                if name and text[:1] in "'\"" and text[-1:] == text[:1]:
                    quoted.append(f"{path.name}: {name} = {text[:40]}")
    assert not quoted, quoted
