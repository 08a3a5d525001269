"""What a checkpoint stores besides the weights: :class:`TrainConfig` and the checkpoint format.

This module sits between :mod:`seqtag.models` and :mod:`seqtag.train` so that a trained tagger
(:mod:`seqtag.tagger`) can be loaded without importing the training loop: ``tagger.py`` needs
``TrainConfig`` to read a checkpoint, and ``train.py`` needs ``TrainedTagger`` to return one;
keeping both in ``train.py`` would close a circle.

Each field's ``metadata["help"]`` is its one-line documentation; the command line's ``--help``
is generated from it (:mod:`seqtag.options`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from seqtag.io import check_known_fields
from seqtag.models import TaggerConfig

__all__ = ["TrainConfig", "CheckpointError", "CHECKPOINT_FORMAT", "split_overrides"]

CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainConfig:
    """How to train (the model's shape is :class:`~seqtag.models.TaggerConfig`'s business).

    Every field documents itself in ``metadata["help"]`` (``dataclasses.fields(TrainConfig)``).
    ``num_threads`` defaults to one because a small RNN's per-step kernels gain little from
    intra-op threads and lose a lot (10x measured) when the cores are shared with other processes.
    """

    epochs: int = field(default=12, metadata=_help("at most this many passes over the training set (int >= 1)"))
    batch_size: int = field(default=32, metadata=_help("sentences per training mini-batch (int >= 1)"))
    lr: float = field(default=2e-3, metadata=_help("Adam's learning rate (float > 0)"))
    optimizer: Literal["adam"] = field(default="adam", metadata=_help("the optimiser; only 'adam' for now"))
    weight_decay: float = field(default=0.0, metadata=_help("Adam's L2 penalty on the weights (float >= 0; 0: none)"))
    adam_beta2: float = field(
        default=0.999,
        metadata=_help("Adam's beta2, the decay of its running mean of squared gradients (float in (0, 1); "
                       "0.999 is PyTorch's default, Dozat & Manning's taggers and parsers use 0.9)"),
    )
    lr_decay: float = field(
        default=1.0, metadata=_help("multiply the learning rate by this after every epoch (float in (0, 1]; 1: constant)")
    )
    lr_schedule: Literal["constant", "cosine"] = field(
        default="constant",
        metadata=_help(
            "'constant' (times lr_decay after each epoch), or 'cosine': from lr down to 0 along half a cosine "
            "over all the steps of `epochs` epochs, updated every step (then lr_decay must be 1)"
        ),
    )
    ema: float = field(
        default=0.0,
        metadata=_help(
            "evaluate, choose and keep an exponential moving average of the weights, updated after every step "
            "with this decay (float in [0, 1); 0: off; 0.999 averages over about the last 1000 steps)"
        ),
    )
    label_smoothing: float = field(
        default=0.0,
        metadata=_help(
            "train against targets smoothed by this much: 1 - s on the true tag plus s spread evenly over "
            "all the real tags, <pad> excluded (float in [0, 1); 0: off; not with a CRF). Dev loss stays the "
            "plain cross-entropy"
        ),
    )
    aux_tagset: Literal["upos", "xpos"] | None = field(
        default=None,
        metadata=_help(
            "joint tagging: also learn this second tag set ('upos' or 'xpos', not tagset) with a second output "
            "layer over the same encoder, the two losses summed; the epoch is then chosen by the mean of both "
            "dev accuracies (none: one tag set; `--aux-tagset none` turns a preset's off)"
        ),
    )
    unk_signatures: bool = field(
        default=True,
        metadata=_help(
            "split <unk> by the unknown word's shape and suffix (<unk:Cap>, <unk:low-ing>...), "
            "learned from training words rarer than min_freq (true/false)"
        ),
    )
    clip_norm: float | None = field(
        default=5.0, metadata=_help("clip the gradients' global L2 norm to this (float > 0; None or 0: no clipping)")
    )
    patience: int = field(
        default=3, metadata=_help("stop after this many epochs without a better dev accuracy (int >= 0; 0: never)")
    )
    min_freq: int = field(
        default=2, metadata=_help("training words seen fewer times than this become <unk> (int >= 1)")
    )
    tagset: Literal["upos", "xpos"] = field(
        default="upos", metadata=_help("which tags to learn: 'upos' (17 universal) or 'xpos' (Penn Treebank)")
    )
    seed: int = field(
        default=0, metadata=_help("seeds Python, NumPy and PyTorch, the training subset and the batch order (int >= 0)")
    )
    device: str = field(default="auto", metadata=_help("'auto' (CUDA if available), 'cpu', 'cuda' or 'cuda:N'"))
    max_sentences: int | None = field(
        default=None, metadata=_help("train on a seeded random subset of this many sentences (int >= 1; None: all)")
    )
    max_tokens: int | None = field(
        default=None,
        metadata=_help("also cap each training batch's padded size B*T at this many tokens (int >= 1; None: no cap)"),
    )
    pool_factor: int = field(
        default=50,
        metadata=_help("the bucketing sampler sorts pools of this many batches by length (int >= 1; 1: least sorting)"),
    )
    eval_batch_size: int = field(
        default=256, metadata=_help("sentences per batch when evaluating or tagging (int >= 1)")
    )
    embeddings: str | None = field(
        default=None,
        metadata=_help(
            "pretrained word vectors loaded before training: 'glove50' (GloVe 6B, 50-d), or the path of a "
            "GloVe/fastText-style text file (word then numbers per line, .gz ok); None: random init"
        ),
    )
    num_threads: int | None = field(
        default=1,
        metadata=_help("PyTorch CPU threads while training, restored afterwards (int >= 1; None: leave as is)"),
    )
    expand_vocab: int = field(
        default=0,
        metadata=_help(
            "with embeddings: after training, add up to this many frequent words of the source that training "
            "never saw, mapped into the trained space; unknown words are then also looked up in lower case "
            "(int >= 0; 0: off)"
        ),
    )

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
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.adam_beta2 < 1:
            raise ValueError(f"adam_beta2 must be in (0, 1), got {self.adam_beta2}")
        if self.clip_norm is not None and self.clip_norm < 0:
            raise ValueError(f"clip_norm must be > 0, or 0/None for no clipping, got {self.clip_norm}")
        if self.optimizer != "adam":
            raise ValueError(f"optimizer must be 'adam', got {self.optimizer!r}")
        if self.tagset not in ("upos", "xpos"):
            raise ValueError(f"tagset must be 'upos' or 'xpos', got {self.tagset!r}")
        if self.aux_tagset not in (None, "upos", "xpos") or self.aux_tagset == self.tagset:
            raise ValueError(f"aux_tagset must be None or the other tag set than {self.tagset!r}, got {self.aux_tagset!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and self.lr_decay != 1.0:
            raise ValueError(f"lr_schedule='cosine' sets the decay itself: leave lr_decay at 1, got {self.lr_decay}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1) (0 = off), got {self.ema}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1) (0 = off), got {self.label_smoothing}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1 or None, got {self.max_sentences}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {self.max_tokens}")
        if self.expand_vocab < 0:
            raise ValueError(f"expand_vocab must be >= 0 (0 = off), got {self.expand_vocab}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, naming any key this version of the code does not know."""
        check_known_fields(cls, data)
        return cls(**data)


class CheckpointError(ValueError):
    """A checkpoint file that this version of the code cannot load; the message says why."""


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
