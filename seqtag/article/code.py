"""The article's code as printed, and its toy data.

William Falcon's 2018 article *Taming LSTMs* tags three Justin Bieber lyrics with parts of speech.
This module keeps what the article prints, so that the chapters can run it and the bug index can
point at its lines:

* the toy data (:data:`SENTENCES`, :data:`TAG_SEQUENCES`, :data:`VOCAB`, :data:`TAGS`) and its ids;
* trick 1, the numpy padding, as printed (:data:`ARTICLE_TRICK1`) and as a function
  (:func:`article_pad`);
* the ``BieberLSTM`` class as printed (:data:`ARTICLE_BIEBER_LSTM`, comments included) and
  :func:`define`, which executes a class source with the article's imports.

Nothing here is fixed: :mod:`seqtag.article.fixes` holds the repairs. This module imports nothing
from :mod:`seqtag`: it is the article's code, not the package's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import Variable

__all__ = [
    "SENTENCES",
    "TAG_SEQUENCES",
    "VOCAB",
    "TAGS",
    "X_IDS",
    "Y_IDS",
    "ARTICLE_TRICK1",
    "ARTICLE_TRICK1_X",
    "ARTICLE_SHOWN_PADDED_X",
    "ARTICLE_BIEBER_LSTM",
    "article_pad",
    "article_batch",
    "define",
    "locate",
]

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

#: The article's trick-1 code block (the restated ``X`` joined on one line).
ARTICLE_TRICK1 = '''\
# we have 3 sentences
X = [[0, 1, 2, 3, 4, 5, 6], [7, 7], [6, 8]]

# get the length of each sentence
X_lengths = [len(sentence) for sentence in X]

# create an empty matrix with padding tokens
pad_token = vocab['<PAD>']
longest_sent = max(X_lengths)
batch_size = len(X)
padded_X = np.ones((batch_size, longest_sent)) * pad_token

# copy over the actual sequences
for i, x_len in enumerate(X_lengths):
  sequence = X[i]
  padded_X[i, 0:x_len] = sequence[:x_len]
'''


def article_pad(sequences: Sequence[Sequence[int]], pad_token: int) -> np.ndarray:
    """The article's trick 1, line for line: a ``(B, T)`` **float64** numpy array of ids.

    ``np.ones(...) * pad_token`` makes floats, so the ids come out as ``1.0, 2.0, ...``; this is
    the array that :class:`torch.nn.Embedding` later refuses. ``T`` is the longest sequence.
    """
    X_lengths = [len(sentence) for sentence in sequences]  # the article's names
    longest_sent = max(X_lengths)
    batch_size = len(sequences)
    padded_X = np.ones((batch_size, longest_sent)) * pad_token
    for i, x_len in enumerate(X_lengths):
        sequence = sequences[i]
        padded_X[i, 0:x_len] = sequence[:x_len]
    return padded_X


def article_batch(rows: Sequence[int] = (0, 1, 2), labels: bool = False) -> Tensor:
    """Rows of the article's padded ``X`` (or ``Y``) as ``torch.from_numpy`` gives them.

    Returns a ``(len(rows), 7)`` float64 CPU tensor: the rows keep all 7 time steps of the
    three-lyric batch, even when the sentences they hold are shorter.
    """
    data = Y_IDS if labels else X_IDS
    return torch.from_numpy(article_pad(data, 0))[list(rows)]


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


def define(source: str) -> type[nn.Module]:
    """Execute a ``BieberLSTM`` class source and return the class.

    The source sees the article's imports: ``torch``, ``nn``, ``F`` and ``Variable``.

    Raises:
        ValueError: the source defines no class named ``BieberLSTM``.
    """
    namespace: dict[str, object] = {
        "__name__": "article", "torch": torch, "nn": nn, "F": F, "Variable": Variable,
    }
    exec(compile(source, "<the article's BieberLSTM>", "exec"), namespace)
    cls = namespace.get("BieberLSTM")
    if not isinstance(cls, type):
        raise ValueError("the source does not define a class named BieberLSTM")
    return cls


def locate(line: str) -> str:
    """Where ``line`` (stripped) stands in the article: ``"BieberLSTM, line 17"`` or ``"trick 1, line 11"``.

    Raises:
        ValueError: the line is in neither listing (the bug index never cites a line the article
            does not print).
    """
    for name, listing in (("trick 1", ARTICLE_TRICK1), ("BieberLSTM", ARTICLE_BIEBER_LSTM)):
        for number, text in enumerate(listing.splitlines(), 1):
            if text.strip() == line.strip():
                return f"{name}, line {number}"
    raise ValueError(f"not a line of the article's code: {line.strip()!r}")
