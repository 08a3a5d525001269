"""A trained tagger: the model with its vocabularies and configurations; save, load, tag.

The Python API a notebook user reaches for::

    import seqtag
    tagger = seqtag.load("upos.pt")
    tagger.tag("Is it too late now to say sorry?")
    # [('Is', 'AUX'), ('it', 'PRON'), ('too', 'ADV'), ('late', 'ADJ'), ('now', 'ADV'), ...]
    tagger.tag_batch(["I don't think so.", "Me neither."])       # one list of pairs per text
    tagger.tag([["I", "do", "n't", "think", "so", "."]])          # words already split: tags only

Raw text is split into EWT tokens by :func:`seqtag.tokenize.tokenize` (``don't`` -> ``do n't``).
:func:`load` (also ``seqtag.load``) reads a checkpoint written by :meth:`TrainedTagger.save`.
A checkpoint holds only plain Python values and tensors, so it loads with
``torch.load(..., weights_only=True)``. This module never imports the training loop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, overload

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtag import __version__
from seqtag.batching import BucketBatchSampler, TaggingDataset, collate, encode_chars
from seqtag.config import CHECKPOINT_FORMAT, CheckpointError, TrainConfig
from seqtag.data import TAG_COLUMN, Sentence, format_conllu, iter_conllu, tags_of
from seqtag.io import write_with
from seqtag.metrics import Evaluation, evaluate
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import resolve_device
from seqtag.vocab import UNK_ID, Vocab, lookup_forms

__all__ = ["TrainedTagger", "load", "tag_conllu_lines", "tag_text_lines"]


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

    @overload
    def tag(self, text: str, batch_size: int | None = None, tokenizer: Callable[[str], list[str]] | None = None
            ) -> list[tuple[str, str]]: ...

    @overload
    def tag(self, text: Sequence[Sequence[str]], batch_size: int | None = None,
            tokenizer: Callable[[str], list[str]] | None = None) -> list[list[str]]: ...

    def tag(
        self,
        text: str | Sequence[Sequence[str]],
        batch_size: int | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
    ) -> list[tuple[str, str]] | list[list[str]]:
        """Tag raw text, or sentences already split into words.

        Args:
            text: a ``str`` of raw English (split by ``tokenizer``), or ``N`` word lists.
            batch_size: sentences per batch (default: ``train_config.eval_batch_size``).
            tokenizer: how raw text becomes words (default: :func:`seqtag.tokenize.tokenize`,
                EWT's conventions; ``str.split`` for text already split at spaces).

        Returns:
            For a ``str``: ``[(word, tag), ...]`` in text order (``[]`` for blank text).
            For word lists: ``N`` lists of tag strings, in the input order (as many tags as words).

        Example:
            >>> tagger.tag("I don't know.")  # doctest: +SKIP
            [('I', 'PRON'), ('do', 'AUX'), ("n't", 'PART'), ('know', 'VERB'), ('.', 'PUNCT')]
        """
        if isinstance(text, str):
            return self.tag_batch([text], batch_size, tokenizer)[0]
        if any(isinstance(s, str) for s in text):
            raise TypeError("tag takes one str of raw text, or a list of word lists; for several "
                            "texts use tag_batch(texts)")
        return self._tag_words(text, batch_size)

    def tag_batch(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
    ) -> list[list[tuple[str, str]]]:
        """Tag many raw texts at once, batched like training (length buckets: little padding).

        Args:
            texts: ``N`` strings of raw English, one sentence (or a short passage) each.
            batch_size: sentences per batch (default: ``train_config.eval_batch_size``).
            tokenizer: see :meth:`tag` (default: :func:`seqtag.tokenize.tokenize`).

        Returns:
            ``N`` lists of ``(word, tag)`` pairs, in the order of ``texts``.
        """
        if isinstance(texts, str):
            raise TypeError("tag_batch takes a list of texts; for one text use tag(text)")
        if tokenizer is None:
            from seqtag.tokenize import tokenize as tokenizer
        words = [tokenizer(t) for t in texts]
        tagged = iter(self._tag_words([w for w in words if w], batch_size))
        return [list(zip(w, next(tagged), strict=True)) if w else [] for w in words]

    def _tag_words(self, sentences: Sequence[Sequence[str]], batch_size: int | None = None) -> list[list[str]]:
        if len(sentences) == 0:
            return []
        if any(len(s) == 0 for s in sentences):
            raise ValueError("cannot tag an empty sentence (a word list without words)")
        out: list[list[str]] = [[] for _ in sentences]
        self.model.eval()
        with torch.inference_mode():
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


# --- whole inputs: CoNLL-U (one column rewritten) and text (CoNLL-U out) -------------------------


def _batched(items: Iterable[Any], size: int, weight: Callable[[Any], int]) -> Iterator[list[Any]]:
    """Group ``items`` so that each group holds ``size`` weighted items (the last may hold fewer)."""
    group: list[Any] = []
    count = 0
    for item in items:
        group.append(item)
        count += weight(item)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def tag_conllu_lines(
    tagger: TrainedTagger, lines: Iterable[bytes], out: IO[bytes], source: str = "<stream>", batch_size: int = 256
) -> tuple[int, int]:
    """Tag CoNLL-U read line by line: the tagger's column is replaced, every other byte is kept.

    Args:
        tagger: the trained tagger (its ``tagset`` names the column: UPOS 4, XPOS 5).
        lines: the input's raw lines (``bytes``, endings included), e.g. an open binary file.
        out: where the rewritten lines go (binary).
        source: the input's name in error messages.
        batch_size: sentences tagged together (the input is streamed, never held whole).

    Returns:
        ``(sentences, tokens)`` tagged.

    Raises:
        seqtag.data.ConlluFormatError: a malformed line (``source:line: problem``).
    """
    column = TAG_COLUMN[tagger.tagset]
    sentences = tokens = 0
    for group in _batched(iter_conllu(lines, source), batch_size, lambda c: c.sentence is not None):
        labelled = [c for c in group if c.sentence is not None]
        predicted = iter(tagger.tag([c.sentence.words for c in labelled]))
        for chunk in group:
            if chunk.sentence is not None:
                for row, tag in zip(chunk.word_rows, next(predicted), strict=True):
                    cols = chunk.lines[row].split(b"\t")
                    cols[column] = tag.encode("utf-8")
                    chunk.lines[row] = b"\t".join(cols)
                sentences, tokens = sentences + 1, tokens + len(chunk.word_rows)
            out.writelines(chunk.lines)
    return sentences, tokens


def _text_sentences(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff") if lineno == 1 else raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{source}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x}); convert the input to UTF-8") from None
        if text.strip():
            yield lineno, text.strip()


def tag_text_lines(
    tagger: TrainedTagger,
    lines: Iterable[bytes],
    out: IO[bytes],
    source: str = "<stream>",
    batch_size: int = 256,
    tokenize: bool = False,
) -> tuple[int, int]:
    """Tag text, one sentence per non-blank line; write one CoNLL-U block per line.

    Each block says where its words came from: ``# source = SOURCE:LINE``, ``# text =`` the
    line as typed, and ``SpaceAfter=No`` in the MISC column of a token glued to the next one
    (UD's convention: the text can be rebuilt from the tokens). With ``tokenize``, lines are
    split by :func:`seqtag.tokenize.tokenize` (``don't`` -> ``do n't``); else at spaces.

    Returns:
        ``(sentences, tokens)`` tagged.

    Raises:
        ValueError: a line that is not UTF-8 (``source:line``), or no sentence at all.
    """
    def spans(text: str) -> list[tuple[int, int]]:
        if tokenize:
            from seqtag.tokenize import token_spans

            return token_spans(text)
        return [m.span() for m in re.finditer(r"\S+", text)]

    sentences = tokens = 0
    for group in _batched(_text_sentences(lines, source), batch_size, lambda _: 1):
        cuts = [spans(text) for _, text in group]
        words = [[text[a:b] for a, b in cut] for (_, text), cut in zip(group, cuts, strict=True)]
        for (lineno, text), ws, cut, tags in zip(group, words, cuts, tagger.tag(words, batch_size), strict=True):
            sentences += 1
            tokens += len(ws)
            blank = ["_"] * len(ws)
            upos, xpos = (tags, blank) if tagger.tagset == "upos" else (blank, tags)
            glued = ["SpaceAfter=No" if b == a2 else "_" for (_, b), (a2, _) in zip(cut, cut[1:], strict=False)]
            block = format_conllu(Sentence(ws, upos, xpos, sent_id=str(sentences), line=lineno, text=text),
                                  {"source": f"{source}:{lineno}"}, [*glued, "_"])
            out.write(block.encode("utf-8"))
    if sentences == 0:
        raise ValueError(f"{source}: no sentence to tag (the input is empty or blank)")
    return sentences, tokens


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", strict_version: bool = True) -> TrainedTagger:
    """Load a trained tagger from a checkpoint file (see :meth:`TrainedTagger.load`)."""
    return TrainedTagger.load(path, device=device, strict_version=strict_version)
