"""Where the book's stored results live, wherever `seqtag` is installed.

Full runs store what they measured as JSON in the repository's `book/results/` folder. That folder is
also installed as the package `seqtag._results` (package data: see `setup.py`), so a chapter finds
its results the same way in a clone, in an editable install and in Colab, where the chapter is opened
alone and `pip install "seqtag @ git+URL"` installs the package:

    >>> import seqtag.results
    >>> seqtag.results.load("ewt_upos")["test"]["accuracy"]      # doctest: +SKIP
    >>> seqtag.results.path("ewt_upos")                          # where that file is (read or write)

Never open `results/...` relative to the notebook: Colab has no such folder.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

__all__ = ["ResultsNotFoundError", "folder", "load", "names", "path"]

PACKAGE = "seqtag._results"
# A checkout used without installing (PYTHONPATH=.): the folder next to the package.
CHECKOUT = Path(__file__).resolve().parent.parent / "book" / "results"


class ResultsNotFoundError(FileNotFoundError):
    """A stored results file that is not where the installed package keeps them."""


def folder() -> Path:
    """The folder holding the stored results (`book/results` in a checkout or editable install,
    `site-packages/seqtag/_results` in an ordinary install).

    Returns:
        An existing directory.

    Raises:
        ResultsNotFoundError: neither the installed package data nor a checkout's folder exists.
    """
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError:
        module = None
    if module is not None:
        for entry in getattr(module, "__path__", []):
            if Path(entry).is_dir():
                return Path(entry)
    if CHECKOUT.is_dir():
        return CHECKOUT
    raise ResultsNotFoundError(
        f"no stored results: package {PACKAGE} is not installed and {CHECKOUT} does not exist; "
        "reinstall seqtag (pip install 'seqtag @ git+URL', or pip install -e . in a clone)"
    )


def _file_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"a results name is a file name such as 'ewt_upos' or 'ewt_upos.json', got {name!r}")
    return name if name.endswith(".json") else f"{name}.json"


def path(name: str) -> Path:
    """The path of the stored results file `name` ('ewt_upos' or 'ewt_upos.json'), existing or not.

    Use it to write a new results file where `load` will find it (a full run in a clone writes into
    `book/results/`).
    """
    return folder() / _file_name(name)


def names() -> list[str]:
    """The stored results, sorted, without the `.json` suffix."""
    return sorted(p.stem for p in folder().glob("*.json"))


def load(name: str) -> dict:
    """Read the stored results file `name` ('ewt_upos' or 'ewt_upos.json') as a dict.

    Raises:
        ResultsNotFoundError: the file does not exist; the message names the file and what exists.
        ValueError: the file is not valid JSON (the message names the file and line).
    """
    file = path(name)
    if not file.is_file():
        have = ", ".join(names()) or "none"
        raise ResultsNotFoundError(
            f"{file}: no stored results named {file.stem!r} (stored: {have}); "
            "a full run of the chapter that writes it creates it"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object at the top, got {type(data).__name__}")
    return data
