"""A trained tagger: the model with its vocabularies and configurations; save, load, tag.

:func:`load` (also ``seqtag.load``) reads a checkpoint written by :meth:`TrainedTagger.save`.
A checkpoint holds only plain Python values and tensors, so it loads with
``torch.load(..., weights_only=True)``. This module never imports the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtag import __version__
from seqtag.batching import BucketBatchSampler, TaggingDataset, collate, encode_chars
from seqtag.config import CHECKPOINT_FORMAT, CheckpointError, TrainConfig
from seqtag.data import Sentence, tags_of
from seqtag.io import write_with
from seqtag.metrics import Evaluation, evaluate
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import resolve_device
from seqtag.vocab import UNK_ID, Vocab, lookup_forms

__all__ = ["TrainedTagger", "load"]


@dataclass
class TrainedTagger:
    """A model with everything needed to use it: vocabularies, tag set name, configurations."""

    model: Tagger
    words: Vocab
    tags: Vocab
    chars: Vocab
    tagset: str
    train_config: TrainConfig
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def dataset(self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None) -> TaggingDataset:
        """Encode word lists (and optionally their tags) with this tagger's vocabularies."""
        signatures, lowercase = self.train_config.unk_signatures, self.train_config.expand_vocab > 0
        forms = (
            [lookup_forms(self.words, s, signatures, lowercase) for s in sentences]
            if signatures or lowercase
            else sentences
        )
        ds = TaggingDataset(forms, tags, self.words, self.tags if tags is not None else None)
        if self.model.config.char_vocab_size > 0:  # characters of the words as written
            for item, sentence in zip(ds.items, sentences, strict=True):
                item["chars"] = encode_chars(sentence, self.chars)
        return ds

    @property
    def unknown_ids(self) -> list[int]:
        """Word ids that stand for unknown words: ``<unk>`` and the signature classes."""
        return [UNK_ID] + [i for i, w in enumerate(self.words.itos) if w.startswith("<unk:")]

    def loader(self, dataset: TaggingDataset, batch_size: int | None = None) -> DataLoader:
        """Length-sorted batches for evaluation (less padding; ``batch.index`` restores the order)."""
        size = batch_size or self.train_config.eval_batch_size
        sampler = BucketBatchSampler(dataset.lengths, size, shuffle=False)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int | None = None) -> list[list[str]]:
        """Predicted tags for ``N`` word lists, in the input order (lists of tag strings)."""
        if len(sentences) == 0:
            return []
        out: list[list[str]] = [[] for _ in sentences]
        self.model.eval()
        for batch in self.loader(self.dataset(sentences), batch_size):
            pred = self.model.predict(batch.words.to(self.device), batch.lengths, _chars(batch, self.device))
            for row, i, n in zip(pred.cpu(), batch.index.tolist(), batch.lengths.tolist(), strict=True):
                out[i] = self.tags.decode(row[:n])
        return out

    def evaluate(self, sentences: Sequence[Sentence], batch_size: int | None = None) -> Evaluation:
        """Accuracy, OOV accuracy, per-tag scores and confusion matrix on labelled sentences."""
        ds = self.dataset([s.words for s in sentences], tags_of(sentences, self.tagset))  # type: ignore[arg-type]
        return evaluate(self.model, self.loader(ds, batch_size), self.tags, self.unknown_ids)

    # --- checkpoints ---

    def to_checkpoint(self) -> dict[str, Any]:
        """Plain values and CPU tensors only (``torch.load(weights_only=True)`` can read them)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "seqtag_version": __version__,
            "tagger_config": self.model.config.to_dict(),
            "train_config": self.train_config.to_dict(),
            "tagset": self.tagset,
            "vocabs": {"words": self.words.to_dict(), "tags": self.tags.to_dict(), "chars": self.chars.to_dict()},
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "history": {k: [float(x) for x in v] for k, v in self.history.items()},
            "best_epoch": self.best_epoch,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint atomically (a temporary file in the same folder, then renamed)."""
        checkpoint = self.to_checkpoint()
        return write_with(path, lambda f: torch.save(checkpoint, f))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", strict_version: bool = True
    ) -> TrainedTagger:
        """Load a checkpoint written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: truncated or not a checkpoint, written by another version
                (unless ``strict_version=False``), unknown config fields, missing keys or weights.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # zip errors, EOF, unpickling errors: all mean "not readable"
            raise CheckpointError(
                f"{path}: not a readable seqtag checkpoint (truncated or corrupt? {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); train again to recreate it"
            ) from None
        return cls.from_checkpoint(ckpt, str(path), device, strict_version)

    @classmethod
    def from_checkpoint(
        cls, ckpt: Any, source: str = "checkpoint", device: str | torch.device = "cpu", strict_version: bool = True
    ) -> TrainedTagger:
        """Rebuild from the dict :meth:`to_checkpoint` made; see :meth:`load` for the errors."""
        required = ("format", "seqtag_version", "tagger_config", "train_config", "tagset", "vocabs", "state_dict")
        if not isinstance(ckpt, dict) or "format" not in ckpt:
            raise CheckpointError(f"{source}: not a seqtag checkpoint (no 'format' entry)")
        missing = [k for k in required if k not in ckpt]
        if missing:
            raise CheckpointError(f"{source}: checkpoint lacks {missing}; train again to recreate it")
        if ckpt["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{source}: checkpoint format {ckpt['format']}, this code reads format {CHECKPOINT_FORMAT}"
            )
        if strict_version and ckpt["seqtag_version"] != __version__:
            raise CheckpointError(
                f"{source}: written by seqtag {ckpt['seqtag_version']}, this is seqtag {__version__}; "
                "train again, or load with strict_version=False at your own risk"
            )
        try:
            config = TaggerConfig.from_dict(dict(ckpt["tagger_config"]))
            train_config = TrainConfig.from_dict(dict(ckpt["train_config"]))
            vocabs = {k: Vocab.from_dict(ckpt["vocabs"][k]) for k in ("words", "tags", "chars")}
            model = Tagger(config)
            missing_w, unexpected_w = model.load_state_dict(ckpt["state_dict"], strict=False)
            if missing_w or unexpected_w:
                raise ValueError(f"weights missing: {missing_w}; unexpected weights: {unexpected_w}")
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            why = " ".join(str(exc).split())[:400] or repr(exc)  # one line, even for torch's lists
            raise CheckpointError(f"{source}: does not match this code: {why}") from None
        if len(vocabs["words"]) != config.vocab_size or len(vocabs["tags"]) != config.num_tags:
            raise CheckpointError(f"{source}: vocabulary sizes do not match the model's configuration")
        tagger = cls(
            model.to(resolve_device(device)).eval(),
            vocabs["words"],
            vocabs["tags"],
            vocabs["chars"],
            str(ckpt["tagset"]),
            train_config,
            {k: list(v) for k, v in ckpt.get("history", {}).items()},
            int(ckpt.get("best_epoch", 0)),
        )
        return tagger


def _chars(batch: Any, device: torch.device) -> Tensor | None:
    return None if batch.chars is None else batch.chars.to(device)


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", strict_version: bool = True) -> TrainedTagger:
    """Load a trained tagger from a checkpoint file (see :meth:`TrainedTagger.load`)."""
    return TrainedTagger.load(path, device=device, strict_version=strict_version)
