"""The tagger the whole book grows: embedding -> [char-CNN or char-LSTM] -> RNN over a packed batch -> linear.

Every option the article's extension list names is a field of :class:`TaggerConfig`; the model
is built from that one dataclass, which is saved inside every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqtag.batching import lengths_to_mask
from seqtag.crf import CRF
from seqtag.io import check_known_fields
from seqtag.rnn import locked_dropout, run_flipped, run_packed
from seqtag.vocab import PAD_ID, UNK_ID

__all__ = ["TaggerConfig", "Tagger", "AuxHead", "CharCNN", "CharLSTM", "run_packed", "best_pairs"]


@dataclass
class TaggerConfig:
    """Hyper-parameters of :class:`Tagger` (plain values only, so it fits in JSON and checkpoints).

    Each field documents itself in ``metadata["help"]`` (the command line's ``--help`` is built
    from it, :mod:`seqtag.options`); ``vocab_size``, ``num_tags`` and ``char_vocab_size`` come from
    the data, not from options (``metadata["cli"] = False``).
    """

    vocab_size: int = field(metadata={"help": "number of word ids, <pad> = 0 and <unk> = 1 included (from the data)",
                                      "cli": False})
    num_tags: int = field(metadata={"help": "number of tag ids, <pad> = 0 included (from the data)", "cli": False})
    embedding_dim: int = field(default=100, metadata={"help": "word embedding size E (int >= 1)"})
    hidden_size: int = field(default=128, metadata={"help": "RNN state size H per direction (int >= 1)"})
    num_layers: int = field(default=1, metadata={"help": "stacked RNN layers (int >= 1)"})
    rnn: Literal["lstm", "gru"] = field(default="lstm", metadata={"help": "the recurrent cell: lstm or gru"})
    bidirectional: bool = field(
        default=True, metadata={"help": "read left-to-right and right-to-left (outputs 2H wide)"}
    )
    dropout: float = field(
        default=0.0, metadata={"help": "dropout on the embeddings and before the output layer (float in [0, 1))"}
    )
    rnn_dropout: float = field(
        default=0.0, metadata={"help": "dropout between stacked RNN layers, ignored with one layer (float in [0, 1))"}
    )
    char_vocab_size: int = field(
        default=0, metadata={"help": "0: no character features; else the size of the character vocabulary "
                                     "(from the data: use char_cnn)", "cli": False}
    )
    char_embedding_dim: int = field(default=25, metadata={"help": "character embedding size of the char-CNN or char-LSTM (int >= 1)"})
    char_filters: int = field(
        default=50, metadata={"help": "character features per word (char-CNN channels, or both char-LSTM directions together), added to the word vector (int >= 1)"}
    )
    char_kernel_size: int = field(default=3, metadata={"help": "char-CNN window in characters (int >= 1)"})
    char_encoder: Literal["cnn", "lstm"] = field(
        default="cnn",
        metadata={"help": "how a word's character features are computed: cnn (char_filters channels, max-pooled "
                          "over the word) or lstm (a character BiLSTM's two final states, char_filters/2 each; "
                          "char_filters must then be even)"},
    )
    freeze_embeddings: bool = field(
        default=False, metadata={"help": "keep the (pretrained) word embeddings fixed during training"}
    )
    packed: bool = field(
        default=True,
        metadata={"help": "run the RNN on a PackedSequence (the article's trick 2); false feeds the padded "
                          "tensor, right only for a unidirectional RNN (kept for the benchmark)"},
    )
    aux_num_tags: int = field(
        default=0,
        metadata={"help": "0: one output layer; else the size of a second tag set learned jointly by a second "
                          "output layer over the same encoder (from the data: use aux_tagset)", "cli": False},
    )
    flipped: bool = field(
        default=False,
        metadata={"help": "run the RNN exactly on the padded tensor, each sentence reversed within its length for "
                          "the right-to-left direction (seqtag.rnn.run_flipped): same weights and outputs as "
                          "packed, faster on a CPU; overrides packed"},
    )
    crf: bool = field(
        default=False,
        metadata={"help": "put a linear-chain CRF on top: its negative log-likelihood as the loss, Viterbi decoding"},
    )
    word_dropout: float = field(
        default=0.0,
        metadata={"help": "in training, replace each word by <unk> with this probability, so <unk> learns from "
                          "words like unseen ones (float in [0, 1))"},
    )
    locked_dropout: bool = field(
        default=False,
        metadata={"help": "dropout (dropout, and rnn_dropout between stacked layers) draws one mask per sentence "
                          "and feature, shared by all its words (variational dropout), instead of one per word; "
                          "between stacked layers it needs flipped"},
    )
    head_hidden: int = field(
        default=0,
        metadata={"help": "0: each output layer is one linear map of the encoder's states; else each tag set's "
                          "output layer first has a hidden layer of this many ReLU units, with dropout (an MLP "
                          "per tag set, as in Dozat et al.'s tagger) (int >= 0)"},
    )
    residual: bool = field(
        default=False,
        metadata={"help": "from the second stacked RNN layer on, add each layer's input (the states of the layer "
                          "below) to its output, a residual connection as in UDPipe 2's tagger; with more than one "
                          "layer it needs flipped"},
    )
    joint_decoding: bool = field(
        default=False,
        metadata={"help": "a jointly trained tagger (aux_tagset) picks each word's two tags together: the pair "
                          "seen in training with the highest sum of both output layers' log-probabilities, "
                          "instead of each layer's best tag on its own (no CRF)"},
    )

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.num_tags < 2:
            raise ValueError("vocab_size and num_tags must count <pad> and at least one real entry")
        if self.aux_num_tags == 1 or self.aux_num_tags < 0:
            raise ValueError(f"aux_num_tags must be 0 (none) or count <pad> and a real tag, got {self.aux_num_tags}")
        if self.rnn not in ("lstm", "gru"):
            raise ValueError(f"rnn must be 'lstm' or 'gru', got {self.rnn!r}")
        if self.char_encoder not in ("cnn", "lstm"):
            raise ValueError(f"char_encoder must be 'cnn' or 'lstm', got {self.char_encoder!r}")
        if self.joint_decoding and (not self.aux_num_tags or self.crf):
            raise ValueError("joint_decoding needs a second tag set (aux_num_tags, from aux_tagset) and no CRF")
        if self.locked_dropout and self.rnn_dropout and self.num_layers > 1 and not self.flipped:
            raise ValueError("locked_dropout between stacked layers needs flipped=True (nn.LSTM's own "
                             "rnn_dropout draws a new mask at every step)")
        if self.residual and self.num_layers > 1 and not self.flipped:
            raise ValueError("residual needs flipped=True (nn.LSTM runs its stacked layers in one call, with "
                             "nothing between them)")
        if self.char_encoder == "lstm" and self.char_filters % 2:
            raise ValueError(f"char_encoder='lstm' splits char_filters between two directions: make it even, "
                             f"got {self.char_filters}")
        for name in ("embedding_dim", "hidden_size", "num_layers", "char_embedding_dim", "char_filters",
                     "char_kernel_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.head_hidden < 0:
            raise ValueError(f"head_hidden must be >= 0 (0: no hidden layer), got {self.head_hidden}")
        for name in ("dropout", "rnn_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaggerConfig:
        """Build from a dict, naming any key this version of the code does not know."""
        check_known_fields(cls, data)
        return cls(**data)


def _distinct_words(chars: Tensor, deduplicate: bool | None) -> tuple[Tensor, Tensor | None]:
    """``(B, T, W)`` char ids -> the words to encode ``(U, W)`` and, when deduplicated, the
    ``(B*T,)`` index of each position's row among them (``None``: one row per position).

    ``deduplicate=None``: on CPU tensors only (see :meth:`CharCNN.encode`).
    """
    if chars.dim() != 3:
        raise ValueError(f"chars must be (B, T, W) char ids, got shape {tuple(chars.shape)}")
    if chars.is_floating_point():
        raise ValueError(f"chars must be integer ids, got {chars.dtype}; use .long()")
    flat = chars.reshape(-1, chars.size(2))
    if deduplicate is None:
        deduplicate = chars.device.type == "cpu" and not torch.compiler.is_compiling()
    if deduplicate:  # same characters, same vector: only time changes
        words, inverse = torch.unique(flat, dim=0, return_inverse=True)  # (U, W)
        return words, inverse
    return flat, None


class CharCNN(nn.Module):
    """Character features per word: embed chars, convolve, max-pool over the real chars only.

    Input ``(B, T, W)`` int64 char ids (0 = padding) -> output ``(B, T, F)``. A word's vector depends
    only on its own characters: padded characters are masked out of the max-pool, and
    all-padding words (sentence padding) give zeros.
    """

    def __init__(self, num_chars: int, dim: int, filters: int, kernel_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, dim, padding_idx=PAD_ID)
        self.conv = nn.Conv1d(dim, filters, kernel_size, padding=kernel_size // 2)
        self.out_dim = filters

    def forward(self, chars: Tensor) -> Tensor:
        """``(B, T, W)`` int64 char ids -> ``(B, T, F)`` features (see :meth:`encode`)."""
        return self.encode(chars)

    def encode(self, chars: Tensor, deduplicate: bool | None = None) -> Tensor:
        """Character features, ``(B, T, W)`` int64 -> ``(B, T, F)`` float.

        Args:
            chars: char ids, 0 = padding, on the module's device.
            deduplicate: convolve each distinct word once (a batch repeats "the" and "," many
                times, and all its sentence padding is one all-zero row). ``None``: on CPU tensors
                only, because ``torch.unique`` must read back from a GPU how many distinct words
                there are before it can return (a host sync every step); a GPU convolves every
                position instead, which it does in parallel anyway. Same result either way.
        """
        words, inverse = _distinct_words(chars, deduplicate)  # checks chars first
        b, t, w = chars.shape
        x = self.embedding(words).transpose(1, 2)  # (U, D, W)
        h = torch.relu(self.conv(x))[..., :w]  # (U, F, W); even kernels pad one extra step
        char_mask = (words != PAD_ID).unsqueeze(1)  # (U, 1, W)
        h = h.masked_fill(~char_mask, float("-inf")).amax(dim=2)  # (U, F)
        h = h.masked_fill(~char_mask.any(2), 0.0)  # words with no chars (padding) -> 0
        return (h if inverse is None else h[inverse]).reshape(b, t, -1)  # (B, T, F)


class CharLSTM(nn.Module):
    """Character features per word from a character BiLSTM (Ling et al. 2015; Plank et al. 2016).

    Input ``(B, T, W)`` int64 char ids (0 = padding, after each word's characters) -> output
    ``(B, T, F)``, ``F = out_dim``: the left-to-right state after the word's last character beside
    the right-to-left state after its first, ``F / 2`` each (a suffix and a prefix summary, in
    order, which a max-pooled CNN does not keep). Each word is packed to its own length, so no
    padded character is read and a word's vector depends only on its own characters; all-padding
    words (sentence padding) give zeros. Same interface as :class:`CharCNN`.
    """

    def __init__(self, num_chars: int, dim: int, out_dim: int) -> None:
        super().__init__()
        if out_dim < 2 or out_dim % 2:
            raise ValueError(f"CharLSTM's out_dim is split between two directions: give an even number >= 2, got {out_dim}")
        self.embedding = nn.Embedding(num_chars, dim, padding_idx=PAD_ID)
        self.rnn = nn.LSTM(dim, out_dim // 2, batch_first=True, bidirectional=True)
        self.out_dim = out_dim

    def forward(self, chars: Tensor) -> Tensor:
        """``(B, T, W)`` int64 char ids -> ``(B, T, F)`` features (see :meth:`encode`)."""
        return self.encode(chars)

    def encode(self, chars: Tensor, deduplicate: bool | None = None) -> Tensor:
        """Character features, ``(B, T, W)`` int64 -> ``(B, T, F)`` float.

        ``deduplicate`` as in :meth:`CharCNN.encode` (each distinct word read once on a CPU). The
        words' lengths go to the CPU for packing: on a GPU that is one wait per call.
        """
        words, inverse = _distinct_words(chars, deduplicate)  # (U, W)
        lengths = (words != PAD_ID).sum(1)  # (U,)
        # an all-padding word reads one padding character (any length >= 1 packs); zeroed below
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(words), lengths.clamp(min=1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)  # (2, U, F/2): left-to-right's last state, right-to-left's
        h = torch.cat([h_n[0], h_n[1]], dim=-1).masked_fill((lengths == 0).unsqueeze(1), 0.0)  # (U, F)
        b, t = chars.shape[:2]
        return (h if inverse is None else h[inverse]).reshape(b, t, -1)  # (B, T, F)


class Tagger(nn.Module):
    """Sequence tagger: ``(B, T)`` word ids -> ``(B, T, C)`` tag scores (logits).

    Layers: word embedding (``padding_idx=0``) [+ :class:`CharCNN` or :class:`CharLSTM`] -> dropout -> LSTM/GRU over a
    packed batch -> dropout -> linear (with ``head_hidden``: a ReLU layer and dropout, then linear). No
    ``init_hidden``: PyTorch starts from zero states sized by the batch it is given, which is what the
    article's random ``init_hidden`` should have been.
    """

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=PAD_ID)
        self.embedding.weight.requires_grad_(not c.freeze_embeddings)
        chars = c.char_vocab_size > 0
        self.char_cnn = (CharCNN(c.char_vocab_size, c.char_embedding_dim, c.char_filters, c.char_kernel_size)
                         if chars and c.char_encoder == "cnn" else None)
        self.char_lstm = (CharLSTM(c.char_vocab_size, c.char_embedding_dim, c.char_filters)
                          if chars and c.char_encoder == "lstm" else None)
        rnn_in = c.embedding_dim + (c.char_filters if chars else 0)
        rnn_cls = nn.LSTM if c.rnn == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            rnn_in,
            c.hidden_size,
            num_layers=c.num_layers,
            batch_first=True,
            bidirectional=c.bidirectional,
            dropout=c.rnn_dropout if c.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(c.dropout)
        width = c.hidden_size * (2 if c.bidirectional else 1)
        self.output = _output_layer(width, c.num_tags, c.head_hidden, c.dropout)
        # joint tagging: a second tag set read from the same encoder states (the losses are summed)
        self.aux_output = _output_layer(width, c.aux_num_tags, c.head_hidden, c.dropout) if c.aux_num_tags else None
        self.crf = CRF(c.num_tags, batch_first=True) if c.crf else None
        # joint decoding: which (tag, second tag) pairs exist, saved with the weights; every pair of
        # real tags until set_tag_pairs narrows them (which decodes as each layer alone would)
        self.tag_pairs: Tensor | None
        self.register_buffer("tag_pairs", _real_pairs(c.num_tags, c.aux_num_tags) if c.joint_decoding else None)

    def set_tag_pairs(self, pairs: Iterable[tuple[int, int]]) -> None:
        """The ``(tag id, second tag id)`` pairs joint decoding may choose (those seen in training:
        :func:`seqtag.vocab.seen_pairs`); every other pair is never predicted."""
        if self.tag_pairs is None:
            raise ValueError("this tagger does not decode jointly (TaggerConfig.joint_decoding)")
        table = torch.zeros_like(self.tag_pairs)
        for tag, second in pairs:
            if not (PAD_ID < tag < table.size(0) and PAD_ID < second < table.size(1)):
                raise ValueError(f"tag pair ({tag}, {second}) is outside the tag sets' real ids "
                                 f"1..{table.size(0) - 1} and 1..{table.size(1) - 1}")
            table[tag, second] = True
        if not bool(table.any(1)[PAD_ID + 1:].all()):
            missing = (~table.any(1)).nonzero().flatten().tolist()[1:]
            raise ValueError(f"tag ids {missing} have no pair: joint decoding could never predict them")
        self.tag_pairs.copy_(table)

    def load_pretrained(self, vectors: Tensor, found: Tensor | None = None) -> None:
        """Copy ``(V, E)`` pretrained vectors into the word embedding; ``<pad>``'s row stays zero.

        Args:
            vectors: ``(V, E)`` float, any device, e.g. :func:`seqtag.embeddings.pretrained_matrix`'s
                matrix, whose rows without a source vector are already random at the source's
                scale: copy them all (the default) so that no row keeps ``nn.Embedding``'s N(0, 1).
            found: optional ``(V,)`` bool: copy only these rows and keep the current values
                elsewhere (not modified).
        """
        weight = self.embedding.weight
        if vectors.shape != weight.shape:
            raise ValueError(
                f"pretrained vectors {tuple(vectors.shape)} do not match the embedding "
                f"{tuple(weight.shape)} (vocab_size, embedding_dim)"
            )
        if found is not None and (found.dtype != torch.bool or found.shape != (len(vectors),)):
            raise ValueError(f"found must be a ({len(vectors)},) bool mask, got {found.dtype} {tuple(found.shape)}")
        with torch.no_grad():
            # clone: found.cpu() is the caller's own tensor when it is already on the CPU
            rows = torch.ones(len(vectors), dtype=torch.bool) if found is None else found.cpu().clone()
            rows[PAD_ID] = False
            weight[rows.to(weight.device)] = vectors[rows].to(weight)
            weight[PAD_ID] = 0.0

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """Scores for every position.

        Args:
            words: ``(B, T)`` int64 word ids on the model's device.
            lengths: ``(B,)`` int64 sentence lengths on the CPU.
            chars: ``(B, T, W)`` int64 char ids, required iff the model has a char-CNN.

        Returns:
            ``(B, T, C)`` logits; rows at padded positions are meaningless (mask them out).
        """
        return self.output(self.features(words, lengths, chars))  # (B, T, C)

    def forward_heads(
        self, words: Tensor, lengths: Tensor, chars: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Both output layers' scores from one encoder pass: ``((B, T, C), (B, T, C_aux) or None)``."""
        h = self.features(words, lengths, chars)
        return self.output(h), (self.aux_output(h) if self.aux_output is not None else None)

    @torch.no_grad()
    def decode_heads(self, scores: Tensor, aux_scores: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Both tag sets' ids ``((B, T), (B, T))`` from :meth:`forward_heads`' scores.

        With ``config.joint_decoding``, the best pair allowed by :attr:`tag_pairs` (the sum of the
        two layers' log-probabilities), so the two tags always agree (an ``NNP`` is a ``PROPN``);
        else each layer's own best tag (:meth:`decode` and :meth:`AuxHead.decode`).
        """
        if self.tag_pairs is None:
            return self.decode(scores, mask), _argmax_tags(aux_scores, mask)
        return best_pairs(scores, aux_scores, self.tag_pairs, mask)

    def features(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """The encoder's ``(B, T, D*H)`` states (after dropout) that the output layers read; inputs as :meth:`forward`."""
        if words.dim() != 2:
            raise ValueError(f"words must be (B, T), got shape {tuple(words.shape)}")
        if words.is_floating_point():
            raise ValueError(f"words must be integer ids, got {words.dtype}; use .long()")
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.config.word_dropout
            words = words.masked_fill(drop & (words != PAD_ID), UNK_ID)
        x = self.embedding(words)  # (B, T, E)
        encoder = self.char_cnn if self.char_cnn is not None else self.char_lstm
        if encoder is not None:
            if chars is None:
                raise ValueError(f"this tagger has a char-{self.config.char_encoder.upper()}: pass chars (B, T, W)")
            x = torch.cat([x, encoder(chars)], dim=-1)
        if self.config.flipped:
            out = run_flipped(self.rnn, self._drop(x), lengths,  # type: ignore[arg-type]
                              locked=self.config.locked_dropout, residual=self.config.residual)
        else:
            out, _ = run_packed(self.rnn, self._drop(x), lengths, packed=self.config.packed)
        return self._drop(out)

    def _drop(self, x: Tensor) -> Tensor:
        """``config.dropout`` on ``(B, T, D)`` features: per word, or per sentence (``locked_dropout``)."""
        if self.config.locked_dropout:
            return locked_dropout(x, self.config.dropout, self.training)
        return self.dropout(x)

    @torch.no_grad()
    def predict(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        """Best tag id per position, ``(B, T)`` int64 (``PAD_ID`` at padded positions).

        One forward pass then :meth:`decode`. Inputs as for :meth:`forward`.
        """
        mask = lengths_to_mask(lengths, words.size(1), words.device)
        if self.tag_pairs is not None:  # joint decoding needs the second layer's scores too
            main, second = self.forward_heads(words, lengths, chars)
            assert second is not None
            return self.decode_heads(main, second, mask)[0]
        return self.decode(self.forward(words, lengths, chars), mask)

    @torch.no_grad()
    def decode(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Best tag ids from this model's own ``scores`` (its :meth:`forward` output), ``(B, T)`` int64.

        With ``config.crf`` the best whole sequence (Viterbi on the same emissions), else the best
        tag at each position; ``<pad>`` is never predicted, and padded positions get ``PAD_ID``.
        This layer's scores alone: with ``config.joint_decoding`` use :meth:`decode_heads` (as
        :meth:`predict` does).
        ``scores`` is not modified, so the same tensor can also give the loss
        (:func:`seqtag.losses.scores_loss`): one forward pass for both.

        Args:
            scores: ``(B, T, C)`` float, on the model's device.
            mask: ``(B, T)`` bool, ``True`` on real tokens, on the same device.
        """
        if scores.dim() != 3 or mask.shape != scores.shape[:2]:
            raise ValueError(
                f"scores must be (B, T, C) and mask (B, T), got {tuple(scores.shape)} and {tuple(mask.shape)}"
            )
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool (True = real token), got {mask.dtype}")
        if self.crf is None:
            return _argmax_tags(scores, mask)
        return self.crf.viterbi(_without_pad(scores), mask, pad_value=PAD_ID)[0]

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


class AuxHead(nn.Module):
    """A jointly trained :class:`Tagger`'s second output layer, seen as a tagger of its own.

    ``forward`` gives the ``(B, T, C_aux)`` scores of ``tagger.aux_output`` and ``decode`` the best
    tag per position, so :func:`seqtag.metrics.evaluate` scores the second tag set unchanged.
    Shares the tagger's parameters (nothing is copied).
    """

    crf = None

    def __init__(self, tagger: Tagger) -> None:
        super().__init__()
        if tagger.aux_output is None:
            raise ValueError("this tagger has no second output layer (train it with aux_tagset)")
        self.tagger = tagger
        self.config = TaggerConfig.from_dict({**tagger.config.to_dict(), "num_tags": tagger.config.aux_num_tags,
                                              "aux_num_tags": 0, "crf": False, "joint_decoding": False})

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        aux = self.tagger.aux_output
        assert aux is not None
        return aux(self.tagger.features(words, lengths, chars))

    @torch.no_grad()
    def decode(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Best tag ids ``(B, T)`` of this layer alone, ``PAD_ID`` at padded positions (see
        :meth:`Tagger.decode`; a tagger with ``joint_decoding`` decodes both layers together in
        :meth:`Tagger.decode_heads`, which :meth:`predict` uses)."""
        return _argmax_tags(scores, mask)

    @torch.no_grad()
    def predict(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None) -> Tensor:
        main, second = self.tagger.forward_heads(words, lengths, chars)
        assert second is not None
        return self.tagger.decode_heads(main, second, lengths_to_mask(lengths, words.size(1), words.device))[1]


def _output_layer(width: int, num_tags: int, hidden: int, dropout: float) -> nn.Module:
    """``(B, T, width)`` states -> ``(B, T, num_tags)`` scores: one linear map, or with ``hidden``
    units a ReLU layer and dropout before it."""
    if not hidden:
        return nn.Linear(width, num_tags)
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_tags))


def _real_pairs(num_tags: int, aux_num_tags: int) -> Tensor:
    """``(C, C_aux)`` bool: every pair of real tags, none with ``<pad>``."""
    pairs = torch.ones(num_tags, aux_num_tags, dtype=torch.bool)
    pairs[PAD_ID, :] = pairs[:, PAD_ID] = False
    return pairs


def _without_pad(scores: Tensor) -> Tensor:
    """A copy of ``(..., C)`` scores where ``<pad>`` can never win (the caller's tensor is kept)."""
    no_pad = torch.zeros(scores.size(-1), dtype=torch.bool, device=scores.device)
    no_pad[PAD_ID] = True
    return scores.masked_fill(no_pad, float("-inf"))


def _argmax_tags(scores: Tensor, mask: Tensor) -> Tensor:
    """The best tag id at each position of ``(B, T, C)`` scores, never ``<pad>``; ``PAD_ID`` where ``mask`` is False."""
    return _without_pad(scores).argmax(-1).masked_fill(~mask, PAD_ID)


def best_pairs(scores: Tensor, aux_scores: Tensor, pairs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The best allowed pair of tags at each position: ``((B, T), (B, T))`` ids, ``PAD_ID`` where
    ``mask`` is False.

    Args:
        scores, aux_scores: ``(B, T, C)`` and ``(B, T, C_aux)`` logits of two output layers, or
            log-probabilities (e.g. of an ensemble's averaged probabilities): each position's
            pair maximises the sum of both layers' log-probabilities.
        pairs: ``(C, C_aux)`` bool, the pairs that may be chosen (``Tagger.tag_pairs``; none with ``<pad>``).
        mask: ``(B, T)`` bool, ``True`` on real tokens.
    """
    if aux_scores.shape[:2] != scores.shape[:2] or mask.shape != scores.shape[:2]:
        raise ValueError(f"scores (B, T, C), aux_scores (B, T, C_aux) and mask (B, T) disagree: "
                         f"{tuple(scores.shape)}, {tuple(aux_scores.shape)}, {tuple(mask.shape)}")
    both = scores.log_softmax(-1).unsqueeze(-1) + aux_scores.log_softmax(-1).unsqueeze(-2)  # (B, T, C, C_aux)
    best = both.masked_fill(~pairs, float("-inf")).flatten(-2).argmax(-1)
    width = aux_scores.size(-1)
    return (best // width).masked_fill(~mask, PAD_ID), (best % width).masked_fill(~mask, PAD_ID)
