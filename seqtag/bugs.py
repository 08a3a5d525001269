"""The article's code, its bugs, and their fixes: a registry the chapters and the bug index share.

William Falcon's 2018 article *Taming LSTMs* tags three Justin Bieber lyrics with parts of speech.
This module keeps its toy data, its numpy padding, its ``BieberLSTM`` class as printed (a source
string, :data:`ARTICLE_BIEBER_LSTM`), and one small runnable reproduction of every bug the book
finds in that code. Each reproduction is a :class:`Bug`:

* ``capture(bug_id)`` runs it and returns ``"ErrorType: message"`` exactly as PyTorch (or Python)
  raises it today, or ``"(no error) ..."`` plus what went silently wrong;
* ``with expect(bug_id): ...`` lets a chapter run the article's code in the open, prints the
  error it raises, and checks that it is the very error the registry reproduces;
* :func:`bug_table` executes every reproduction and builds the appendix's table.

Chapter 4 repairs the class one bug at a time: :func:`apply_fix` applies a bug's textual patch to
the source (and prints the diff), :func:`define` executes the source and returns the class.

This module imports nothing from :mod:`seqtag`: it is the article's code, not the package's.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Variable
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "SENTENCES",
    "TAG_SEQUENCES",
    "VOCAB",
    "TAGS",
    "X_IDS",
    "Y_IDS",
    "ARTICLE_TRICK1_X",
    "ARTICLE_SHOWN_PADDED_X",
    "article_pad",
    "ARTICLE_BIEBER_LSTM",
    "define",
    "apply_fix",
    "source_before",
    "show_code",
    "Bug",
    "REGISTRY",
    "WALKTHROUGH",
    "capture",
    "describe",
    "expect",
    "bug_table",
    "BugTable",
    "to_markdown",
    "to_html",
]

# --------------------------------------------------------------------------------------------
# The article's toy data
# --------------------------------------------------------------------------------------------

#: The three lyrics, as the article lists them (it drops "to" and "?" from "is it too late now to say sorry?").
SENTENCES: list[list[str]] = [
    ["is", "it", "too", "late", "now", "say", "sorry"],
    ["ooh", "ooh"],
    ["sorry", "yeah"],
]
#: Their part-of-speech tags.
TAG_SEQUENCES: list[list[str]] = [
    ["VB", "PRP", "RB", "RB", "RB", "VB", "JJ"],
    ["NNP", "NNP"],
    ["JJ", "NNP"],
]
#: The article's word vocabulary: ``<PAD>`` is 0.
VOCAB: dict[str, int] = {
    "<PAD>": 0, "is": 1, "it": 2, "too": 3, "late": 4, "now": 5,
    "say": 6, "sorry": 7, "ooh": 8, "yeah": 9,
}
#: The article's tag vocabulary: ``<PAD>`` is 0.
TAGS: dict[str, int] = {"<PAD>": 0, "VB": 1, "PRP": 2, "RB": 3, "JJ": 4, "NNP": 5}
#: ``SENTENCES`` mapped through ``VOCAB``: ``[[1, 2, 3, 4, 5, 6, 7], [8, 8], [7, 9]]``.
X_IDS: list[list[int]] = [[VOCAB[w] for w in s] for s in SENTENCES]
#: ``TAG_SEQUENCES`` mapped through ``TAGS``: ``[[1, 2, 3, 3, 3, 1, 4], [5, 5], [4, 5]]``.
Y_IDS: list[list[int]] = [[TAGS[t] for t in s] for s in TAG_SEQUENCES]
#: The ``X`` that the article's trick-1 code block restates before padding: every id one lower
#: than its own vocabulary gives, so "is" becomes 0, the ``<PAD>`` id.
ARTICLE_TRICK1_X: list[list[int]] = [[0, 1, 2, 3, 4, 5, 6], [7, 7], [6, 8]]
#: The ``padded_X`` the article prints right after that block (what ``X_IDS`` pads to).
ARTICLE_SHOWN_PADDED_X: list[list[float]] = [
    [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    [8.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [7.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0],
]


def article_pad(sequences: Sequence[Sequence[int]], pad_token: int) -> np.ndarray:
    """The article's trick 1, line for line: a ``(B, T)`` **float64** numpy array of ids.

    ``np.ones(...) * pad_token`` makes floats, so the ids come out as ``1.0, 2.0, ...``; this is
    the array that :class:`torch.nn.Embedding` later refuses.
    """
    X_lengths = [len(sentence) for sentence in sequences]  # the article's names
    longest_sent = max(X_lengths)
    batch_size = len(sequences)
    padded_X = np.ones((batch_size, longest_sent)) * pad_token
    for i, x_len in enumerate(X_lengths):
        sequence = sequences[i]
        padded_X[i, 0:x_len] = sequence[:x_len]
    return padded_X


def _padded(rows: Sequence[int] = (0, 1, 2), labels: bool = False) -> Tensor:
    """Rows of the article's padded ``X`` (or ``Y``), ``(len(rows), 7)`` float64 as ``from_numpy`` gives it.

    The rows keep all 7 time steps, even when the sentences they hold are shorter.
    """
    data = Y_IDS if labels else X_IDS
    return torch.from_numpy(article_pad(data, 0))[list(rows)]


# --------------------------------------------------------------------------------------------
# The article's model, as printed
# --------------------------------------------------------------------------------------------

#: ``BieberLSTM`` as the article prints it (its full-code listing), comments included.
ARTICLE_BIEBER_LSTM = '''\
class BieberLSTM(nn.Module):
    def __init__(self, nb_layers, nb_lstm_units=100, embedding_dim=3, batch_size=3):
        self.vocab = {'<PAD>': 0, 'is': 1, 'it': 2, 'too': 3, 'late': 4, 'now': 5, 'say': 6, 'sorry': 7, 'ooh': 8,
                      'yeah': 9}
        self.tags = {'<PAD>': 0, 'VB': 1, 'PRP': 2, 'RB': 3, 'JJ': 4, 'NNP': 5}

        self.nb_layers = nb_layers
        self.nb_lstm_units = nb_lstm_units
        self.embedding_dim = embedding_dim
        self.batch_size = batch_size

        # don't count the padding tag for the classifier output
        self.nb_tags = len(self.tags) - 1

        # when the model is bidirectional we double the output dimension
        self.lstm

        # build actual NN
        self.__build_model()

    def __build_model(self):
        # build embedding layer first
        nb_vocab_words = len(self.vocab)

        # whenever the embedding sees the padding index it'll make the whole vector zeros
        padding_idx = self.vocab['<PAD>']
        self.word_embedding = nn.Embedding(
            num_embeddings=nb_vocab_words,
            embedding_dim=self.embedding_dim,
            padding_idx=padding_idx
        )

        # design LSTM
        self.lstm = nn.LSTM(
            input_size=self.embedding_dim,
            hidden_size=self.nb_lstm_units,
            num_layers=self.nb_lstm_layers,
            batch_first=True,
        )

        # output layer which projects back to tag space
        self.hidden_to_tag = nn.Linear(self.nb_lstm_units, self.nb_tags)

    def init_hidden(self):
        # the weights are of the form (nb_layers, batch_size, nb_lstm_units)
        hidden_a = torch.randn(self.hparams.nb_lstm_layers, self.batch_size, self.nb_lstm_units)
        hidden_b = torch.randn(self.hparams.nb_lstm_layers, self.batch_size, self.nb_lstm_units)

        if self.hparams.on_gpu:
            hidden_a = hidden_a.cuda()
            hidden_b = hidden_b.cuda()

        hidden_a = Variable(hidden_a)
        hidden_b = Variable(hidden_b)

        return (hidden_a, hidden_b)

    def forward(self, X, X_lengths):
        # reset the LSTM hidden state. Must be done before you run a new batch. Otherwise the LSTM will treat
        # a new batch as a continuation of a sequence
        self.hidden = self.init_hidden()

        batch_size, seq_len, _ = X.size()

        # ---------------------
        # 1. embed the input
        # Dim transformation: (batch_size, seq_len, 1) -> (batch_size, seq_len, embedding_dim)
        X = self.word_embedding(X)

        # ---------------------
        # 2. Run through RNN
        # TRICK 2 ********************************
        # Dim transformation: (batch_size, seq_len, embedding_dim) -> (batch_size, seq_len, nb_lstm_units)

        # pack_padded_sequence so that padded items in the sequence won't be shown to the LSTM
        X = torch.nn.utils.rnn.pack_padded_sequence(x, X_lengths, batch_first=True)

        # now run through LSTM
        X, self.hidden = self.lstm(X, self.hidden)

        # undo the packing operation
        X, _ = torch.nn.utils.rnn.pad_packed_sequence(X, batch_first=True)

        # ---------------------
        # 3. Project to tag space
        # Dim transformation: (batch_size, seq_len, nb_lstm_units) -> (batch_size * seq_len, nb_lstm_units)

        # this one is a bit tricky as well. First we need to reshape the data so it goes into the linear layer
        X = X.contiguous()
        X = X.view(-1, X.shape[2])

        # run through actual linear layer
        X = self.hidden_to_tag(X)

        # ---------------------
        # 4. Create softmax activations bc we're doing classification
        # Dim transformation: (batch_size * seq_len, nb_lstm_units) -> (batch_size, seq_len, nb_tags)
        X = F.log_softmax(X, dim=1)

        # I like to reshape for mental sanity so we're back to (batch_size, seq_len, nb_tags)
        X = X.view(batch_size, seq_len, self.nb_tags)

        Y_hat = X
        return Y_hat

    def loss(self, Y_hat, Y, X_lengths):
        # TRICK 3 ********************************
        # before we calculate the negative log likelihood, we need to mask out the activations
        # this means we don't want to take into account padded items in the output vector
        # simplest way to think about this is to flatten ALL sequences into a REALLY long sequence
        # and calculate the loss on that.

        # flatten all the labels
        Y = Y.view(-1)

        # flatten all predictions
        Y_hat = Y_hat.view(-1, self.nb_tags)

        # create a mask by filtering out all tokens that ARE NOT the padding token
        tag_pad_token = self.tags['<PAD>']
        mask = (Y > tag_pad_token).float()

        # count how many tokens we have
        nb_tokens = int(torch.sum(mask).data[0])

        # pick the values for the label and zero out the rest with the mask
        Y_hat = Y_hat[range(Y_hat.shape[0]), Y] * mask

        # compute cross entropy loss which ignores all <PAD> tokens
        ce_loss = -torch.sum(Y_hat) / nb_tokens

        return ce_loss
'''

_INIT_HIDDEN_METHOD = '''\
    def init_hidden(self):
        # the weights are of the form (nb_layers, batch_size, nb_lstm_units)
        hidden_a = torch.randn(self.nb_layers, self.batch_size, self.nb_lstm_units)
        hidden_b = torch.randn(self.nb_layers, self.batch_size, self.nb_lstm_units)

        if self.word_embedding.weight.is_cuda:
            hidden_a = hidden_a.cuda()
            hidden_b = hidden_b.cuda()

        hidden_a = Variable(hidden_a)
        hidden_b = Variable(hidden_b)

        return (hidden_a, hidden_b)

'''


def define(source: str) -> type[nn.Module]:
    """Execute a ``BieberLSTM`` class source and return the class.

    The source sees the article's imports: ``torch``, ``nn``, ``F`` and ``Variable``.
    """
    namespace: dict[str, object] = {
        "__name__": "article", "torch": torch, "nn": nn, "F": F, "Variable": Variable,
    }
    exec(compile(source, "<the article's BieberLSTM>", "exec"), namespace)
    cls = namespace.get("BieberLSTM")
    if not isinstance(cls, type):
        raise ValueError("the source does not define a class named BieberLSTM")
    return cls


def show_code(source: str, language: str = "python") -> object:
    """Display ``source`` as a highlighted code block in a notebook (plain text elsewhere)."""
    return _Markdown(f"```{language}\n{source.rstrip()}\n```")


class _Markdown:
    """Text shown as Markdown by Jupyter and as the same text by ``repr`` (nbval compares it)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    """One bug of the article's code and a runnable reproduction of it.

    Attributes:
        id: short unique name, e.g. ``"data_index_0dim"``.
        title: what is wrong, in a few words.
        fix: how the book fixes it (Markdown).
        chapter: the chapter that shows it, e.g. ``"01_padding"``.
        run: executes the article's code; raises the bug's error, or (``raises=False``) returns
            a sentence that states what went silently wrong.
        raises: whether ``run`` raises.
        patches: for the ``BieberLSTM`` walk-through of chapter 4, the ``(old, new)`` text
            replacements that fix the bug in :data:`ARTICLE_BIEBER_LSTM`.
    """

    id: str
    title: str
    fix: str
    chapter: str
    run: Callable[[], object] = field(repr=False, compare=False)
    raises: bool = True
    patches: tuple[tuple[str, str], ...] = ()


