"""From lists of ids to padded mini-batches: masks, collation, and a length-bucketing sampler.

Conventions used everywhere in :mod:`seqtag`:

* ``B`` is the batch size, ``T`` the longest sentence of the batch, ``W`` the longest word (chars).
* Padded id tensors are ``int64`` of shape ``(B, T)`` filled with ``pad_id`` (0) after each sentence.
* ``lengths`` is a 1-D ``int64`` tensor of shape ``(B,)`` that **stays on the CPU**:
  :func:`torch.nn.utils.rnn.pack_padded_sequence` wants it there.
* ``mask`` is ``bool`` of shape ``(B, T)``, ``True`` for a real token, ``False`` for padding.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset, Sampler

from seqtag.vocab import PAD_ID, Vocab, normalize_word

__all__ = [
    "lengths_to_mask",
    "check_lengths",
    "pad_batch",
    "Batch",
    "collate",
    "TaggingDataset",
    "BucketBatchSampler",
    "padding_fraction",
    "random_batches",
    "encode_chars",
]


def check_lengths(lengths: Tensor | Sequence[int], max_len: int | None = None) -> Tensor:
    """Validate sentence lengths and return them as a 1-D CPU ``int64`` tensor.

    Args:
        lengths: ``(B,)`` integers, a list or a tensor on any device.
        max_len: the padded length ``T`` the lengths must fit in, if known.

    Raises:
        ValueError: lengths are not 1-D, not integers, below 1, or longer than ``max_len``.
    """
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise ValueError(f"lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise ValueError(
                f"lengths must be integers, got dtype {lengths.dtype}; use lengths.long()"
            )
        out = lengths.detach().to("cpu", torch.int64)
    else:
        values = list(lengths)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"lengths must be ints, got {values[:5]}")
        out = torch.tensor(values, dtype=torch.int64)
    if out.numel() == 0:
        raise ValueError("empty batch: lengths has no entries")
    if int(out.min()) < 1:
        bad = int(torch.nonzero(out < 1)[0])
        raise ValueError(
            f"sentence {bad} has length {int(out[bad])}: every sentence needs at least one token "
            "(drop empty sentences before batching)"
        )
    if max_len is not None and int(out.max()) > max_len:
        bad = int(torch.argmax(out))
        raise ValueError(
            f"sentence {bad} has length {int(out[bad])} but the padded tensor has only {max_len} "
            "time steps: lengths do not match the padded batch"
        )
    return out


def lengths_to_mask(
    lengths: Tensor | Sequence[int], max_len: int | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Boolean mask ``(B, T)``: ``mask[b, t]`` is ``True`` iff ``t < lengths[b]``.

    The one place the package turns lengths into a mask (``True`` = real token).

    Args:
        lengths: ``(B,)`` sentence lengths (a list, or an integer tensor on any device).
        max_len: ``T``; defaults to ``max(lengths)``.
        device: where the mask goes (default: the CPU). It is built on the CPU, where the lengths
            are, and copied once: nothing is read back from ``device``.

    >>> lengths_to_mask([3, 1])
    tensor([[ True,  True,  True],
            [ True, False, False]])
    """
    lens = check_lengths(lengths, max_len)
    t = int(lens.max()) if max_len is None else max_len
    mask = torch.arange(t).unsqueeze(0) < lens.unsqueeze(1)
    return mask if device is None else mask.to(device)


def pad_batch(
    sequences: Sequence[Sequence[int] | Tensor], pad_id: int = PAD_ID
) -> tuple[Tensor, Tensor, Tensor]:
    """Pad a list of id sequences into one tensor (trick 1 of the article).

    Args:
        sequences: ``B`` sequences of ids, each a list of int or a 1-D integer tensor, length >= 1.
        pad_id: the id written after each sequence.

    Returns:
        ``(ids, lengths, mask)``: ``ids`` ``(B, T)`` int64, ``lengths`` ``(B,)`` int64 on the CPU,
        ``mask`` ``(B, T)`` bool. ``T`` is the longest sequence; order is kept (no sorting).
    """
    if len(sequences) == 0:
        raise ValueError("empty batch: pad_batch needs at least one sequence")
    tensors = []
    for i, seq in enumerate(sequences):
        t = seq if isinstance(seq, Tensor) else torch.as_tensor(list(seq), dtype=torch.int64)
        if t.dim() != 1:
            raise ValueError(f"sequence {i} must be 1-D, got shape {tuple(t.shape)}")
        if t.is_floating_point():
            raise ValueError(f"sequence {i} holds floats ({t.dtype}); ids must be integers")
        if t.numel() == 0:
            raise ValueError(f"sequence {i} is empty: drop empty sentences before batching")
        tensors.append(t.to(torch.int64))
    ids = pad_sequence(tensors, batch_first=True, padding_value=pad_id)
    lengths = torch.tensor([len(t) for t in tensors], dtype=torch.int64)
    return ids, lengths, lengths_to_mask(lengths, ids.size(1)).to(ids.device)


