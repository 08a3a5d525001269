"""Training and evaluating a tagger: one readable loop, early stopping, checkpoints.

The loop (:func:`fit`) fits on one screen, nanoGPT-style: bucketed mini-batches, Adam, gradient
clipping, one dev evaluation per epoch, early stopping on dev accuracy, the best weights kept.
Everything needed to tag again later is a :class:`TrainedTagger`: the model, its three
vocabularies, the tag set's name and both configurations. Its checkpoint holds only plain
Python values and tensors, so it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm  # plain bars: tqdm.auto wants ipywidgets in notebooks

from seqtag import __version__
from seqtag.batching import BucketBatchSampler, TaggingDataset, collate, encode_chars
from seqtag.data import Sentence, tags_of
from seqtag.losses import sequence_loss
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import resolve_device, seed_everything
from seqtag.vocab import PAD_ID, UNK_ID, Vocab, normalize_word

__all__ = [
    "TrainConfig",
    "TrainedTagger",
    "Evaluation",
    "CheckpointError",
    "fit",
    "evaluate",
    "build_vocabs",
    "unk_signature",
    "lookup_forms",
    "split_overrides",
    "subset",
    "cpu_threads",
    "save_atomically",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes


@dataclass
class TrainConfig:
    """How to train (the model's shape is :class:`~seqtag.models.TaggerConfig`'s business).

    Attributes:
        epochs: at most this many passes over the training set.
        batch_size: sentences per mini-batch.
        lr: Adam's learning rate.
        optimizer: only ``"adam"`` for now.
        weight_decay: Adam's L2 penalty.
        lr_decay: multiply the learning rate by this after every epoch (1.0: constant).
        unk_signatures: split ``<unk>`` by the unknown word's shape (see :func:`unk_signature`):
            ``<unk:Cap>`` for ``Qaim``, ``<unk:low-ing>`` for ``blogging``... The classes are
            learned from the training words rarer than ``min_freq``.
        clip_norm: clip the gradients' global L2 norm to this (``None`` or 0: no clipping).
        patience: stop after this many epochs without a better dev accuracy (0: never stop early).
        min_freq: words seen fewer times in training become ``<unk>``.
        tagset: ``"upos"`` (17 universal tags) or ``"xpos"`` (Penn Treebank tags).
        seed: seeds Python, NumPy and PyTorch, the subset and the batch order.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        max_sentences: train on a seeded random subset of this many sentences (``None``: all).
        max_tokens: also cap each training batch's padded size ``B * T``.
        pool_factor: the bucketing sampler's pool size in batches.
        eval_batch_size: sentences per batch when evaluating or tagging.
        embeddings: ``None``, ``"glove50"`` or the path of a GloVe text file, loaded into the
            word embedding before training (see :mod:`seqtag.embeddings`).
        expand_vocab: with ``embeddings``, after training add up to this many of the source's most
            frequent words that training never saw, their vectors mapped into the trained
            embedding space (:func:`seqtag.embeddings.expand_vocabulary`); unknown words are then
            also looked up in lower case. ``0``: off.
        num_threads: PyTorch CPU threads while training (restored afterwards); ``None`` leaves
            the setting alone. One thread is the default because a small RNN's per-step kernels
            gain little from intra-op threads, and lose a lot (10x measured) when the cores are
            shared with other processes.
    """

    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    optimizer: Literal["adam"] = "adam"
    weight_decay: float = 0.0
    lr_decay: float = 1.0
    unk_signatures: bool = True
    clip_norm: float | None = 5.0
    patience: int = 3
    min_freq: int = 2
    tagset: Literal["upos", "xpos"] = "upos"
    seed: int = 0
    device: str = "auto"
    max_sentences: int | None = None
    max_tokens: int | None = None
    pool_factor: int = 50
    eval_batch_size: int = 256
    embeddings: str | None = None
    num_threads: int | None = 1
    expand_vocab: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "min_freq", "pool_factor", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0 (0 = no early stopping), got {self.patience}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.optimizer != "adam":
            raise ValueError(f"optimizer must be 'adam', got {self.optimizer!r}")
        if self.tagset not in ("upos", "xpos"):
            raise ValueError(f"tagset must be 'upos' or 'xpos', got {self.tagset!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1 or None, got {self.max_sentences}")
        if self.expand_vocab < 0:
            raise ValueError(f"expand_vocab must be >= 0 (0 = off), got {self.expand_vocab}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, naming any key this version of the code does not know."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}: checkpoint from another version?")
        return cls(**data)


class CheckpointError(ValueError):
    """A checkpoint file that this version of the code cannot load; the message says why."""


# --- vocabularies, subsets, options -----------------------------------------------------------


_SUFFIXES = ("ing", "ed", "ly", "ion", "er", "est", "al", "ive", "ous", "able", "ful", "ness", "ment", "ity", "s")


def unk_signature(word: str) -> str:
    """The class of a word the vocabulary does not know: its shape and, for words, a suffix.

    >>> unk_signature("Qaim"), unk_signature("blogging"), unk_signature("1,500"), unk_signature("NATO")
    ('<unk:Cap>', '<unk:low-ing>', '<unk:num>', '<unk:CAPS>')
    """
    if any(ch.isdigit() for ch in word):
        return "<unk:num>"
    if not any(ch.isalpha() for ch in word):
        return "<unk:sym>"
    if word.isupper() and len(word) > 1:
        return "<unk:CAPS>"
    shape = "Cap" if word[0].isupper() else "hyph" if "-" in word else "low"
    lower = word.lower()
    suffix = next((x for x in _SUFFIXES if lower.endswith(x) and len(lower) > len(x) + 2), None)
    return f"<unk:{shape}-{suffix}>" if suffix else f"<unk:{shape}>"


def lookup_forms(words: Vocab, sentence: Sequence[str], signatures: bool, lowercase: bool = False) -> list[str]:
    """The vocabulary entries for ``sentence``: normalised words, unknown ones as their signature.

    With ``lowercase``, an unknown word whose lower case is known (``Cream`` -> ``cream``) takes
    that entry first (used with :attr:`TrainConfig.expand_vocab`, whose GloVe words are lower case).
    """
    forms = [normalize_word(w) for w in sentence]
    if lowercase:
        forms = [f.lower() if f not in words and f.lower() in words else f for f in forms]
    if not signatures:
        return forms
    return [f if f in words else unk_signature(w) for f, w in zip(forms, sentence, strict=True)]


def build_vocabs(
    sentences: Sequence[Sentence], tagset: str, min_freq: int, signatures: bool = False
) -> tuple[Vocab, Vocab, Vocab]:
    """``(words, tags, chars)`` vocabularies of a training set.

    Words are normalised first (:func:`~seqtag.vocab.normalize_word`) and kept when seen at least
    ``min_freq`` times; with ``signatures``, the rarer ones are counted as their
    :func:`unk_signature` instead. Tags have no ``<unk>``; characters come from the raw words.
    """
    words = Vocab.build([[normalize_word(w) for w in s.words] for s in sentences], min_freq=min_freq)
    if signatures:  # the rare words' classes, in the order of their frequency
        rare = Vocab.build([[unk_signature(w) for w in s.words if normalize_word(w) not in words] for s in sentences])
        words = Vocab([*words.itos[2:], *rare.itos[2:]])
    tags = Vocab.build(tags_of(sentences, tagset), unk=False)  # type: ignore[arg-type]
    chars = Vocab.build([list(w) for s in sentences for w in s.words])
    return words, tags, chars


def subset(sentences: Sequence[Sentence], n: int | None, seed: int = 0) -> list[Sentence]:
    """A seeded random subset of ``n`` sentences in their original order (all when ``n`` is None)."""
    if n is None or n >= len(sentences):
        return list(sentences)
    keep = sorted(random.Random(seed).sample(range(len(sentences)), n))
    return [sentences[i] for i in keep]


# Options that are not TaggerConfig fields: the sizes come from the data.
_DERIVED = ("vocab_size", "num_tags", "char_vocab_size")


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{name: value}`` (a preset, CLI options) into TaggerConfig and TrainConfig overrides.

    ``"char_cnn": True`` stands for "use a character CNN" (its size is known only from the data).

    Raises:
        ValueError: a name that is neither (the message lists the valid names).
    """
    model_names = {f.name for f in fields(TaggerConfig)} - set(_DERIVED) | {"char_cnn"}
    train_names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - model_names - train_names)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown}; model options: {sorted(model_names)}; "
            f"training options: {sorted(train_names)}"
        )
    model = {k: v for k, v in overrides.items() if k in model_names}
    train = {k: v for k, v in overrides.items() if k in train_names}
    return model, train


