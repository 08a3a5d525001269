"""Small helpers for the book's chapters (they work in Jupyter Book, plain Jupyter and Colab)."""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the prose (``{glue:}`name```) and show it.

    Uses :func:`myst_nb.glue` when myst-nb is installed (building the book); elsewhere (Colab)
    it just prints ``name = value`` so the reader still sees the number.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - depends on the environment
        if display:
            print(f"{name} = {value}")
        return
    _glue(name, value, display=display)