REGISTRY: dict[str, Bug] = {}


def _register(bug: Bug) -> Bug:
    if bug.id in REGISTRY:
        raise ValueError(f"duplicate bug id {bug.id!r}")
    REGISTRY[bug.id] = bug
    return bug


def _get(bug_id: str) -> Bug:
    try:
        return REGISTRY[bug_id]
    except KeyError:
        raise KeyError(f"unknown bug id {bug_id!r}; known ids: {', '.join(REGISTRY)}") from None


def describe(exc: BaseException) -> str:
    """``"ErrorType: message"`` on one line, the form the book prints and the appendix lists."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def capture(bug: str | Callable[[], object]) -> str:
    """Run a bug's reproduction (by id, or any callable) and return what happened.

    Returns:
        ``"ErrorType: message"`` if it raised, else ``"(no error) <what it returned>"``.
    """
    fn = _get(bug).run if isinstance(bug, str) else bug
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(0)  # reproductions that build layers do so from the same weights
        try:
            result = fn()
        except Exception as exc:  # capturing any error is the point
            return describe(exc)
    return f"(no error) {result}"


@contextmanager
def expect(bug_id: str) -> Iterator[None]:
    """Run the article's code in a ``with`` block, print the error it raises, and check it.

    The block must raise, and its ``"ErrorType: message"`` must equal :func:`capture` of
    ``bug_id``: the chapter and the appendix then show the same, real error.

    Raises:
        AssertionError: the block raised nothing, or another error than the registry's.
    """
    expected = capture(bug_id)
    try:
        yield
    except Exception as exc:
        got = describe(exc)
        print(got)
        if got != expected:
            raise AssertionError(
                f"bug {bug_id!r}: the chapter raised\n  {got}\nbut seqtag.bugs reproduces\n  {expected}"
            ) from exc
        return
    raise AssertionError(f"bug {bug_id!r}: expected {expected!r}, but the code ran without error")


def source_before(bug_id: str) -> str:
    """:data:`ARTICLE_BIEBER_LSTM` with the patches of every walk-through bug before ``bug_id``."""
    _get(bug_id)
    src = ARTICLE_BIEBER_LSTM
    for earlier in WALKTHROUGH:
        if earlier == bug_id:
            return src
        if REGISTRY[earlier].patches:
            src = _patch(src, earlier)
    raise ValueError(f"{bug_id!r} is not part of chapter 4's walk-through: {WALKTHROUGH}")


def _patch(source: str, bug_id: str) -> str:
    bug = _get(bug_id)
    if not bug.patches:
        raise ValueError(f"bug {bug_id!r} is fixed outside the class source (see its fix: {bug.fix})")
    for old, new in bug.patches:
        if old not in source:
            raise ValueError(
                f"bug {bug_id!r}: the text to replace is not in this source (fixed already?): {old.strip()!r}"
            )
        source = source.replace(old, new)
    return source


def apply_fix(source: str, bug_id: str, show: bool = True) -> str:
    """Apply ``bug_id``'s patch to a ``BieberLSTM`` source, print the diff, return the new source."""
    new = _patch(source, bug_id)
    if show:
        diff = difflib.unified_diff(
            source.splitlines(), new.splitlines(), "article", "fixed", n=0, lineterm=""
        )
        lines = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
        print(f"fix {bug_id}:")
        print("\n".join(lines))
    return new


