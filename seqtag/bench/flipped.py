"""An exact BiLSTM on padded batches, without packing: the right-to-left LSTM reads each
sentence reversed within its own length, so its padding, like the left-to-right one's, comes last.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqtag.models import Tagger, TaggerConfig
from seqtag.vocab import PAD_ID

__all__ = ["reverse_padded", "FlippedTagger"]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of a padded batch within its own length; padding stays at the end.

    Args:
        x: ``(B, T, *)`` padded batch (any dtype, any device).
        lengths: ``(B,)`` int64 lengths (any device), each in ``1..T``.

    Returns:
        ``(B, T, *)`` with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]`` and
        ``out[b, t] = x[b, t]`` on padding. Applying it twice gives ``x`` back.
    """
    b, t = x.shape[:2]
    if lengths.shape != (b,):
        raise ValueError(f"lengths must be (B,) = ({b},), got {tuple(lengths.shape)}")
    steps = torch.arange(t, device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    index = index.view(b, t, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class FlippedTagger(nn.Module):
    """A one-layer BiLSTM tagger that is exact on a *padded* batch, without packing.

    The left-to-right LSTM runs on the padded batch as it is: padding comes after each
    sentence, so it cannot reach a real position. The right-to-left LSTM runs, left to right, on
    each sentence reversed *within its length* (:func:`reverse_padded`), so its padding also
    comes last; its outputs are reversed back. The outputs at real positions equal those of
    :class:`seqtag.models.Tagger` with ``packed=True`` (same weights, see :meth:`from_tagger`),
    but the RNN runs on a plain padded tensor, the fastest path of PyTorch's CPU LSTM (oneDNN).

    Input ``words`` ``(B, T)`` int64, ``lengths`` ``(B,)`` int64 -> ``(B, T, C)`` logits
    (meaningless at padded positions).
    """

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        if config.num_layers != 1 or not config.bidirectional or config.char_vocab_size:
            raise ValueError("FlippedTagger is a one-layer bidirectional word-level tagger: "
                             "use num_layers=1, bidirectional=True and no char-CNN")
        self.config = config
        c = config
        rnn_cls = nn.LSTM if c.rnn == "lstm" else nn.GRU
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=PAD_ID)
        self.left_to_right = rnn_cls(c.embedding_dim, c.hidden_size, batch_first=True)
        self.right_to_left = rnn_cls(c.embedding_dim, c.hidden_size, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(2 * c.hidden_size, c.num_tags)

    @classmethod
    def from_tagger(cls, tagger: Tagger) -> FlippedTagger:
        """A FlippedTagger with ``tagger``'s weights (copied), on ``tagger``'s device."""
        model = cls(tagger.config).to(next(tagger.parameters()).device)
        with torch.no_grad():
            model.embedding.weight.copy_(tagger.embedding.weight)
            model.output.load_state_dict(tagger.output.state_dict())
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(model.left_to_right, f"{name}_l0").copy_(getattr(tagger.rnn, f"{name}_l0"))
                getattr(model.right_to_left, f"{name}_l0").copy_(getattr(tagger.rnn, f"{name}_l0_reverse"))
        return model

    def forward(self, words: Tensor, lengths: Tensor) -> Tensor:
        x = self.dropout(self.embedding(words))  # (B, T, E)
        forward, _ = self.left_to_right(x)  # (B, T, H)
        backward, _ = self.right_to_left(reverse_padded(x, lengths))  # (B, T, H), reversed
        out = torch.cat([forward, reverse_padded(backward, lengths)], dim=-1)  # (B, T, 2H)
        return self.output(self.dropout(out))
