"""The article's code, its bugs and their fixes: what chapters 1 to 4 and the bug index share.

William Falcon's 2018 article *Taming LSTMs* pads, packs and masks a batch of three lyrics and
tags them with ``BieberLSTM``. This sub-package keeps that code as printed and every failure the
book finds in it or around it, each as a runnable reproduction, so the chapters and the bug index
show the errors the installed PyTorch really raises. One job per module:

* :mod:`~seqtag.article.code`: the article's data and code as printed (trick 1's padding, the
  ``BieberLSTM`` listing), and :func:`~seqtag.article.code.define` to run a class source;
* :mod:`~seqtag.article.registry`: the :class:`~seqtag.article.registry.Bug` record, the registry,
  ``capture`` (run a reproduction, get ``"ErrorType: message"``) and ``expect`` (a chapter's
  ``with`` block that must raise exactly that);
* :mod:`~seqtag.article.bugs`: the bugs **in** the article's code, each quoting its line;
* :mod:`~seqtag.article.pitfalls`: the pitfalls **around** it that the book also shows;
* :mod:`~seqtag.article.fixes`: chapter 4's walk-through (one patch per bug), the fixed class, the
  fixed loss and the NaN-safe loss the bug index recommends;
* :mod:`~seqtag.article.table`: the bug index's two tables and their counts.

Display helpers (``show_code``, ``show_diff``, ``glue``) live in :mod:`seqtag.notebook`, the only
other part of :mod:`seqtag` this sub-package imports: it is the article's code, not the package's
(the package's fixes, ``seqtag.batching``, ``seqtag.losses``, ``seqtag.models``, are named in the
fixes' text and proved equal in the chapters and tests). Importing this package registers every
bug and pitfall.
"""

from seqtag.article import bugs, pitfalls  # noqa: F401 - registers the entries

__all__ = ["bugs", "pitfalls"]
