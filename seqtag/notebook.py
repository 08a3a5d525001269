"""Small display helpers for the book's chapters (Jupyter Book, plain Jupyter and Colab alike).

* :func:`glue` stores a number for the prose (``{glue:}`name```) without printing it twice;
* :func:`show_code` displays source as a highlighted code block;
* :func:`show_diff` prints a unified diff whose ``@@`` headers keep separate hunks apart.
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = ["glue", "show_code", "show_diff", "Markdown"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the prose (``{glue:}`name```) and, by default, show it.

    ``display=True`` shows the value as a bare cell output; pass ``display=False`` when the same
    cell prints it in a sentence, so that the reader never meets a stray number. Uses
    :func:`myst_nb.glue` when myst-nb is installed (building the book); elsewhere (Colab) it prints
    ``name = value`` if ``display`` is true.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - depends on the environment
        if display:
            print(f"{name} = {value}")
        return
    # a str's repr would put quotes around it in the prose ('96.6%'): glue its text as it is
    _glue(name, _Text(value) if isinstance(value, str) else value, display=display)


class _Text:
    """A glued string whose plain-text form is the string itself, without a ``str``'s quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Markdown(_Text):
    """Text shown as Markdown by Jupyter and as the same text by ``repr`` (nbval compares it)."""

    def _repr_markdown_(self) -> str:
        return self.text


def show_code(source: str, language: str = "python") -> Markdown:
    """``source`` as a highlighted code block in a notebook (plain text elsewhere)."""
    return Markdown(f"```{language}\n{source.rstrip()}\n```")


def diff_lines(before: str, after: str) -> list[str]:
    """The unified diff of two texts, without context lines and without the file header.

    Every hunk keeps its ``@@ -a,b +c,d @@`` header, so two separate changes read as two.
    """
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm="")
    return [line for line in diff if not line.startswith(("---", "+++"))]


def show_diff(before: str, after: str) -> None:
    """Print :func:`diff_lines` of ``before`` and ``after``."""
    print("\n".join(diff_lines(before, after)))
