"""Tests for seqtag.experiments.search: a tiny Optuna study stored in SQLite, resumed, and pruned."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from seqtag.data import Sentence  # noqa: E402
from seqtag.experiments.search import (  # noqa: E402
    SPACE,
    best_options,
    make_objective,
    open_study,
    run_search,
    suggest,
    summary_table,
)

LEXICON = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB",
           "big": "ADJ", "old": "ADJ", ".": "PUNCT"}
BASE = {"epochs": 2, "batch_size": 8, "embedding_dim": 8, "device": "cpu", "min_freq": 1}


def _corpus(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(["the", "a"]), *rng.sample(["big", "old"], rng.randint(0, 1)),
                 rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"]), "."]
        tags = [LEXICON[w] for w in words]
        out.append(Sentence(words, tags, tags))
    return out


TRAIN, DEV = _corpus(24, 0), _corpus(8, 1)


def _small_space(trial: optuna.Trial) -> dict[str, object]:
    """A cut-down space (small models) so the tests stay fast; SPACE itself is tested below."""
    return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
            "hidden_size": trial.suggest_categorical("hidden_size", [8, 16]),
            "char_cnn": trial.suggest_categorical("char_cnn", [False, True])}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_study_in_sqlite_runs_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = open_study(url, "tiny", sampler_seed=0)
    run_search(study, TRAIN, DEV, n_trials=2, base=BASE, space=_small_space)
    assert (tmp_path / "study.db").is_file()
    assert len(study.trials) == 2
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert 0.0 <= trial.value <= 1.0
        assert sorted(trial.intermediate_values) == [1, 2]  # dev accuracy reported each epoch
        assert trial.value == max(trial.intermediate_values.values())
        assert set(trial.params) == {"lr", "hidden_size", "char_cnn"}
        assert trial.user_attrs["parameters"] > 0
    # Another process (here: a second handle) opens the same study and adds trials to it.
    again = open_study(url, "tiny", sampler_seed=1)
    assert len(again.trials) == 2
    run_search(again, TRAIN, DEV, n_trials=1, base=BASE, space=_small_space)
    assert len(open_study(url, "tiny").trials) == 3
    assert [row["trial"] for row in summary_table(again)] == [0, 1, 2]



def test_pruner_stops_a_trial_after_its_first_report() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    study.optimize(make_objective(TRAIN, DEV, {**BASE, "epochs": 3}, _small_space), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # epochs 2 and 3 never ran


def test_suggest_maps_char_filters_to_the_char_cnn_switch() -> None:
    params = {"lr": 1e-3, "hidden_size": 32, "dropout": 0.2, "num_layers": 2, "rnn": "gru", "char_filters": 25}
    assert set(params) == set(SPACE)
    on = suggest(optuna.trial.FixedTrial(params))
    assert on["char_cnn"] is True and on["char_filters"] == 25 and on["rnn_dropout"] == 0.2
    off = suggest(optuna.trial.FixedTrial({"lr": 1e-3, "hidden_size": 32, "dropout": 0.2, "num_layers": 1,
                                           "rnn": "lstm", "char_filters": 0}))
    assert off["char_cnn"] is False and "char_filters" not in off and off["rnn_dropout"] == 0.0


def test_best_options_rebuilds_the_winning_overrides() -> None:
    study = optuna.create_study(direction="maximize")
    good = {"lr": 2e-3, "hidden_size": 64, "dropout": 0.3, "num_layers": 1, "rnn": "lstm", "char_filters": 50}
    for value, params in [(0.5, {**good, "lr": 1e-2}), (0.9, good)]:
        study.enqueue_trial(params)
        study.optimize(lambda trial, v=value: (suggest(trial), v)[1], n_trials=1)
    options = best_options(study, {"epochs": 3})
    assert options == {"epochs": 3, **suggest(optuna.trial.FixedTrial(good))}
    assert options["char_cnn"] is True and options["lr"] == 2e-3


def test_bad_base_options_and_trial_counts_fail_early() -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hiden'\]"):
        make_objective(TRAIN, DEV, {"hiden": 3})
    with pytest.raises(ValueError, match="n_trials must be >= 1"):
        run_search(open_study(None, "x"), TRAIN, DEV, n_trials=0)
