"""Experiments the book's chapters report: each module runs one comparison and stores its results.

Every module has a ``QUICK`` schedule (seconds: CI and the chapters' default smoke runs, from which
no conclusion is drawn) and a ``FULL`` schedule (all of UD English EWT), and a command line::

    python -m seqtag.experiments.crf_vs_softmax --full --json book/results/crf_vs_softmax.json

- :mod:`~seqtag.experiments.common`: corpus splits, the dev-chosen epoch, results files with the
  machine they ran on;
- :mod:`~seqtag.experiments.crf_vs_softmax`: BiLSTM-CRF against BiLSTM-softmax, UPOS and XPOS
  (chapter 9);
- :mod:`~seqtag.experiments.transformer_vs_bilstm`: a Transformer encoder against the BiLSTM for the
  same epochs and threads (chapter 10);
- :mod:`~seqtag.experiments.ddp_speed`: one process against two data-parallel processes over full
  epochs (chapter 11).

``--preset best`` (chapter 7) has its own: :mod:`~seqtag.experiments.best` trains and analyses one
seed, :mod:`~seqtag.experiments.best_seeds` gathers the seeds, their ablation and their ensemble,
and :mod:`~seqtag.experiments.joint_decoding` scores trained checkpoints decoded two ways.
"""
