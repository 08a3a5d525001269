"""seqtag: the small sequence-tagging package that the *Taming LSTMs* book builds and imports.

Data flows one way: files -> :mod:`seqtag.data` -> :mod:`seqtag.vocab` -> :mod:`seqtag.batching`
-> :mod:`seqtag.models` -> :mod:`seqtag.losses` -> :mod:`seqtag.train` -> :mod:`seqtag.cli`.
"""

__version__ = "0.1.0"

from seqtag.runtime import resolve_device, seed_everything  # noqa: E402

__all__ = ["__version__", "resolve_device", "seed_everything"]