# --------------------------------------------------------------------------------------------
# Reproductions, chapter by chapter
# --------------------------------------------------------------------------------------------


def _embedding() -> nn.Embedding:
    return nn.Embedding(len(VOCAB), 3, padding_idx=VOCAB["<PAD>"])


# Chapter 1: padding --------------------------------------------------------------------------

def _ragged_batch() -> object:
    return torch.tensor(X_IDS)


def _numpy_into_embedding() -> object:
    return _embedding()(article_pad(X_IDS, VOCAB["<PAD>"]))


def _float_ids_into_embedding() -> object:
    return _embedding()(torch.from_numpy(article_pad(X_IDS, VOCAB["<PAD>"])))


def _zero_based_ids() -> str:
    padded = torch.from_numpy(article_pad(ARTICLE_TRICK1_X, VOCAB["<PAD>"])).long()
    emb = _embedding()
    vectors = emb(padded)
    vectors.sum().backward()
    is_vector_zero = bool((vectors[0, 0] == 0).all())
    is_grad_zero = bool((emb.weight.grad[padded[0, 0]] == 0).all())
    return (
        f"'is' gets id {int(padded[0, 0])}, the <PAD> id: its embedding is all zeros: "
        f"{is_vector_zero}; its gradient is all zeros: {is_grad_zero}"
    )


