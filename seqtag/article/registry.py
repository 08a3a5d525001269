"""The registry: one runnable reproduction per bug of the article's code and per pitfall around it.

A :class:`Bug` is either

* ``kind="bug"``: a defect **in the article's code**; ``article_line`` quotes the line that must
  change (it appears verbatim in :data:`~seqtag.article.code.ARTICLE_TRICK1` or
  :data:`~seqtag.article.code.ARTICLE_BIEBER_LSTM`), or
* ``kind="pitfall"``: a trap the book shows *around* that code (an empty sentence, float lengths,
  a NaN at a padded position...) that the article's code, run on its own data, never hits.

``capture(bug_id)`` runs a reproduction and returns ``"ErrorType: message"`` exactly as PyTorch (or
Python) raises it today, or ``"(no error) ..."`` plus what went silently wrong. ``with
expect(bug_id): ...`` lets a chapter run the code in the open, prints the error it raises and
checks that it is the very error the registry reproduces.

The entries themselves live in :mod:`seqtag.article.bugs` and :mod:`seqtag.article.pitfalls`;
importing :mod:`seqtag.article` registers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = ["Bug", "Kind", "REGISTRY", "CHAPTERS", "register", "get", "describe", "capture", "expect"]

Kind = Literal["bug", "pitfall"]

#: The chapters that show the bugs, in reading order, and their titles in the bug index.
CHAPTERS: dict[str, str] = {
    "01_padding": "1. Padding",
    "02_packing": "2. Packing",
    "03_masking": "3. Masking the loss",
    "04_bieber_lstm": "4. BieberLSTM, fixed",
}


@dataclass(frozen=True)
class Bug:
    """One bug of the article's code (or one pitfall around it) and a runnable reproduction.

    Attributes:
        id: short unique name, e.g. ``"data_index_0dim"``.
        title: what is wrong, in a few words (Markdown).
        fix: how the book fixes it (Markdown).
        chapter: the chapter that shows it, a key of :data:`CHAPTERS`.
        run: executes the code; raises the bug's error, or (``raises=False``) returns a sentence
            that states what went silently wrong.
        kind: ``"bug"`` (in the article's code) or ``"pitfall"`` (around it).
        article_line: for a bug, the article's line that must change, verbatim; ``""`` for a pitfall.
        raises: whether ``run`` raises.
        patches: for chapter 4's walk-through, the ``(old, new)`` text replacements that fix the
            bug in :data:`~seqtag.article.code.ARTICLE_BIEBER_LSTM`.
    """

    id: str
    title: str
    fix: str
    chapter: str
    run: Callable[[], object] = field(repr=False, compare=False)
    kind: Kind = "bug"
    article_line: str = ""
    raises: bool = True
    patches: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.chapter not in CHAPTERS:
            raise ValueError(f"bug {self.id!r}: unknown chapter {self.chapter!r}; use one of {list(CHAPTERS)}")
        if (self.kind == "bug") != bool(self.article_line):
            raise ValueError(f"bug {self.id!r}: a bug quotes the article's line, a pitfall does not")


REGISTRY: dict[str, Bug] = {}


def register(bug: Bug) -> Bug:
    """Add ``bug`` to :data:`REGISTRY` (ids are unique) and return it."""
    if bug.id in REGISTRY:
        raise ValueError(f"duplicate bug id {bug.id!r}")
    REGISTRY[bug.id] = bug
    return bug


def get(bug_id: str) -> Bug:
    """The registered bug ``bug_id``; a ``KeyError`` lists the known ids."""
    try:
        return REGISTRY[bug_id]
    except KeyError:
        raise KeyError(f"unknown bug id {bug_id!r}; known ids: {', '.join(REGISTRY)}") from None


def describe(exc: BaseException) -> str:
    """``"ErrorType: message"`` on one line, the form the book prints and the bug index lists."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def capture(bug: str | Callable[[], object]) -> str:
    """Run a bug's reproduction (by id, or any callable) and return what happened.

    The reproduction runs on the CPU with ``torch.manual_seed(0)``, inside a forked random state
    (the caller's is left alone).

    Returns:
        ``"ErrorType: message"`` if it raised, else ``"(no error) <what it returned>"``.
    """
    fn = get(bug).run if isinstance(bug, str) else bug
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # reproductions that build layers do so from the same weights
        try:
            result = fn()
        except Exception as exc:  # capturing any error is the point
            return describe(exc)
    return f"(no error) {result}"


@contextmanager
def expect(bug_id: str) -> Iterator[None]:
    """Run the article's code in a ``with`` block, print the error it raises, and check it.

    The block must raise, and its ``"ErrorType: message"`` must equal :func:`capture` of
    ``bug_id``: the chapter and the bug index then show the same, real error.

    Raises:
        AssertionError: the block raised nothing, or another error than the registry's.
    """
    expected = capture(bug_id)
    try:
        yield
    except Exception as exc:
        got = describe(exc)
        print(got + "\n", end="", flush=True)  # one write: a notebook stores it as one output
        if got != expected:
            raise AssertionError(
                f"bug {bug_id!r}: the chapter raised\n  {got}\nbut seqtag.article reproduces\n  {expected}"
            ) from exc
        return
    raise AssertionError(f"bug {bug_id!r}: expected {expected!r}, but the code ran without error")
