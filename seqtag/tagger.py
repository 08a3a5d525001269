"""A trained tagger: the model with its vocabularies and configurations; save, load, tag.

The Python API a notebook user reaches for::

    import seqtag
    tagger = seqtag.load("upos.pt")
    tagger.tag("Is it too late now to say sorry?")
    # [('Is', 'AUX'), ('it', 'PRON'), ('too', 'ADV'), ('late', 'ADJ'), ('now', 'ADV'), ...]
    tagger.tag_batch(["I don't think so.", "Me neither."])       # one list of pairs per text
    tagger.tag([["I", "do", "n't", "think", "so", "."]])          # words already split: tags only
    joint.tag("I know.", both=True)   # a joint UPOS+XPOS tagger: [('I', 'PRON', 'PRP'), ...]
    paired = joint.with_joint_decoding(seen_pairs(train, "upos", "xpos", joint.tags, joint.aux_tags))
    paired.tag("I know.", both=True)  # the same weights; each word's two tags a pair seen in training

Raw text is split into EWT tokens by :func:`seqtag.tokenize.tokenize` (``don't`` -> ``do n't``).
:func:`load` (also ``seqtag.load``) reads a checkpoint written by :meth:`TrainedTagger.save`.
A checkpoint holds only plain Python values and tensors, so it loads with
``torch.load(..., weights_only=True)``. This module never imports the training loop; whole
files (CoNLL-U, text) are tagged by :mod:`seqtag.tagio`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtag import __version__
from seqtag.batching import BucketBatchSampler, TaggingDataset, collate, encode_chars
from seqtag.config import CHECKPOINT_FORMAT, CheckpointError, TrainConfig
from seqtag.data import Sentence, tags_of
from seqtag.io import write_with
from seqtag.metrics import Evaluation, evaluate, evaluate_joint
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
    aux_tags: Vocab | None = None  # the second tag set of a jointly trained tagger (train_config.aux_tagset)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def dataset(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None = None,
        aux_tags: Sequence[Sequence[str]] | None = None,
    ) -> TaggingDataset:
        """Encode word lists (and optionally their tags, and a joint tagger's second tags) with this
        tagger's vocabularies."""
        signatures, lowercase = self.train_config.unk_signatures, self.train_config.expand_vocab > 0
        forms = (
            [lookup_forms(self.words, s, signatures, lowercase) for s in sentences]
            if signatures or lowercase
            else sentences
        )
        ds = TaggingDataset(forms, tags, self.words, self.tags if tags is not None else None)
        if aux_tags is not None:
            if self.aux_tags is None:
                raise ValueError("aux_tags given, but this tagger learns one tag set (train with aux_tagset)")
            second = TaggingDataset(forms, aux_tags, self.words, self.aux_tags)
            for item, other in zip(ds.items, second.items, strict=True):
                item["aux_tags"] = other["tags"]
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

    @overload
    def tag(self, text: str, batch_size: int | None = None, tokenizer: Callable[[str], list[str]] | None = None,
            both: Literal[False] = False) -> list[tuple[str, str]]: ...

    @overload
    def tag(self, text: str, batch_size: int | None = None, tokenizer: Callable[[str], list[str]] | None = None,
            *, both: Literal[True]) -> list[tuple[str, str, str]]: ...

    @overload
    def tag(self, text: Sequence[Sequence[str]], batch_size: int | None = None,
            tokenizer: Callable[[str], list[str]] | None = None, both: Literal[False] = False) -> list[list[str]]: ...

    @overload
    def tag(self, text: Sequence[Sequence[str]], batch_size: int | None = None,
            tokenizer: Callable[[str], list[str]] | None = None, *, both: Literal[True]
            ) -> list[list[tuple[str, str]]]: ...

    def tag(
        self,
        text: str | Sequence[Sequence[str]],
        batch_size: int | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
        both: bool = False,
    ) -> Any:
        """Tag raw text, or sentences already split into words.

        Args:
            text: a ``str`` of raw English (split by ``tokenizer``), or ``N`` word lists.
            batch_size: sentences per batch (default: ``train_config.eval_batch_size``).
            tokenizer: how raw text becomes words (default: :func:`seqtag.tokenize.tokenize`,
                EWT's conventions; ``str.split`` for text already split at spaces).
            both: a jointly trained tagger (:attr:`aux_tagset` set) gives both tag sets, from the
                same forward pass, in CoNLL-U column order: UPOS, then XPOS, whichever of the two
                it was trained on first. ``ValueError`` for a tagger of one tag set.

        Returns:
            For a ``str``: ``[(word, tag), ...]`` of :attr:`tagset` in text order (``[]`` for
            blank text); with ``both``: ``[(word, upos, xpos), ...]``.
            For word lists: ``N`` lists of tag strings, in the input order (as many tags as
            words); with ``both``: ``N`` lists of ``(upos, xpos)`` pairs.

        Example:
            >>> tagger.tag("I don't know.")  # doctest: +SKIP
            [('I', 'PRON'), ('do', 'AUX'), ("n't", 'PART'), ('know', 'VERB'), ('.', 'PUNCT')]
            >>> joint.tag("I know.", both=True)  # doctest: +SKIP
            [('I', 'PRON', 'PRP'), ('know', 'VERB', 'VBP'), ('.', 'PUNCT', '.')]
        """
        if isinstance(text, str):
            return self.tag_batch([text], batch_size, tokenizer, both=both)[0]
        if any(isinstance(s, str) for s in text):
            raise TypeError("tag takes one str of raw text, or a list of word lists; for several "
                            "texts use tag_batch(texts)")
        return self._tag_words(text, batch_size, both)

    def tag_batch(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
        both: bool = False,
    ) -> list[list[tuple[str, ...]]]:
        """Tag many raw texts at once, batched like training (length buckets: little padding).

        Args:
            texts: ``N`` strings of raw English, one sentence (or a short passage) each.
            batch_size: sentences per batch (default: ``train_config.eval_batch_size``).
            tokenizer: see :meth:`tag` (default: :func:`seqtag.tokenize.tokenize`).
            both: a jointly trained tagger's two tag sets (see :meth:`tag`).

        Returns:
            ``N`` lists of ``(word, tag)`` pairs, in the order of ``texts``; with ``both``,
            ``(word, upos, xpos)`` triples.
        """
        if isinstance(texts, str):
            raise TypeError("tag_batch takes a list of texts; for one text use tag(text)")
        if tokenizer is None:
            from seqtag.tokenize import tokenize as tokenizer
        words = [tokenizer(t) for t in texts]
        tagged = iter(self._tag_words([w for w in words if w], batch_size, both))
        return [[(w, *(t if both else (t,))) for w, t in zip(ws, next(tagged), strict=True)] if ws else []
                for ws in words]

    def _tag_words(self, sentences: Sequence[Sequence[str]], batch_size: int | None = None, both: bool = False
                   ) -> list[list[Any]]:
        """Tags (``both``: ``(upos, xpos)`` pairs) of each word list, in the input order.

        One forward pass per batch; the predictions stay on the model's device until the end,
        where one transfer brings all of them back (no host-device synchronisation per batch).
        """
        if len(sentences) == 0:
            return []
        if any(len(s) == 0 for s in sentences):
            raise ValueError("cannot tag an empty sentence (a word list without words)")
        vocabs = [self.tags]
        if both:
            if self.aux_tags is None:
                raise ValueError(f"this tagger learns one tag set ({self.tagset}): both=True needs a jointly "
                                 "trained tagger (train with --aux-tagset)")
            vocabs.append(self.aux_tags)
        chunks: list[Tensor] = []  # per batch (K, B*T): K = 1 or 2 tag sets, each row T wide
        index: list[Tensor] = []  # CPU: each row's sentence, its length, its width
        lengths: list[Tensor] = []
        widths: list[int] = []
        self.model.eval()
        with torch.inference_mode():
            for batch in self.loader(self.dataset(sentences), batch_size):
                words, chars = batch.words.to(self.device), _chars(batch, self.device)
                if both:
                    scores, aux_scores = self.model.forward_heads(words, batch.lengths, chars)  # one encoder pass
                    pred = torch.stack(self.model.decode_heads(scores, aux_scores, batch.mask.to(self.device)))  # type: ignore[arg-type]
                else:  # (1, B, T); a jointly decoding tagger reads both layers here too
                    pred = self.model.predict(words, batch.lengths, chars).unsqueeze(0)
                chunks.append(pred.flatten(1))
                index.append(batch.index)  # type: ignore[arg-type]
                lengths.append(batch.lengths)
                widths += [pred.size(2)] * pred.size(1)
        ids = torch.cat(chunks, 1).tolist()  # the one device -> host transfer of the call
        out: list[list[Any]] = [[] for _ in sentences]
        start = 0
        for i, n, width in zip(torch.cat(index).tolist(), torch.cat(lengths).tolist(), widths, strict=True):
            decoded = [vocab.decode(row[start:start + n]) for vocab, row in zip(vocabs, ids, strict=True)]
            out[i] = decoded[0] if not both else list(zip(*self._column_order(decoded), strict=True))
            start += width
        return out

    def _column_order(self, decoded: list[list[str]]) -> list[list[str]]:
        """``[main tags, aux tags]`` -> ``[upos tags, xpos tags]`` (CoNLL-U column order)."""
        return decoded if self.tagset == "upos" else decoded[::-1]

    @property
    def aux_tagset(self) -> str | None:
        """The second tag set of a jointly trained tagger (``"upos"``/``"xpos"``), else ``None``."""
        return self.train_config.aux_tagset if self.aux_tags is not None else None

    def evaluate(self, sentences: Sequence[Sentence], batch_size: int | None = None, aux: bool = False) -> Evaluation:
        """Accuracy, OOV accuracy, per-tag scores and confusion matrix on labelled sentences.

        ``aux=True`` scores a jointly trained tagger's second tag set (:attr:`aux_tagset`) instead.
        """
        words = [s.words for s in sentences]
        if not aux:
            ds = self.dataset(words, tags_of(sentences, self.tagset))  # type: ignore[arg-type]
            return evaluate(self.model, self.loader(ds, batch_size), self.tags, self.unknown_ids)
        ds = self._joint_dataset(sentences, "there is no second one to evaluate (aux=True)")
        return evaluate(self.model, self.loader(ds, batch_size), self.aux_tags, self.unknown_ids, aux=True)  # type: ignore[arg-type]

    def evaluate_joint(self, sentences: Sequence[Sentence], batch_size: int | None = None) -> tuple[Evaluation, Evaluation]:
        """Both tag sets of a jointly trained tagger, ``(main, second)``, from one encoder pass per
        batch: the same two evaluations as :meth:`evaluate` and ``evaluate(..., aux=True)``, with
        half the work.

        Raises:
            ValueError: the tagger learns one tag set.
        """
        ds = self._joint_dataset(sentences, "evaluate_joint needs a jointly trained one (use evaluate)")
        return evaluate_joint(self.model, self.loader(ds, batch_size), self.tags, self.aux_tags, self.unknown_ids)  # type: ignore[arg-type]

    def evaluate_tagsets(self, sentences: Sequence[Sentence], batch_size: int | None = None) -> tuple[Evaluation, Evaluation | None]:
        """``(main, second)``: every tag set this tagger learns, in one pass: :meth:`evaluate_joint`
        for a jointly trained tagger, else ``(evaluate(sentences), None)``."""
        if self.aux_tags is None:
            return self.evaluate(sentences, batch_size), None
        return self.evaluate_joint(sentences, batch_size)

    def _joint_dataset(self, sentences: Sequence[Sentence], why: str) -> TaggingDataset:
        """``sentences`` labelled with both tag sets; ``ValueError`` (``why``) for a one-tag-set tagger."""
        if self.aux_tags is None or self.aux_tagset is None:
            raise ValueError(f"this tagger learns one tag set: {why}")
        words = [s.words for s in sentences]
        return self.dataset(words, tags_of(sentences, self.tagset), tags_of(sentences, self.aux_tagset))  # type: ignore[arg-type]

    def with_joint_decoding(self, pairs: Iterable[tuple[int, int]] | None) -> TrainedTagger:
        """This jointly trained tagger with the same weights (copied), decoding its two tag sets
        together among ``pairs`` (``(tag id, second tag id)``, e.g. :func:`seqtag.vocab.seen_pairs`
        of its training data), or, with ``None``, each on its own: the ``joint_decoding`` option
        switched on or off after training (decoding only; the weights are the same).

        Raises:
            ValueError: the tagger learns one tag set; a pair outside the tag sets.
        """
        if self.aux_tags is None:
            raise ValueError("this tagger learns one tag set: joint decoding needs a jointly trained one")
        model = Tagger(TaggerConfig.from_dict({**self.model.config.to_dict(), "joint_decoding": pairs is not None}))
        weights = {k: v for k, v in self.model.state_dict().items() if k != "tag_pairs"}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        assert not unexpected and set(missing) <= {"tag_pairs"}, (missing, unexpected)
        if pairs is not None:
            model.set_tag_pairs(pairs)
        return replace(self, model=model.to(self.device).eval())

    def check_gold(self, sentences: Sequence[Sentence], source: str = "<sentences>", aux: bool = False) -> None:
        """Raise ``ValueError`` (``source:line: ...``, the sentence's line) at the first gold tag of
        :attr:`tagset` (``aux``: of :attr:`aux_tagset`) that this tagger does not know: a file tagged
        with the other tag set, or a tag its training data never had."""
        tagset, vocab = (self.aux_tagset, self.aux_tags) if aux else (self.tagset, self.tags)
        if tagset is None or vocab is None:
            raise ValueError("this tagger learns one tag set: there is no second one to check (aux=True)")
        for s in sentences:
            for tag, word in zip(s.tags(tagset), s.words, strict=True):  # type: ignore[arg-type]
                if tag not in vocab or tag == "<pad>":
                    raise ValueError(f"{source}:{s.line}: gold {tagset.upper()} tag {tag!r} (word {word!r}) is not "
                                     f"one of the model's {len(vocab) - 1} {tagset.upper()} tags; is the file "
                                     f"tagged with {tagset}?")

    # --- checkpoints ---

    def to_checkpoint(self) -> dict[str, Any]:
        """Plain values and CPU tensors only (``torch.load(weights_only=True)`` can read them)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "seqtag_version": __version__,
            "tagger_config": self.model.config.to_dict(),
            "train_config": self.train_config.to_dict(),
            "tagset": self.tagset,
            "vocabs": {"words": self.words.to_dict(), "tags": self.tags.to_dict(), "chars": self.chars.to_dict(),
                       **({"aux_tags": self.aux_tags.to_dict()} if self.aux_tags is not None else {})},
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
            aux_tags = Vocab.from_dict(ckpt["vocabs"]["aux_tags"]) if config.aux_num_tags else None
            model = Tagger(config)
            missing_w, unexpected_w = model.load_state_dict(ckpt["state_dict"], strict=False)
            if missing_w or unexpected_w:
                raise ValueError(f"weights missing: {missing_w}; unexpected weights: {unexpected_w}")
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            why = " ".join(str(exc).split())[:400] or repr(exc)  # one line, even for torch's lists
            raise CheckpointError(f"{source}: does not match this code: {why}") from None
        if (len(vocabs["words"]) != config.vocab_size or len(vocabs["tags"]) != config.num_tags
                or (aux_tags is not None and len(aux_tags) != config.aux_num_tags)):
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
            aux_tags,
        )
        return tagger


def _chars(batch: Any, device: torch.device) -> Tensor | None:
    return None if batch.chars is None else batch.chars.to(device)


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", strict_version: bool = True) -> TrainedTagger:
    """Load a trained tagger from a checkpoint file (see :meth:`TrainedTagger.load`)."""
    return TrainedTagger.load(path, device=device, strict_version=strict_version)