@dataclass
class Batch:
    """One padded mini-batch.

    Attributes:
        words: ``(B, T)`` int64 word ids, ``PAD_ID`` after each sentence.
        lengths: ``(B,)`` int64, always on the CPU.
        mask: ``(B, T)`` bool, ``True`` on real tokens.
        tags: ``(B, T)`` int64 tag ids (``PAD_ID`` on padding) or ``None`` when unlabelled.
        chars: ``(B, T, W)`` int64 character ids (0 = padding) or ``None`` without a char vocabulary.
        index: ``(B,)`` the dataset positions of the sentences, to put predictions back in order.
        aux_tags: ``(B, T)`` int64 ids of a second tag set (joint tagging), or ``None``.
    """

    words: Tensor
    lengths: Tensor
    mask: Tensor
    tags: Tensor | None = None
    chars: Tensor | None = None
    index: Tensor | None = None
    aux_tags: Tensor | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor but ``lengths`` (which stays on the CPU) to ``device``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            keep = f.name in ("lengths", "index") or value is None
            moved[f.name] = value if keep else value.to(device, non_blocking=non_blocking)
        return Batch(**moved)

    def pin_memory(self) -> Batch:
        """Pin CPU tensors so ``to(cuda, non_blocking=True)`` overlaps the copy (DataLoader hook)."""
        return Batch(**{
            f.name: (v.pin_memory() if v is not None and f.name != "lengths" else v)
            for f in fields(self) for v in [getattr(self, f.name)]
        })

    @property
    def num_tokens(self) -> int:
        """Real (non-pad) tokens in the batch."""
        return int(self.lengths.sum())


def collate(examples: Sequence[dict[str, Tensor]]) -> Batch:
    """Turn dataset items into a :class:`Batch` (use as ``DataLoader(collate_fn=collate)``).

    Each example is a dict with ``"words"`` ``(L,)`` int64, optional ``"tags"`` and ``"aux_tags"``
    ``(L,)`` int64, optional ``"chars"`` ``(L, W_i)`` int64 and optional ``"index"`` (int).
    """
    if len(examples) == 0:
        raise ValueError("empty batch: collate got no examples")
    words, lengths, mask = pad_batch([e["words"] for e in examples])
    tags, aux_tags = (_pad_tags(examples, key) for key in ("tags", "aux_tags"))
    chars = None
    if examples[0].get("chars") is not None:
        w = max(int(e["chars"].size(1)) for e in examples)
        chars = torch.zeros(len(examples), words.size(1), w, dtype=torch.int64)
        for b, e in enumerate(examples):
            c = e["chars"]
            chars[b, : c.size(0), : c.size(1)] = c
    index = None
    if "index" in examples[0]:
        index = torch.tensor([int(e["index"]) for e in examples], dtype=torch.int64)
    return Batch(words=words, lengths=lengths, mask=mask, tags=tags, chars=chars, index=index, aux_tags=aux_tags)


def _pad_tags(examples: Sequence[dict[str, Tensor]], key: str) -> Tensor | None:
    """``(B, T)`` padded ``examples[i][key]`` tag ids, or ``None`` when the examples have none."""
    if examples[0].get(key) is None:
        return None
    for i, e in enumerate(examples):
        if e[key].shape != e["words"].shape:
            raise ValueError(f"example {i}: {len(e['words'])} words but {len(e[key])} {key.replace('_', ' ')}")
    return pad_sequence([e[key] for e in examples], batch_first=True, padding_value=PAD_ID)


class TaggingDataset(Dataset[dict[str, Tensor]]):
    """Sentences (and their tags) encoded once, ready for :func:`collate`.

    Args:
        sentences: ``N`` lists of word strings, each non-empty.
        tags: ``N`` lists of tag strings of the same lengths, or ``None`` for unlabelled text.
        words: word vocabulary (words go through :func:`seqtag.vocab.normalize_word` first).
        tagset: tag vocabulary (no ``<unk>``: an unknown tag raises with the sentence number).
        chars: optional character vocabulary; items then carry ``"chars"`` ``(L, W)``.
    """

    def __init__(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str]] | None,
        words: Vocab,
        tagset: Vocab | None = None,
        chars: Vocab | None = None,
    ) -> None:
        if tags is not None and len(tags) != len(sentences):
            raise ValueError(f"{len(sentences)} sentences but {len(tags)} tag sequences")
        if tags is not None and tagset is None:
            raise ValueError("tags were given without a tag vocabulary (tagset)")
        self.items: list[dict[str, Tensor]] = []
        for i, sent in enumerate(sentences):
            if len(sent) == 0:
                raise ValueError(f"sentence {i} is empty: every sentence needs at least one token")
            item: dict[str, Tensor] = {
                "words": torch.tensor(words.encode([normalize_word(w) for w in sent])),
                "index": torch.tensor(i),
            }
            if tags is not None and tagset is not None:
                if len(tags[i]) != len(sent):
                    raise ValueError(
                        f"sentence {i}: {len(sent)} words but {len(tags[i])} tags ({' '.join(sent)[:60]!r})"
                    )
                try:
                    item["tags"] = torch.tensor(tagset.encode(tags[i]))
                except KeyError as exc:
                    raise ValueError(f"sentence {i}: {exc.args[0]}") from None
            if chars is not None:
                item["chars"] = encode_chars(sent, chars)
            self.items.append(item)
        self.lengths = [len(s) for s in sentences]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.items[i]


