"""seqtag: the small sequence-tagging package that the *Taming LSTMs* book builds and imports.

One job per module; data flows one way, and a module imports only modules to its left:
:mod:`~seqtag.data` (corpora) -> :mod:`~seqtag.vocab` (ids, unknown-word classes) ->
:mod:`~seqtag.batching` -> :mod:`~seqtag.models` (with :mod:`~seqtag.rnn`, :mod:`~seqtag.crf`,
:mod:`~seqtag.transformer`, :mod:`~seqtag.embeddings`) -> :mod:`~seqtag.losses` ->
:mod:`~seqtag.metrics` -> :mod:`~seqtag.config` -> :mod:`~seqtag.tagger` (a trained tagger: save,
load, tag) -> :mod:`~seqtag.tagio` (the ``tag`` command's files: CoNLL-U and text in, tags
out) -> :mod:`~seqtag.train` (the loop only) -> :mod:`~seqtag.cli`.
:mod:`~seqtag.runtime` (device, seeds, threads, machine record) and :mod:`~seqtag.io` (atomic
writes, results files) are leaves that any module may import.

``config`` is its own module so that loading a trained tagger never imports the training loop.
Sub-packages hold what builds on all of that: :mod:`seqtag.distributed` (sampler, DDP step,
training run), ``seqtag.bench``, ``seqtag.experiments`` and ``seqtag.article``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any  # noqa: E402

from seqtag.runtime import resolve_device, seed_everything  # noqa: E402

if TYPE_CHECKING:
    from seqtag.tagger import TrainedTagger

__all__ = ["__version__", "resolve_device", "seed_everything", "load"]


def load(path: Any, device: Any = "cpu", strict_version: bool = True) -> TrainedTagger:
    """Load a trained tagger from a checkpoint file: :func:`seqtag.tagger.load`.

    (Imported on first use, so that ``import seqtag`` stays light.)
    """
    from seqtag.tagger import load as _load

    return _load(path, device=device, strict_version=strict_version)
