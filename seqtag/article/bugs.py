"""The bugs **in the article's code**: each quotes the article's line that must change.

One reproduction per bug, registered in :data:`seqtag.article.registry.REGISTRY` with
``kind="bug"``. Chapters 1 and 3 meet the bugs of tricks 1 and 3; chapter 4 meets the rest while
running ``BieberLSTM`` as printed (the class's state before each bug comes from
:func:`seqtag.article.fixes.source_before`). Pitfalls around the code are in
:mod:`seqtag.article.pitfalls`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqtag.article.code import ARTICLE_TRICK1_X, TAGS, VOCAB, X_IDS, article_batch, article_pad
from seqtag.article.fixes import build_before
from seqtag.article.registry import Bug, register

__all__: list[str] = []  # importing this module registers the bugs

_PAD_LINE = "padded_X = np.ones((batch_size, longest_sent)) * pad_token"
_PACK_LINE = "X = torch.nn.utils.rnn.pack_padded_sequence(x, X_lengths, batch_first=True)"
_PICK_LINE = "Y_hat = Y_hat[range(Y_hat.shape[0]), Y] * mask"
_RANDN_LINE = "hidden_a = torch.randn(self.hparams.nb_lstm_layers, self.batch_size, self.nb_lstm_units)"
_LENGTHS = [len(s) for s in X_IDS]  # [7, 2, 2]: sorted, as the article's batch happens to be


def _embedding() -> nn.Embedding:
    return nn.Embedding(len(VOCAB), 3, padding_idx=VOCAB["<PAD>"])


# Chapter 1: padding --------------------------------------------------------------------------

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


register(Bug(
    "numpy_into_embedding", "The numpy `padded_X` is what the model's embedding receives",
    "Build a tensor: `torch.as_tensor(padded_X)`... and make it integer (next bug)",
    "01_padding", _numpy_into_embedding, article_line=_PAD_LINE,
))
register(Bug(
    "float_ids_into_embedding", "`np.ones(...) * pad_token` makes float64 ids",
    "Integer ids from the start: `pad_sequence([torch.tensor(s) for s in X], batch_first=True)` "
    "or `seqtag.batching.pad_batch`",
    "01_padding", _float_ids_into_embedding, article_line=_PAD_LINE,
))
register(Bug(
    "zero_based_ids", "The article's trick-1 `X` uses ids one lower than its vocabulary",
    "Map words through the vocabulary (`<PAD>` = 0, `is` = 1); never reuse the pad id",
    "01_padding", _zero_based_ids, raises=False,
    article_line="X = [[0, 1, 2, 3, 4, 5, 6], [7, 7], [6, 8]]",
))


# Chapter 3: masking the loss -----------------------------------------------------------------

def _data_index_0dim() -> object:
    Y = article_batch(labels=True).view(-1)
    tag_pad_token = TAGS["<PAD>"]
    mask = (Y > tag_pad_token).float()  # noqa: SIM300 - the article's line
    return int(torch.sum(mask).data[0])


def _float_labels_as_index() -> object:
    Y = article_batch(labels=True).view(-1)  # float64, as the numpy padding made it
    Y_hat = torch.zeros(Y.numel(), len(TAGS)).log_softmax(1)
    return Y_hat[range(Y_hat.shape[0]), Y]


register(Bug(
    "data_index_0dim", "`torch.sum(mask).data[0]` on a 0-dim tensor",
    "`torch.sum(mask).item()` (or keep it a tensor)", "03_masking", _data_index_0dim,
    article_line="nb_tokens = int(torch.sum(mask).data[0])",
    patches=(("int(torch.sum(mask).data[0])", "int(torch.sum(mask).item())"),),
))
register(Bug(
    "float_labels_as_index", "The float `padded_Y` used to pick `Y_hat[range, Y]`",
    "Integer labels (`pad_batch` / `.long()`)", "03_masking", _float_labels_as_index,
    article_line=_PICK_LINE,
))


# Chapter 4: BieberLSTM, as printed, one bug after another ------------------------------------

def _forward(bug_id: str, X: Tensor, lengths: list[int]) -> Tensor:
    return build_before(bug_id)(X, lengths)


def _loss(bug_id: str, X: Tensor, Y: Tensor, lengths: list[int]) -> Tensor:
    model = build_before(bug_id)
    return model.loss(model(X, lengths), Y, lengths)


register(Bug(
    "stray_self_lstm", "A bare `self.lstm` line in `__init__` reads an attribute that does not exist yet",
    "Delete the line", "04_bieber_lstm", lambda: build_before("stray_self_lstm"),
    article_line="self.lstm",
    patches=(("        # when the model is bidirectional we double the output dimension\n"
              "        self.lstm\n\n", ""),),
))
register(Bug(
    "missing_super_init", "`__init__` never calls `super().__init__()`",
    "Call `super().__init__()` first", "04_bieber_lstm", lambda: build_before("missing_super_init"),
    article_line="def __init__(self, nb_layers, nb_lstm_units=100, embedding_dim=3, batch_size=3):",
    patches=(("        self.vocab = {", "        super().__init__()\n        self.vocab = {"),),
))
register(Bug(
    "nb_lstm_layers", "`self.nb_lstm_layers` is never set (`__init__` stores `self.nb_layers`)",
    "One name: `self.nb_layers`", "04_bieber_lstm", lambda: build_before("nb_lstm_layers"),
    article_line="num_layers=self.nb_lstm_layers,",
    patches=(("num_layers=self.nb_lstm_layers,", "num_layers=self.nb_layers,"),),
))
register(Bug(
    "hparams", "`init_hidden` reads `self.hparams`, which this class does not have",
    "Use the model's own fields and device", "04_bieber_lstm",
    lambda: _forward("hparams", article_batch(), _LENGTHS), article_line=_RANDN_LINE,
    patches=(("self.hparams.nb_lstm_layers", "self.nb_layers"),
             ("self.hparams.on_gpu", "self.word_embedding.weight.is_cuda")),
))
register(Bug(
    "size_unpack_2d", "`batch_size, seq_len, _ = X.size()` on a 2-D `(B, T)` batch of ids",
    "`batch_size, seq_len = X.size()`", "04_bieber_lstm",
    lambda: _forward("size_unpack_2d", article_batch(), _LENGTHS),
    article_line="batch_size, seq_len, _ = X.size()",
    patches=(("batch_size, seq_len, _ = X.size()", "batch_size, seq_len = X.size()"),),
))
register(Bug(
    "lowercase_x", "`pack_padded_sequence(x, ...)`: lowercase `x` is undefined",
    "`pack_padded_sequence(X, ...)`", "04_bieber_lstm",
    lambda: _forward("lowercase_x", article_batch().long(), _LENGTHS), article_line=_PACK_LINE,
    patches=(("pack_padded_sequence(x, X_lengths", "pack_padded_sequence(X, X_lengths"),),
))
register(Bug(
    "nb_tags_minus_one", "`nb_tags = len(self.tags) - 1` leaves no output for the last tag id (NNP = 5)",
    "One output per tag id, `<PAD>` included: `len(self.tags)` (the mask keeps `<PAD>` out of the loss)",
    "04_bieber_lstm",
    lambda: _loss("nb_tags_minus_one", article_batch().long(), article_batch(labels=True).long(), _LENGTHS),
    article_line="self.nb_tags = len(self.tags) - 1",
    patches=(("        # don't count the padding tag for the classifier output\n"
              "        self.nb_tags = len(self.tags) - 1",
              "        # one output per tag id; <PAD>'s is never a target, the mask drops it\n"
              "        self.nb_tags = len(self.tags)"),),
))

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


def _random_init_hidden() -> str:
    model = build_before("random_init_hidden")
    X = article_batch().long()
    same = torch.equal(model(X, _LENGTHS), model(X, _LENGTHS))
    return f"two calls on the same batch give the same outputs: {same}"


def _hidden_rows_unchecked() -> str:
    model = build_before("random_init_hidden")
    X = torch.from_numpy(article_pad(X_IDS[1:], 0)).long()  # two sentences, T = 2
    torch.manual_seed(1)
    h0, c0 = model.init_hidden()  # the state forward() will draw after the same seed
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # memory allocated and never written is filled with NaN
    try:
        torch.manual_seed(1)
        model(X, [2, 2])
    finally:
        torch.use_deterministic_algorithms(deterministic)
    h_n = model.hidden[0]
    with torch.no_grad():  # the two real rows, run with a state of the right size
        packed = nn.utils.rnn.pack_padded_sequence(model.word_embedding(X), [2, 2], batch_first=True)
        _, (h_two, _) = model.lstm(packed, (h0[:, :2].contiguous(), c0[:, :2].contiguous()))
    return (
        f"a batch of {X.size(0)} sentences returns h_n with {h_n.size(1)} rows; the real rows are "
        f"right: {torch.allclose(h_n[:, :2], h_two, atol=1e-6)}; the extra row is never written "
        f"(all NaN when PyTorch fills uninitialized memory): {bool(torch.isnan(h_n[:, 2]).all())}"
    )


def _fixed_batch_size() -> object:
    four = [*X_IDS, [VOCAB["say"], VOCAB["sorry"]]]  # a fourth lyric: "say sorry"
    X = torch.from_numpy(article_pad(four, 0)).long()
    return _forward("random_init_hidden", X, [len(s) for s in four])


register(Bug(
    "random_init_hidden", "`init_hidden` draws a random initial state for every batch",
    "No `init_hidden`: `self.lstm(X)` starts from zeros sized by the batch", "04_bieber_lstm",
    _random_init_hidden, raises=False, article_line=_RANDN_LINE,
    patches=((_INIT_HIDDEN_METHOD, ""),
             ("        # reset the LSTM hidden state. Must be done before you run a new batch. "
              "Otherwise the LSTM will treat\n"
              "        # a new batch as a continuation of a sequence\n"
              "        self.hidden = self.init_hidden()\n\n", ""),
             ("X, self.hidden = self.lstm(X, self.hidden)", "X, _ = self.lstm(X)")),
))
register(Bug(
    "hidden_rows_unchecked",
    "A smaller batch than `batch_size`: `h_n` keeps a row for a sentence that is not there",
    "Same fix: no `init_hidden`", "04_bieber_lstm", _hidden_rows_unchecked, raises=False,
    article_line=_RANDN_LINE,
))
register(Bug(
    "fixed_batch_size", "`init_hidden` sizes the state for `batch_size=3`, a batch of 4 breaks",
    "Same fix: no `init_hidden`", "04_bieber_lstm", _fixed_batch_size, article_line=_RANDN_LINE,
))
register(Bug(
    "unsorted_lengths",
    "The class packs with `enforce_sorted=True` (the default): a batch not sorted by length fails",
    "`pack_padded_sequence(..., enforce_sorted=False)` sorts and unsorts for you",
    "02_packing",
    lambda: _forward("unsorted_lengths", article_batch((1, 0, 2)).long(), [2, 7, 2]),
    article_line=_PACK_LINE,
    patches=(("X_lengths, batch_first=True)", "X_lengths, batch_first=True, enforce_sorted=False)"),),
))
register(Bug(
    "no_total_length_view", "No `total_length`: a batch padded beyond its longest sentence breaks `X.view`",
    "`pad_packed_sequence(X, batch_first=True, total_length=seq_len)`", "04_bieber_lstm",
    lambda: _forward("no_total_length_view", article_batch((1, 2)).long(), [2, 2]),
    article_line="X, _ = torch.nn.utils.rnn.pad_packed_sequence(X, batch_first=True)",
    patches=(("pad_packed_sequence(X, batch_first=True)",
              "pad_packed_sequence(X, batch_first=True, total_length=seq_len)"),),
))
