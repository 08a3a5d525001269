"""The bug index's two tables, built by executing every reproduction now.

:func:`bug_table` returns one :class:`Row` per registered entry (in chapter order); the bug index
shows the ``kind="bug"`` rows (defects in the article's code, each with the article's line) and the
``kind="pitfall"`` rows (traps around it) as two tables, :class:`BugTable`, and counts both from
the rows (:func:`counts`), so no number on that page is typed.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from seqtag.article.code import locate
from seqtag.article.registry import CHAPTERS, REGISTRY, Kind, capture

__all__ = ["Row", "bug_table", "counts", "annotated", "BugTable", "to_markdown", "to_html"]

SILENT = "(no error) "


@dataclass(frozen=True)
class Row:
    """One executed entry of the registry.

    Attributes:
        id: the registry id.
        bug: its title (Markdown).
        kind: ``"bug"`` or ``"pitfall"``.
        line: the article's line that must change (``""`` for a pitfall).
        where: where that line stands, e.g. ``"BieberLSTM, line 17"`` (``""`` for a pitfall).
        message: what the installed PyTorch says now: ``"ErrorType: message"`` or
            ``"(no error) <what went wrong>"``.
        fix: the fix (Markdown).
        chapter: the chapter's title, e.g. ``"2. Packing"``.
    """

    id: str
    bug: str
    kind: Kind
    line: str
    where: str
    message: str
    fix: str
    chapter: str

    @property
    def raises(self) -> bool:
        """Whether the installed PyTorch raises (rather than computing something wrong)."""
        return not self.message.startswith(SILENT)


def bug_table(kind: Kind | None = None) -> list[Row]:
    """Execute every reproduction (of ``kind``, or all) now; one row each, in chapter order."""
    order = list(CHAPTERS)
    entries = sorted(
        (b for b in REGISTRY.values() if kind is None or b.kind == kind),
        key=lambda b: order.index(b.chapter),
    )
    return [
        Row(
            b.id, b.title, b.kind, b.article_line, locate(b.article_line) if b.article_line else "",
            capture(b.id), b.fix, CHAPTERS[b.chapter],
        )
        for b in entries
    ]


def counts(rows: Sequence[Row]) -> dict[str, int]:
    """What the bug index says about ``rows``, counted from them.

    Returns ``{"rows", "raise", "silent", "lines"}``: entries, how many raise with the installed
    PyTorch, how many compute something wrong silently, and how many distinct article lines they
    cite (several bugs can sit on one line), plus one ``"chapter <title>"`` key per chapter.
    """
    result = {
        "rows": len(rows),
        "raise": sum(r.raises for r in rows),
        "silent": sum(not r.raises for r in rows),
        "lines": len({r.line for r in rows if r.line}),
    }
    for chapter, n in Counter(r.chapter for r in rows).items():
        result[f"chapter {chapter}"] = n
    return result


def annotated(listing: str, name: str, rows: Sequence[Row]) -> str:
    """``listing`` with line numbers, each line a row cites marked ``# <- bug 3, 4`` (the rows' numbers).

    Args:
        listing: the article's code, e.g. :data:`~seqtag.article.code.ARTICLE_BIEBER_LSTM`.
        name: its name in :attr:`Row.where` (``"trick 1"`` or ``"BieberLSTM"``).
        rows: the bug table's rows, numbered from 1 as the table shows them.
    """
    marks: dict[int, list[str]] = {}
    for i, r in enumerate(rows, 1):
        if r.where.startswith(f"{name}, line "):
            marks.setdefault(int(r.where.rsplit(" ", 1)[1]), []).append(str(i))
    lines = listing.splitlines()
    width = len(str(len(lines)))
    return "\n".join(
        (f"{n:>{width}}  {text}" + (f"  # <- bug {', '.join(marks[n])}" if n in marks else "")).rstrip()
        for n, text in enumerate(lines, 1)
    )


def _cell(text: str) -> str:
    """A Markdown table cell on one line, pipes escaped (write ``<tokens>`` in backticks)."""
    return " ".join(text.split()).replace("|", "\\|")


def _code_cell(text: str) -> str:
    """Text in a code span that survives the backticks it may contain."""
    if not text:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {' '.join(text.split()).replace('|', chr(92) + '|')} {fence}"


def _columns(rows: Sequence[Row]) -> tuple[str, ...]:
    if any(r.kind == "bug" for r in rows):
        return ("#", "Bug", "The article's line", "What PyTorch says today", "Fix", "Chapter")
    return ("#", "Pitfall", "What PyTorch says today", "Fix", "Chapter")


def to_markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table; with the article's line (and where it is) when they are bugs."""
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for i, r in enumerate(rows, 1):
        cells = [str(i), _cell(r.bug)]
        if len(columns) == 6:
            cells.append(f"{_code_cell(r.line)} ({r.where})" if r.line else "")
        cells += [_code_cell(r.message), _cell(r.fix), r.chapter]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _html_text(text: str) -> str:
    """Escape text for HTML and turn Markdown code spans (`x`) into ``<code>`` elements."""
    parts = re.split(r"(`+)(.+?)\1", " ".join(text.split()))
    out = []
    for i in range(0, len(parts), 3):
        out.append(html.escape(parts[i]))
        if i + 2 < len(parts):
            out.append(f"<code>{html.escape(parts[i + 2].strip())}</code>")
    return "".join(out)


def _html_code(text: str) -> str:
    return f"<code>{html.escape(' '.join(text.split()))}</code>" if text else ""


def to_html(rows: Sequence[Row]) -> str:
    """The rows as an HTML table (what notebooks and the HTML book display)."""
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns)
    body = []
    for i, r in enumerate(rows, 1):
        cells = [str(i), _html_text(r.bug)]
        if len(columns) == 6:
            cells.append(f"{_html_code(r.line)}<br>{html.escape(r.where)}" if r.line else "")
        cells += [_html_code(r.message), _html_text(r.fix), html.escape(r.chapter)]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


class BugTable:
    """Rows of :func:`bug_table`: an HTML table in a notebook, a Markdown table as text."""

    def __init__(self, rows: Sequence[Row]) -> None:
        kinds = {r.kind for r in rows}
        if len(kinds) > 1:
            raise ValueError("one table per kind: pass bug_table('bug') or bug_table('pitfall')")
        self.rows = list(rows)

    def _repr_html_(self) -> str:
        return to_html(self.rows)

    def __repr__(self) -> str:
        return to_markdown(self.rows)