# --- the trained tagger -----------------------------------------------------------------------


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
        return save_atomically(self.to_checkpoint(), path)

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


def save_atomically(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` into a temporary file next to ``path``, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Scores of a tagger on labelled data.

    ``oov`` means "the word is ``<unk>`` for the model" (not in the training vocabulary after
    :func:`~seqtag.vocab.normalize_word` and ``min_freq``).

    Attributes:
        tokens, correct: real tokens and correctly tagged ones.
        oov_tokens, oov_correct: the same for out-of-vocabulary words.
        loss: mean per-token loss (:func:`~seqtag.losses.sequence_loss`).
        confusion: ``(C, C)`` int64 counts, rows = gold tag, columns = predicted, ``<pad>`` excluded.
        labels: the ``C`` tag names of the rows and columns.
        predictions: predicted tags per sentence, in the input order.
    """

    tokens: int
    correct: int
    oov_tokens: int
    oov_correct: int
    loss: float
    confusion: Tensor
    labels: list[str]
    predictions: list[list[str]]

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.tokens, 1)

    @property
    def oov_accuracy(self) -> float:
        return self.oov_correct / max(self.oov_tokens, 1)

    @property
    def iv_accuracy(self) -> float:
        return (self.correct - self.oov_correct) / max(self.tokens - self.oov_tokens, 1)

    @property
    def oov_rate(self) -> float:
        return self.oov_tokens / max(self.tokens, 1)

    def per_tag(self) -> dict[str, dict[str, float]]:
        """``{tag: {"precision", "recall", "f1", "support"}}`` from the confusion matrix."""
        m = self.confusion.double()
        tp, gold, pred = m.diag(), m.sum(1), m.sum(0)
        out = {}
        for i, tag in enumerate(self.labels):
            p = float(tp[i] / pred[i]) if pred[i] > 0 else 0.0
            r = float(tp[i] / gold[i]) if gold[i] > 0 else 0.0
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            out[tag] = {"precision": p, "recall": r, "f1": f1, "support": int(gold[i])}
        return out

    def summary(self) -> dict[str, float | int]:
        """The headline numbers as a JSON-able dict."""
        return {
            "accuracy": self.accuracy,
            "tokens": self.tokens,
            "oov_accuracy": self.oov_accuracy,
            "oov_tokens": self.oov_tokens,
            "oov_rate": self.oov_rate,
            "iv_accuracy": self.iv_accuracy,
            "loss": self.loss,
        }


def _chars(batch: Any, device: torch.device) -> Tensor | None:
    return None if batch.chars is None else batch.chars.to(device)


@torch.no_grad()
def evaluate(model: Tagger, loader: DataLoader, tags: Vocab, unknown_ids: Sequence[int] = (UNK_ID,)) -> Evaluation:
    """Evaluate ``model`` on a labelled loader (batches with ``tags`` and ``index``).

    ``unknown_ids`` are the word ids counted as out-of-vocabulary (``<unk>`` and its classes).
    """
    model.eval()
    device = next(model.parameters()).device
    unknown = torch.tensor(list(unknown_ids), dtype=torch.int64, device=device)
    c = len(tags)
    confusion = torch.zeros(c, c, dtype=torch.int64)
    oov_tokens = oov_correct = 0
    loss_sum = 0.0
    n = len(loader.dataset)  # type: ignore[arg-type]
    predictions: list[list[str]] = [[] for _ in range(n)]
    for batch in loader:
        batch = batch.to(device)
        loss_sum += float(sequence_loss(model, batch, reduction="sum"))
        pred = model.predict(batch.words, batch.lengths, batch.chars)
        mask, gold = batch.mask, batch.tags
        confusion += torch.bincount((gold[mask] * c + pred[mask]).cpu(), minlength=c * c).view(c, c)
        oov = mask & torch.isin(batch.words, unknown)
        oov_tokens += int(oov.sum())
        oov_correct += int((pred.eq(gold) & oov).sum())
        for row, i, length in zip(pred.cpu(), batch.index.tolist(), batch.lengths.tolist(), strict=True):
            predictions[i] = tags.decode(row[:length])
    tokens = int(confusion.sum())
    real = confusion[1:, 1:]  # drop <pad>: never gold, never predicted
    return Evaluation(
        tokens=tokens,
        correct=int(confusion.diag().sum()),
        oov_tokens=oov_tokens,
        oov_correct=oov_correct,
        loss=loss_sum / max(tokens, 1),
        confusion=real.clone(),
        labels=tags.itos[PAD_ID + 1 :],
        predictions=predictions,
    )


# --- training ---------------------------------------------------------------------------------


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, then restore (``None``: leave it alone)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    config: TrainConfig | None = None,
    model_options: dict[str, Any] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> TrainedTagger:
    """Train a :class:`~seqtag.models.Tagger` on ``train``, choosing the epoch by ``dev`` accuracy.

    Args:
        train, dev: labelled sentences (:func:`seqtag.data.load_ewt`).
        config: how to train (defaults: :class:`TrainConfig`).
        model_options: :class:`~seqtag.models.TaggerConfig` fields (without the sizes, which
            come from the data) and ``char_cnn: bool``.
        checkpoint: also write the best model there (atomically) each time it improves.
        progress: show tqdm bars (``TQDM_DISABLE=1`` turns them off too).
        on_epoch: called after each epoch's dev evaluation with ``(epoch, history so far)``;
            an exception it raises stops training (Optuna's pruning raises ``TrialPruned``).

    Returns:
        The best model (by dev accuracy), in eval mode, with ``history``: per-epoch
        ``train_loss``, ``dev_loss``, ``dev_accuracy`` and ``seconds``.
    """
    cfg = config or TrainConfig()
    with cpu_threads(cfg.num_threads):
        return _fit(train, dev, cfg, dict(model_options or {}), checkpoint, progress, on_epoch)


def _expand_vocab(result: TrainedTagger, source: str, max_words: int) -> None:
    """Vocabulary expansion after training (:attr:`TrainConfig.expand_vocab`), in place."""
    from seqtag.embeddings import expand_vocabulary

    model = result.model
    old = model.embedding.weight
    words, weight, _ = expand_vocabulary(result.words, old, source, max_words)
    embedding = torch.nn.Embedding(len(words), weight.size(1), padding_idx=PAD_ID).to(old.device)
    with torch.no_grad():
        embedding.weight.copy_(weight)
    embedding.weight.requires_grad_(old.requires_grad)
    model.embedding = embedding
    model.config.vocab_size = len(words)
    result.words = words


def _fit(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    cfg: TrainConfig,
    options: dict[str, Any],
    checkpoint: str | os.PathLike[str] | None,
    progress: bool,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None,
) -> TrainedTagger:
    use_chars = bool(options.pop("char_cnn", False))
    if split_overrides(options)[1]:  # unknown names raise there, with the list of valid ones
        raise ValueError(f"{sorted(split_overrides(options)[1])} are TrainConfig fields: set them in config")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    train = subset(train, cfg.max_sentences, cfg.seed)
    if not train or not dev:
        raise ValueError("fit needs at least one training and one dev sentence")
    words, tags, chars = build_vocabs(train, cfg.tagset, cfg.min_freq, cfg.unk_signatures)
    model_cfg = TaggerConfig(len(words), len(tags), char_vocab_size=len(chars) if use_chars else 0, **options)
    model = Tagger(model_cfg).to(device)
    result = TrainedTagger(model, words, tags, chars, cfg.tagset, cfg)
    if cfg.embeddings:
        from seqtag.embeddings import pretrained_matrix  # optional extra; imported only when used

        vectors, found = pretrained_matrix(words, cfg.embeddings, model_cfg.embedding_dim)
        model.load_pretrained(vectors, found)
    train_ds = result.dataset([s.words for s in train], tags_of(train, cfg.tagset))  # type: ignore[arg-type]
    sampler = BucketBatchSampler(
        train_ds.lengths, cfg.batch_size, max_tokens=cfg.max_tokens, pool_factor=cfg.pool_factor, seed=cfg.seed
    )
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate)
    dev_loader = result.loader(result.dataset([s.words for s in dev], tags_of(dev, cfg.tagset)))  # type: ignore[arg-type]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: dict[str, list[float]] = {"train_loss": [], "dev_loss": [], "dev_accuracy": [], "seconds": []}
    best_acc, best_state, stale = -1.0, None, 0
    bar = {} if progress else {"disable": True}
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        sampler.set_epoch(epoch)  # a new batch order each epoch, the same for the same seed
        model.train()
        loss_sum, tokens = 0.0, 0
        for batch in tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, **bar):
            batch = batch.to(device)
            loss = sequence_loss(model, batch)  # mean over the batch's real tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_norm:  # LSTMs' gradients can spike on long sentences
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            optimizer.step()
            loss_sum, tokens = loss_sum + loss.item() * batch.num_tokens, tokens + batch.num_tokens
        ev = evaluate(model, dev_loader, tags, result.unknown_ids)
        for key, value in [("train_loss", loss_sum / tokens), ("dev_loss", ev.loss),
                           ("dev_accuracy", ev.accuracy), ("seconds", time.perf_counter() - start)]:
            history[key].append(value)
        if on_epoch is not None:
            on_epoch(epoch, history)
        if ev.accuracy > best_acc:  # keep the best weights, in memory and (optionally) on disk
            best_acc, stale, result.best_epoch = ev.accuracy, 0, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.history = history
            if checkpoint is not None:
                result.save(checkpoint)
        else:
            stale += 1
            if cfg.patience and stale >= cfg.patience:
                break  # early stopping: dev accuracy has not improved for `patience` epochs
        for group in optimizer.param_groups:  # big steps first, finer ones as the epochs go by
            group["lr"] *= cfg.lr_decay
    assert best_state is not None
    model.load_state_dict(best_state)
    if cfg.embeddings and cfg.expand_vocab:
        _expand_vocab(result, cfg.embeddings, cfg.expand_vocab)
    result.history = history
    if checkpoint is not None:
        result.save(checkpoint)  # the best weights again, now with the full history
    model.eval()
    return result