def encode_chars(sentence: Sequence[str], chars: Vocab) -> Tensor:
    """Character ids of each word, ``(L, W)`` int64, 0-padded to the sentence's longest word."""
    w = max(len(word) for word in sentence)
    out = torch.zeros(len(sentence), max(w, 1), dtype=torch.int64)
    for j, word in enumerate(sentence):
        ids = chars.encode(list(word))
        out[j, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def _length(i: int, n: object) -> int:
    if isinstance(n, bool):
        n = None  # True is not a length
    try:
        value = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        value = 0
    if value < 1:
        raise ValueError(f"lengths[{i}] = {n!r}: lengths must be ints >= 1 (drop empty sentences first)")
    return value


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of sentences of similar length, for ``DataLoader(batch_sampler=...)``.

    Shuffle all indices, cut them into pools of ``pool_factor * batch_size``, sort each pool by
    length, cut pools into batches, shuffle the batches. Every index appears exactly once per epoch;
    the order depends only on ``seed`` and the epoch (:meth:`set_epoch`).

    Args:
        lengths: ``N`` sentence lengths.
        batch_size: sentences per batch (the last batch of a pool may be smaller).
        max_tokens: if set, also cut a batch before its padded size ``B * T`` exceeds this.
        shuffle: ``False`` gives one fixed length-sorted order (for evaluation).
        pool_factor: pool size in batches; larger pools pad less but mix less.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        drop_last: drop the epoch's final batch when it holds fewer than ``batch_size`` sentences.
    """

    def __init__(
        self,
        lengths: Iterable[int],
        batch_size: int,
        *,
        max_tokens: int | None = None,
        shuffle: bool = True,
        pool_factor: int = 50,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
        lengths = [_length(i, n) for i, n in enumerate(lengths)]  # also: a generator is read once
        if max_tokens is not None and max_tokens < max(lengths, default=1):
            raise ValueError(
                f"max_tokens={max_tokens} is smaller than the longest sentence "
                f"({max(lengths, default=1)} tokens): that sentence could never be batched"
            )
        self.lengths = lengths
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.pool_factor = pool_factor
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a new order for ``epoch`` (call before each epoch, as with DistributedSampler)."""
        self.epoch = epoch

    def _cut(self, ordered: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in ordered:
            longest_if = max(longest, self.lengths[i])
            too_many = len(current) >= self.batch_size
            too_big = self.max_tokens is not None and longest_if * (len(current) + 1) > self.max_tokens
            if current and (too_many or too_big):
                batches.append(current)
                current, longest_if = [], self.lengths[i]
            current.append(i)
            longest = longest_if
        if current:
            batches.append(current)
        return batches

    def _drop_last(self, batches: list[list[int]]) -> list[list[int]]:
        # Only the epoch's final remainder is dropped. (Dropping the short last batch of *every*
        # pool would throw away each pool's longest sentences, since pools are sorted by length.)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            return batches[:-1]
        return batches

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch, in order."""
        n = len(self.lengths)
        if not self.shuffle:
            return self._drop_last(self._cut(sorted(range(n), key=lambda i: (self.lengths[i], i))))
        rng = random.Random(self.seed + self.epoch)
        order = list(range(n))
        rng.shuffle(order)
        pool = self.batch_size * self.pool_factor
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = sorted(order[start : start + pool], key=lambda i: self.lengths[i])
            batches.extend(self._cut(chunk))
        batches = self._drop_last(batches)
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self.max_tokens is None:
            full, rest = divmod(len(self.lengths), self.batch_size)
            if not self.shuffle:
                return full + (rest > 0 and not self.drop_last)
        return len(self.batches())


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of padded positions over all ``B * T`` positions of ``batches``."""
    real = padded = 0
    for batch in batches:
        lens = [lengths[i] for i in batch]
        real += sum(lens)
        padded += len(lens) * max(lens)
    return 0.0 if padded == 0 else 1.0 - real / padded


def random_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    """Plain shuffled batches (no bucketing), the baseline for :func:`padding_fraction`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


