"""A Transformer-encoder tagger that needs the same masks as the LSTM: pads must stay invisible.

An LSTM sees a pad only if we feed it one (trick 2 packs them away). Self-attention is worse:
every token attends to every position, pads included, unless ``src_key_padding_mask`` hides them.
:class:`TransformerTagger` has the :class:`seqtag.models.Tagger` interface
(``forward(words, lengths, chars=None) -> (B, T, C)`` logits and ``predict``), so the book's
batching, losses and training loop work unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqtag.batching import lengths_to_mask
from seqtag.io import check_known_fields
from seqtag.models import CharCNN
from seqtag.vocab import PAD_ID

__all__ = ["TransformerConfig", "TransformerTagger", "sinusoidal_positions"]


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`TransformerTagger` (plain values, saved in checkpoints).

    Each field documents itself in ``metadata["help"]``; the sizes that come from the data are
    marked ``metadata["cli"] = False``.
    """

    vocab_size: int = field(metadata={"help": "number of word ids, <pad> = 0 included (from the data)", "cli": False})
    num_tags: int = field(metadata={"help": "number of tag ids, <pad> = 0 included (from the data)", "cli": False})
    d_model: int = field(default=128, metadata={"help": "width of every token vector (int >= 1, divisible by nhead)"})
    nhead: int = field(default=4, metadata={"help": "attention heads (int >= 1, must divide d_model)"})
    num_layers: int = field(default=2, metadata={"help": "encoder layers (int >= 1)"})
    dim_feedforward: int = field(
        default=256, metadata={"help": "hidden width of each layer's feed-forward block (int >= 1)"}
    )
    dropout: float = field(
        default=0.1, metadata={"help": "dropout inside the encoder layers and on the embeddings (float in [0, 1))"}
    )
    positional: Literal["sinusoidal", "learned", "none"] = field(
        default="sinusoidal",
        metadata={"help": "position information: sinusoidal (fixed, Vaswani et al. 2017), learned (one trained "
                          "vector per position, at most max_len) or none (word order invisible)"},
    )
    max_len: int = field(default=512, metadata={"help": "longest sentence accepted, in tokens (int >= 1)"})
    norm_first: bool = field(
        default=False,
        metadata={"help": "pre-LayerNorm layers (true) or the original post-LayerNorm (false; only post-LN "
                          "layers take PyTorch's nested-tensor fast path in eval mode)"},
    )
    char_vocab_size: int = field(
        default=0, metadata={"help": "0: no character features; else the character vocabulary's size, and a "
                                     "CharCNN's projected output is added to the word embedding", "cli": False}
    )
    char_embedding_dim: int = field(default=25, metadata={"help": "character embedding size of the char-CNN (int >= 1)"})
    char_filters: int = field(default=50, metadata={"help": "char-CNN output channels per word (int >= 1)"})
    char_kernel_size: int = field(default=3, metadata={"help": "char-CNN window in characters (int >= 1)"})

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.num_tags < 2:
            raise ValueError("vocab_size and num_tags must count <pad> and at least one real entry")
        for name in ("d_model", "nhead", "num_layers", "dim_feedforward", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.nhead:
            raise ValueError(f"nhead={self.nhead} must divide d_model={self.d_model}")
        if self.positional not in ("sinusoidal", "learned", "none"):
            raise ValueError(
                f"positional must be 'sinusoidal', 'learned' or 'none', got {self.positional!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        """Build from a dict, naming any key this version of the code does not know."""
        check_known_fields(cls, data)
        return cls(**data)


def sinusoidal_positions(max_len: int, dim: int) -> Tensor:
    """The fixed position table ``(max_len, dim)`` float32: sines on even, cosines on odd columns."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class TransformerTagger(nn.Module):
    """Sequence tagger: ``(B, T)`` word ids -> ``(B, T, C)`` logits, with a Transformer encoder.

    Layers: word embedding (``padding_idx=0``, scaled by ``sqrt(d_model)``) [+ projected
    :class:`~seqtag.models.CharCNN`] + positions -> dropout -> ``nn.TransformerEncoder``
    (``batch_first``) with ``src_key_padding_mask = ~mask`` -> linear.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.d_model, padding_idx=PAD_ID)
        self.char_cnn = (
            CharCNN(c.char_vocab_size, c.char_embedding_dim, c.char_filters, c.char_kernel_size)
            if c.char_vocab_size > 0
            else None
        )
        self.char_proj = nn.Linear(c.char_filters, c.d_model) if self.char_cnn else None
        self.positions: nn.Embedding | None = (
            nn.Embedding(c.max_len, c.d_model) if c.positional == "learned" else None
        )
        table = sinusoidal_positions(c.max_len, c.d_model)
        self.register_buffer("sinusoid", table if c.positional == "sinusoidal" else None, persistent=False)
        layer = nn.TransformerEncoderLayer(
            c.d_model, c.nhead, c.dim_feedforward, c.dropout, batch_first=True, norm_first=c.norm_first
        )
        self.encoder = nn.TransformerEncoder(
            layer,
            c.num_layers,
            norm=nn.LayerNorm(c.d_model) if c.norm_first else None,
            enable_nested_tensor=not c.norm_first,  # nested tensors need post-LN layers
        )
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.d_model, c.num_tags)

    def embed(self, words: Tensor, chars: Tensor | None = None) -> Tensor:
        """Token vectors with positions added, ``(B, T, d_model)``, before the encoder."""
        t = words.size(1)
        if t > self.config.max_len:
            raise ValueError(
                f"the batch has {t} time steps but max_len={self.config.max_len}: raise "
                "TransformerConfig.max_len (learned positions must then be trained) or split sentences"
            )
        x = self.embedding(words) * math.sqrt(self.config.d_model)
        if self.char_cnn is not None and self.char_proj is not None:
            if chars is None:
                raise ValueError("this tagger has a char-CNN: pass chars (B, T, W)")
            x = x + self.char_proj(self.char_cnn(chars))
        if self.positions is not None:
            x = x + self.positions.weight[:t]
        elif self.sinusoid is not None:
            x = x + self.sinusoid[:t]
        return self.dropout(x)

    def forward(
        self,
        words: Tensor,
        lengths: Tensor,
        chars: Tensor | None = None,
        *,
        mask_padding: bool = True,
    ) -> Tensor:
        """Scores for every position.

        Args:
            words: ``(B, T)`` int64 word ids on the model's device.
            lengths: ``(B,)`` int64 sentence lengths (on the CPU, as everywhere in ``seqtag``).
            chars: ``(B, T, W)`` int64 char ids, required iff the model has a char-CNN.
            mask_padding: ``True`` hides padded keys from attention (``src_key_padding_mask``).
                ``False`` reproduces the bug: real tokens attend to pads. Kept for the book's demo.

        Returns:
            ``(B, T, C)`` logits; rows at padded positions are meaningless (mask them out). In
            eval mode under ``torch.no_grad()`` PyTorch's fast path returns zeros there.
        """
        if words.dim() != 2:
            raise ValueError(f"words must be (B, T), got shape {tuple(words.shape)}")
        if words.is_floating_point():
            raise ValueError(f"words must be integer ids, got {words.dtype}; use .long()")
        mask = lengths_to_mask(lengths, words.size(1), words.device)  # checks the lengths too
        x = self.embed(words, chars)
        padding = None
        if mask_padding:
            padding = ~mask  # (B, T) bool, True = ignore this key (the opposite of our mask!)
        h = self.encoder(x, src_key_padding_mask=padding)
        return self.output(self.dropout(h))

    @torch.no_grad()
    def predict(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """Best tag id per position, ``(B, T)`` int64 (``PAD_ID`` at padded positions)."""
        scores = self.forward(words, lengths, chars)
        return self.decode(scores, lengths_to_mask(lengths, words.size(1), words.device))

    @torch.no_grad()
    def decode(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Best tag ids ``(B, T)`` int64 from this model's ``(B, T, C)`` scores and a bool ``(B, T)``
        mask on the same device: ``<pad>`` never predicted, ``PAD_ID`` at padded positions. The
        scores are not modified, so the same forward pass can also give the loss."""
        if scores.dim() != 3 or mask.shape != scores.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(
                f"scores must be (B, T, C) and mask (B, T) bool, got {tuple(scores.shape)} and "
                f"{tuple(mask.shape)} {mask.dtype}"
            )
        no_pad = torch.zeros(scores.size(-1), dtype=torch.bool, device=scores.device)
        no_pad[PAD_ID] = True
        return scores.masked_fill(no_pad, float("-inf")).argmax(-1).masked_fill(~mask, PAD_ID)

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
