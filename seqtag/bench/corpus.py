"""The sentences the benchmark times: EWT (or a synthetic stand-in) already turned into ids."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import torch
from torch import Tensor

from seqtag.vocab import Vocab, normalize_word

__all__ = ["BenchCorpus", "ewt_corpus", "synthetic_corpus"]


@dataclass
class BenchCorpus:
    """Sentences already turned into ids: what the benchmark feeds the tagger.

    Attributes:
        words: ``N`` 1-D int64 CPU tensors of word ids, each of length ``L_i >= 1``.
        tags: ``N`` 1-D int64 CPU tensors of tag ids, ``tags[i].shape == words[i].shape``.
        vocab_size: number of word ids (``<pad>`` included).
        num_tags: number of tag ids (``<pad>`` included).
        name: where the sentences come from (printed and stored in the JSON).
    """

    words: list[Tensor]
    tags: list[Tensor]
    vocab_size: int
    num_tags: int
    name: str = "corpus"

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("the benchmark corpus has no sentences")
        if len(self.words) != len(self.tags):
            raise ValueError(f"{len(self.words)} word sequences but {len(self.tags)} tag sequences")
        for i, (w, t) in enumerate(zip(self.words, self.tags, strict=True)):
            if w.dim() != 1 or w.numel() == 0 or w.shape != t.shape:
                raise ValueError(
                    f"sentence {i}: words {tuple(w.shape)} and tags {tuple(t.shape)} must be the "
                    "same non-empty 1-D length (drop empty sentences first)"
                )

    @property
    def lengths(self) -> list[int]:
        """Sentence lengths in tokens, ``N`` ints."""
        return [int(w.numel()) for w in self.words]

    def __len__(self) -> int:
        return len(self.words)


def ewt_corpus(
    split: str = "train",
    min_freq: int = 2,
    data_dir: str | os.PathLike[str] | None = None,
    vocab_split: str = "train",
) -> BenchCorpus:
    """UD English EWT ``split`` encoded with the word vocabulary of ``vocab_split`` and UPOS tags.

    The vocabulary keeps words seen ``min_freq`` times in ``vocab_split`` (others become
    ``<unk>``, as in training), so ``ewt_corpus("test")`` is the test set as a tagger trained on
    train sees it. Uses :func:`seqtag.data.load_ewt` (``SEQTAG_DATA`` or the download cache).
    """
    from seqtag.data import load_ewt  # imported here: tests and synthetic runs need no corpus

    def read(name: str) -> list:
        return [s for s in load_ewt(name, data_dir) if len(s.words) > 0]  # type: ignore[arg-type]

    source = read(vocab_split)
    sentences = source if split == vocab_split else read(split)
    words = Vocab.build([[normalize_word(w) for w in s.words] for s in source], min_freq=min_freq)
    tags = Vocab.build([s.upos for s in source], unk=False)
    return BenchCorpus(
        words=[torch.tensor(words.encode([normalize_word(w) for w in s.words]), dtype=torch.int64)
               for s in sentences],
        tags=[torch.tensor(tags.encode(s.upos), dtype=torch.int64) for s in sentences],
        vocab_size=len(words),
        num_tags=len(tags),
        name=f"UD English EWT {split} ({len(sentences)} sentences)",
    )


def synthetic_corpus(
    num_sentences: int = 200,
    vocab_size: int = 50,
    num_tags: int = 5,
    max_len: int = 40,
    seed: int = 0,
) -> BenchCorpus:
    """A tiny random corpus with a long-tailed length distribution (for tests and dry runs).

    Lengths follow ``1 + Exponential(mean = max_len / 4)`` capped at ``max_len``, which, like real
    text, has many short sentences and a few long ones.
    """
    if num_sentences < 1 or max_len < 1:
        raise ValueError(f"need num_sentences >= 1 and max_len >= 1, got {num_sentences}, {max_len}")
    if vocab_size < 2 or num_tags < 2:
        raise ValueError("vocab_size and num_tags count <pad>: both must be >= 2")
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    lengths = [min(max_len, 1 + int(rng.expovariate(4.0 / max_len))) for _ in range(num_sentences)]
    return BenchCorpus(
        words=[torch.randint(1, vocab_size, (n,), generator=gen) for n in lengths],
        tags=[torch.randint(1, num_tags, (n,), generator=gen) for n in lengths],
        vocab_size=vocab_size,
        num_tags=num_tags,
        name=f"synthetic ({num_sentences} sentences)",
    )