_register(Bug(
    "ragged_batch", "Sentences of different lengths cannot form one tensor",
    "Pad them to the longest sentence (trick 1)", "01_padding", _ragged_batch,
))
_register(Bug(
    "numpy_into_embedding", "The numpy `padded_X` is fed to `nn.Embedding`",
    "Build a tensor: `torch.as_tensor(padded_X)`... and make it integer (next bug)",
    "01_padding", _numpy_into_embedding,
))
_register(Bug(
    "float_ids_into_embedding",
    "`np.ones(...) * pad_token` makes float64 ids",
    "Integer ids from the start: `pad_sequence([torch.tensor(s) for s in X], batch_first=True)` "
    "or `seqtag.batching.pad_batch`",
    "01_padding", _float_ids_into_embedding,
))
_register(Bug(
    "zero_based_ids", "The article's trick-1 `X` uses ids one lower than its vocabulary",
    "Map words through the vocabulary (`<PAD>` = 0, `is` = 1); never reuse the pad id",
    "01_padding", _zero_based_ids, raises=False,
))


# Chapter 2: packing --------------------------------------------------------------------------

def _embedded(rows: Sequence[int] = (0, 1, 2)) -> Tensor:
    return _embedding()(_padded(rows).long())


def _unsorted_lengths() -> object:
    x = _embedded((1, 0, 2))  # "ooh ooh" first: lengths [2, 7, 2]
    return pack_padded_sequence(x, [2, 7, 2], batch_first=True)


