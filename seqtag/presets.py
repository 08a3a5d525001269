"""Named sets of hyper-parameters for ``python -m seqtag train --preset NAME``.

A preset maps field names of :class:`seqtag.models.TaggerConfig` and :class:`seqtag.config.TrainConfig`
to values, plus ``"char_cnn": True`` to switch on the character CNN (its vocabulary size is only
known once the training data is read). ``"default"`` is what ``train`` uses without ``--preset``;
every other preset lists only what it changes relative to ``"default"`` (see :func:`preset`).
Options given on the command line override both.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, dict[str, Any]] = {
    # The tuned word-level BiLSTM (book chapter 5): one layer, dropout, Adam with clipping, early
    # stopping on dev accuracy. Words seen once in training (min_freq=2) train the vectors of
    # the unknown-word classes (<unk:Cap>, <unk:low-ing>...; unk_signatures), which the tagger
    # uses for the words it meets first at test time. UPOS on EWT test: book/results/ewt_upos.json.
    "default": {
        "embedding_dim": 100,
        "hidden_size": 128,
        "num_layers": 1,
        "rnn": "lstm",
        "bidirectional": True,
        "dropout": 0.33,
        "epochs": 12,
        "batch_size": 32,
        "lr": 2e-3,
        "clip_norm": 5.0,
        "patience": 3,
        "min_freq": 2,
        "unk_signatures": True,
        "lr_decay": 1.0,
    },
    # The book's best configuration (chapter 7, "The extension list, measured"): every extension
    # of the article's list together. GloVe 6B 50d initialises the first 50 of 100 word-embedding
    # dimensions (fine-tuned), a char-CNN adds 50 features per word, a 2-layer BiLSTM reads them,
    # dropout 0.33 everywhere and word dropout train the <unk> vector; singleton words keep their
    # GloVe vectors (min_freq=1). After training, the 100k most frequent GloVe words the treebank
    # lacks join the vocabulary, mapped into the trained embedding space (expand_vocab), so an
    # unseen test word still has a vector. On top of that list: a second output layer for the other
    # tag set (joint UPOS+XPOS), a cosine learning-rate schedule, an EMA of the weights, the flipped
    # (exact, faster) BiLSTM path, and 256 hidden units per direction (128 scored lower on both
    # tag sets and seeds it was tried on), and Adam's beta2 at 0.9 instead of PyTorch's 0.999 (as in
    # Dozat & Manning's taggers; it rose on dev over three seeds), trained for 24 epochs (the cosine schedule over
    # them; 22 until the ninth round, and 24 rose on dev over three seeds). It trains on 2 torch threads, the cores of the 2-core
    # machines it is tuned on (TrainConfig's default is 1: see num_threads). Its accuracy over
    # three seeds, the minutes each took and what each of these choices buys (a character BiLSTM
    # instead of the CNN, a wider BiLSTM or char-CNN, variational dropout, label smoothing, a residual
    # connection, an MLP per output layer, PyTorch's default beta2 and 22 epochs, among them) are in book/results/best.json
    # and best_ablation.json.
    "best": {
        "embeddings": "glove50",
        "embedding_dim": 100,
        "char_cnn": True,
        "char_embedding_dim": 25,
        "char_filters": 50,
        "char_kernel_size": 3,
        "hidden_size": 256,
        "num_layers": 2,
        "rnn": "lstm",
        "bidirectional": True,
        "dropout": 0.33,
        "rnn_dropout": 0.33,
        "word_dropout": 0.05,
        "min_freq": 1,
        "lr": 2e-3,
        "adam_beta2": 0.9,
        "batch_size": 32,
        "epochs": 24,
        "patience": 6,
        "expand_vocab": 100_000,
        "aux_tagset": "xpos",
        "lr_schedule": "cosine",
        "ema": 0.999,
        "flipped": True,
        "num_threads": 2,
    },
}


def preset(name: str) -> dict[str, Any]:
    """The overrides of preset ``name``: ``"default"``'s, updated with ``name``'s own.

    Raises:
        KeyError: no such preset (the message lists the known ones).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return {**PRESETS["default"], **PRESETS[name]}