def _lengths_2d() -> object:
    lengths = torch.tensor([[7], [2], [2]])  # one length per row, as a (B, 1) column
    return pack_padded_sequence(_embedded(), lengths, batch_first=True)


def _lengths_not_on_cpu() -> object:
    device = "cuda" if torch.cuda.is_available() else "meta"
    lengths = torch.tensor([7, 2, 2], device=device)
    return pack_padded_sequence(_embedded(), lengths, batch_first=True)


def _float_lengths() -> str:
    lengths = torch.tensor([7.0, 2.0, 2.0]) * (1 - 1e-6)  # lengths that went through float maths
    packed = pack_padded_sequence(_embedded(), lengths, batch_first=True)
    kept = int(packed.batch_sizes.sum())
    return (
        f"float lengths are cast to int64 by truncation: {sum(len(s) for s in X_IDS)} real words, "
        f"{kept} packed"
    )


def _zero_length() -> object:
    x = _embedding()(torch.from_numpy(article_pad([X_IDS[0], X_IDS[1], [0]], 0)).long())
    return pack_padded_sequence(x, [7, 2, 0], batch_first=True)  # an empty lyric


def _lstm_tagger_parts() -> tuple[nn.Embedding, nn.LSTM, nn.Linear]:
    return _embedding(), nn.LSTM(3, 4, batch_first=True), nn.Linear(4, len(TAGS))


def _no_total_length_loss() -> object:
    emb, lstm, linear = _lstm_tagger_parts()
    X, Y = _padded((1, 2)).long(), _padded((1, 2), labels=True).long()  # padded to 7
    packed = pack_padded_sequence(emb(X), [2, 2], batch_first=True)
    out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True)  # T = 2, not 7
    Y_hat = F.log_softmax(linear(out), dim=-1)
    return F.nll_loss(Y_hat.reshape(-1, len(TAGS)), Y.reshape(-1), ignore_index=0)


def _bidirectional_padded() -> str:
    emb, lstm = _embedding(), nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        x = emb(_padded().long())
        padded_out, _ = lstm(x)
        differs = []
        for b, n in enumerate(len(s) for s in X_IDS):
            alone, _ = lstm(x[b : b + 1, :n])
            differs.append(not torch.allclose(padded_out[b, :n], alone[0], atol=1e-6))
    return f"running the padded batch unpacked changes each sentence's outputs: {differs}"


_register(Bug(
    "unsorted_lengths", "A batch that is not sorted by decreasing length (the article packs with `enforce_sorted=True`)",
    "`pack_padded_sequence(..., enforce_sorted=False)` sorts and unsorts for you",
    "02_packing", _unsorted_lengths,
    patches=(("X_lengths, batch_first=True)", "X_lengths, batch_first=True, enforce_sorted=False)"),),
))
_register(Bug(
    "lengths_2d", "Lengths as a `(B, 1)` column",
    "A 1-D CPU int64 tensor or a list: `lengths.view(-1)`",
    "02_packing", _lengths_2d,
))
_register(Bug(
    "lengths_not_on_cpu", "Lengths moved to the GPU with the batch (`meta` stands in on a CPU-only machine)",
    "Keep `lengths` on the CPU (`seqtag.batching.Batch.to` does)",
    "02_packing", _lengths_not_on_cpu,
))
_register(Bug(
    "float_lengths", "Lengths computed in floating point",
    "Count lengths as integers (`len(s)`, `mask.sum(1)`); `seqtag.batching.check_lengths` refuses floats",
    "02_packing", _float_lengths, raises=False,
))
_register(Bug(
    "zero_length", "An empty sentence in the batch",
    "Drop empty sentences before batching (`pad_batch` names the one that is empty)",
    "02_packing", _zero_length,
))
_register(Bug(
    "no_total_length_loss", "`pad_packed_sequence` without `total_length`, then a flattened loss",
    "`pad_packed_sequence(..., total_length=X.size(1))` (as `seqtag.models.run_packed` does)",
    "02_packing", _no_total_length_loss,
))
_register(Bug(
    "bidirectional_padded", "A bidirectional LSTM run on the padded batch without packing",
    "Pack: the backward direction must start at each sentence's last real word",
    "02_packing", _bidirectional_padded, raises=False,
))


# Chapter 3: masking the loss -----------------------------------------------------------------

def _data_index_0dim() -> object:
    Y = _padded(labels=True).view(-1)
    tag_pad_token = TAGS["<PAD>"]
    mask = (Y > tag_pad_token).float()  # noqa: SIM300 - the article's line
    return int(torch.sum(mask).data[0])


def _float_labels_as_index() -> object:
    Y = _padded(labels=True).view(-1)  # float64, as the numpy padding made it
    Y_hat = torch.zeros(Y.numel(), len(TAGS)).log_softmax(1)
    return Y_hat[range(Y_hat.shape[0]), Y]


def _article_loss_fixed(Y_hat: Tensor, Y: Tensor) -> Tensor:
    Y = Y.view(-1)
    Y_hat = Y_hat.view(-1, Y_hat.shape[-1])
    tag_pad_token = TAGS["<PAD>"]
    mask = (Y > tag_pad_token).float()  # noqa: SIM300 - the article's line
    nb_tokens = int(torch.sum(mask).item())
    Y_hat = Y_hat[range(Y_hat.shape[0]), Y] * mask
    return -torch.sum(Y_hat) / nb_tokens


def _all_padding_nan() -> str:
    Y = torch.zeros(2, 3, dtype=torch.long)  # a batch with no real token
    loss = _article_loss_fixed(torch.zeros(2, 3, len(TAGS)).log_softmax(-1), Y)
    return f"a batch without real tokens gives loss = {loss.item()}"


def _mask_times_nan() -> str:
    Y = _padded(labels=True).long()
    Y_hat = torch.zeros(*Y.shape, len(TAGS)).log_softmax(-1)
    Y_hat[1, 5] = float("nan")  # any NaN or inf at a padded position ...
    loss = _article_loss_fixed(Y_hat, Y)
    return f"a NaN at a padded position survives `* mask` (NaN * 0 = NaN): loss = {loss.item()}"


_register(Bug(
    "data_index_0dim", "`torch.sum(mask).data[0]` on a 0-dim tensor",
    "`torch.sum(mask).item()` (or keep it a tensor)", "03_masking", _data_index_0dim,
    patches=(("int(torch.sum(mask).data[0])", "int(torch.sum(mask).item())"),),
))
_register(Bug(
    "float_labels_as_index", "Float labels used to pick `Y_hat[range, Y]`",
    "Integer labels (`pad_batch` / `.long()`)", "03_masking", _float_labels_as_index,
))
_register(Bug(
    "all_padding_nan", "A batch with no real token divides 0 by 0",
    "Clamp the count: `seqtag.losses.masked_cross_entropy` returns 0", "03_masking",
    _all_padding_nan, raises=False,
))
_register(Bug(
    "mask_times_nan", "Masking by multiplication lets NaN/inf from padded positions through",
    "Select or fill, never multiply: `ignore_index`, `masked_fill`, `logits[mask]`",
    "03_masking", _mask_times_nan, raises=False,
))


# Chapter 4: BieberLSTM, as printed, one bug after another ------------------------------------

def _build(bug_id: str) -> nn.Module:
    return define(source_before(bug_id))(nb_layers=1)


def _forward(bug_id: str, X: Tensor, lengths: list[int]) -> Tensor:
    return _build(bug_id)(X, lengths)


def _loss(bug_id: str, X: Tensor, Y: Tensor, lengths: list[int]) -> Tensor:
    model = _build(bug_id)
    return model.loss(model(X, lengths), Y, lengths)


_LENGTHS = [len(s) for s in X_IDS]  # [7, 2, 2]: sorted, as the article's batch happens to be

_register(Bug(
    "stray_self_lstm", "A bare `self.lstm` line in `__init__` reads an attribute that does not exist yet",
    "Delete the line", "04_bieber_lstm", lambda: _build("stray_self_lstm"),
    patches=(("        # when the model is bidirectional we double the output dimension\n"
              "        self.lstm\n\n", ""),),
))
_register(Bug(
    "missing_super_init", "`__init__` never calls `super().__init__()`",
    "Call `super().__init__()` first", "04_bieber_lstm", lambda: _build("missing_super_init"),
    patches=(("        self.vocab = {", "        super().__init__()\n        self.vocab = {"),),
))
_register(Bug(
    "nb_lstm_layers", "`self.nb_lstm_layers` is never set (`__init__` stores `self.nb_layers`)",
    "One name: `self.nb_layers`", "04_bieber_lstm", lambda: _build("nb_lstm_layers"),
    patches=(("num_layers=self.nb_lstm_layers,", "num_layers=self.nb_layers,"),),
))
_register(Bug(
    "hparams", "`init_hidden` reads `self.hparams`, which this class does not have",
    "Use the model's own fields and device", "04_bieber_lstm",
    lambda: _forward("hparams", _padded(), _LENGTHS),
    patches=(("self.hparams.nb_lstm_layers", "self.nb_layers"),
             ("self.hparams.on_gpu", "self.word_embedding.weight.is_cuda")),
))
_register(Bug(
    "size_unpack_2d", "`batch_size, seq_len, _ = X.size()` on a 2-D `(B, T)` batch of ids",
    "`batch_size, seq_len = X.size()`", "04_bieber_lstm",
    lambda: _forward("size_unpack_2d", _padded(), _LENGTHS),
    patches=(("batch_size, seq_len, _ = X.size()", "batch_size, seq_len = X.size()"),),
))
_register(Bug(
    "lowercase_x", "`pack_padded_sequence(x, ...)`: lowercase `x` is undefined",
    "`pack_padded_sequence(X, ...)`", "04_bieber_lstm",
    lambda: _forward("lowercase_x", _padded().long(), _LENGTHS),
    patches=(("pack_padded_sequence(x, X_lengths", "pack_padded_sequence(X, X_lengths"),),
))
_register(Bug(
    "nb_tags_minus_one", "`nb_tags = len(self.tags) - 1` leaves no output for the last tag id (NNP = 5)",
    "One output per tag id, `<PAD>` included: `len(self.tags)` (the mask keeps `<PAD>` out of the loss)",
    "04_bieber_lstm",
    lambda: _loss("nb_tags_minus_one", _padded().long(), _padded(labels=True).long(), _LENGTHS),
    patches=(("        # don't count the padding tag for the classifier output\n"
              "        self.nb_tags = len(self.tags) - 1",
              "        # one output per tag id; <PAD>'s is never a target, the mask drops it\n"
              "        self.nb_tags = len(self.tags)"),),
))

_FOUR_X = [*X_IDS, [VOCAB["say"], VOCAB["sorry"]]]  # a fourth lyric: "say sorry"


def _random_init_hidden() -> str:
    model = _build("random_init_hidden")
    X = _padded().long()
    same = torch.equal(model(X, _LENGTHS), model(X, _LENGTHS))
    return f"two calls on the same batch give the same outputs: {same}"


def _hidden_rows_unchecked() -> str:
    model = _build("random_init_hidden")
    X = torch.from_numpy(article_pad(X_IDS[1:], 0)).long()  # two sentences, T = 2
    model(X, [2, 2])
    return (
        f"a batch of {X.size(0)} sentences returns h_n with {model.hidden[0].size(1)} rows "
        "(packed LSTM input skips the hidden-size check)"
    )


def _fixed_batch_size() -> object:
    X = torch.from_numpy(article_pad(_FOUR_X, 0)).long()
    return _forward("random_init_hidden", X, [len(s) for s in _FOUR_X])


_register(Bug(
    "random_init_hidden", "`init_hidden` draws a random initial state for every batch",
    "No `init_hidden`: `self.lstm(X)` starts from zeros sized by the batch", "04_bieber_lstm",
    _random_init_hidden, raises=False,
    patches=((_INIT_HIDDEN_METHOD, ""),
             ("        # reset the LSTM hidden state. Must be done before you run a new batch. "
              "Otherwise the LSTM will treat\n"
              "        # a new batch as a continuation of a sequence\n"
              "        self.hidden = self.init_hidden()\n\n", ""),
             ("X, self.hidden = self.lstm(X, self.hidden)", "X, _ = self.lstm(X)")),
))
_register(Bug(
    "hidden_rows_unchecked", "A smaller batch than `batch_size`: the extra state rows are returned unnoticed",
    "Same fix: no `init_hidden`", "04_bieber_lstm", _hidden_rows_unchecked, raises=False,
))
_register(Bug(
    "fixed_batch_size", "`init_hidden` sizes the state for `batch_size=3`, a batch of 4 breaks",
    "Same fix: no `init_hidden`", "04_bieber_lstm", _fixed_batch_size,
))
_register(Bug(
    "no_total_length_view", "No `total_length`: a batch padded beyond its longest sentence breaks `X.view`",
    "`pad_packed_sequence(X, batch_first=True, total_length=seq_len)`", "04_bieber_lstm",
    lambda: _forward("no_total_length_view", _padded((1, 2)).long(), [2, 2]),
    patches=(("pad_packed_sequence(X, batch_first=True)",
              "pad_packed_sequence(X, batch_first=True, total_length=seq_len)"),),
))

#: Chapter 4's order: the bugs ``BieberLSTM`` hits one after another on the article's batch.
#: Each one's patch (or, for ``float_ids_into_embedding`` and ``float_labels_as_index``, the
#: fix to the inputs) is applied before the next one is shown.
WALKTHROUGH: list[str] = [
    "stray_self_lstm",
    "missing_super_init",
    "nb_lstm_layers",
    "hparams",
    "size_unpack_2d",
    "float_ids_into_embedding",
    "lowercase_x",
    "data_index_0dim",
    "float_labels_as_index",
    "nb_tags_minus_one",
    "random_init_hidden",
    "unsorted_lengths",
    "no_total_length_view",
]

_CHAPTER_NAMES = {
    "01_padding": "1. Padding",
    "02_packing": "2. Packing",
    "03_masking": "3. Masking the loss",
    "04_bieber_lstm": "4. BieberLSTM, fixed",
}


def fixed_article_source() -> str:
    """:data:`ARTICLE_BIEBER_LSTM` with every walk-through patch applied."""
    src = ARTICLE_BIEBER_LSTM
    for bug_id in WALKTHROUGH:
        if REGISTRY[bug_id].patches:
            src = _patch(src, bug_id)
    return src


# --------------------------------------------------------------------------------------------
# The appendix's table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    bug: str
    message: str
    fix: str
    chapter: str
    raises: bool


def bug_table() -> list[_Row]:
    """Execute every reproduction now and return one row per bug, in chapter order."""
    order = list(_CHAPTER_NAMES)
    bugs = sorted(REGISTRY.values(), key=lambda b: order.index(b.chapter))
    return [
        _Row(b.title, capture(b.id), b.fix, _CHAPTER_NAMES[b.chapter], b.raises) for b in bugs
    ]


def _cell(text: str) -> str:
    """A Markdown table cell on one line, pipes escaped (write ``<tokens>`` in backticks)."""
    return " ".join(text.split()).replace("|", "\\|")


def _code_cell(text: str) -> str:
    """Text in a code span that survives the backticks it may contain."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {' '.join(text.split()).replace('|', chr(92) + '|')} {fence}"


def to_markdown(rows: Sequence[_Row]) -> str:
    """The rows as a Markdown table: bug, what PyTorch says, fix, chapter."""
    lines = [
        "| # | Bug | What PyTorch says today | Fix | Chapter |",
        "|---|-----|-------------------------|-----|---------|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {_cell(r.bug)} | {_code_cell(r.message)} | {_cell(r.fix)} | {r.chapter} |"
        )
    return "\n".join(lines)


def _html_text(text: str) -> str:
    """Escape text for HTML and turn Markdown code spans (`x`) into ``<code>`` elements."""
    parts = re.split(r"(`+)(.+?)\1", " ".join(text.split()))
    out = []
    for i in range(0, len(parts), 3):
        out.append(html.escape(parts[i]))
        if i + 2 < len(parts):
            out.append(f"<code>{html.escape(parts[i + 2].strip())}</code>")
    return "".join(out)


def to_html(rows: Sequence[_Row]) -> str:
    """The rows as an HTML table (what notebooks and the HTML book display)."""
    head = "".join(f"<th>{h}</th>" for h in ("#", "Bug", "What PyTorch says today", "Fix", "Chapter"))
    body = []
    for i, r in enumerate(rows, 1):
        message = f"<code>{html.escape(' '.join(r.message.split()))}</code>"
        cells = (str(i), _html_text(r.bug), message, _html_text(r.fix), html.escape(r.chapter))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


class BugTable:
    """:func:`bug_table`'s rows: an HTML table in a notebook, a Markdown table as text."""

    def __init__(self, rows: Sequence[_Row]) -> None:
        self.rows = list(rows)

    def _repr_html_(self) -> str:
        return to_html(self.rows)

    def __repr__(self) -> str:
        return to_markdown(self.rows)
