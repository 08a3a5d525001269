"""Hyper-parameter search with Optuna: a study over the tagger's options, pruned, resumable, shared.

One *trial* trains one tagger with :func:`seqtag.train.fit` and scores it by its best dev
accuracy. The search space (:func:`suggest`) covers the learning rate, the hidden size, dropout,
the number of layers, LSTM or GRU and the char-CNN's size (``0`` = no char-CNN); every other option
comes from a preset (``--preset``) and can be fixed on the command line.

* **Pruning.** After every epoch a trial reports its dev accuracy (``trial.report``); the
  :class:`optuna.pruners.MedianPruner` stops a trial whose accuracy is below the median of the
  earlier trials at the same epoch, so poor settings cost one or two epochs, not all of them.
* **Resuming.** The study lives in a database given by ``--storage`` (an SQLAlchemy URL such as
  ``sqlite:///study.db``) under ``--study-name``; it is opened with ``load_if_exists=True``, so
  running the command again adds trials to the same study instead of starting over.
* **Several workers.** Every process that opens the same storage and study name works on the same
  study: Optuna's sampler reads all finished trials from the database before proposing the next.
  On one machine, start the same command in several terminals::

      python -m seqtag.experiments.search --storage sqlite:///study.db --study-name ewt --trials 10   # terminal 1
      python -m seqtag.experiments.search --storage sqlite:///study.db --study-name ewt --trials 10   # terminal 2

  SQLite is fine for a few processes on one disk (waits on its lock are allowed 60 s here). For
  several machines use a database server they all reach, e.g.
  ``--storage postgresql://user:password@host/optuna`` (needs ``psycopg2``) or
  ``mysql+pymysql://...``; nothing else changes. Each worker's sampler gets its own random seed
  unless ``--sampler-seed`` is given (give different ones, or workers propose the same points).

Plots: :func:`plot_study` draws the optimisation history, the parameter importances (PED-ANOVA,
which needs no scikit-learn), every trial's dev accuracy per epoch (where pruning shows) and a
parallel-coordinate plot with ``optuna.visualization.matplotlib``.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

try:
    import optuna
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("seqtag.experiments.search needs Optuna: pip install 'seqtag[search]'") from exc

from seqtag.config import TrainConfig, split_overrides
from seqtag.data import Sentence, load_ewt
from seqtag.options import ArgumentParser
from seqtag.presets import preset
from seqtag.train import fit

__all__ = [
    "SPACE",
    "suggest",
    "make_objective",
    "open_study",
    "run_search",
    "best_options",
    "plot_study",
    "summary_table",
    "main",
]

#: The searched parameters and their ranges (names are TaggerConfig / TrainConfig fields).
SPACE: dict[str, str] = {
    "lr": "log-uniform in [3e-4, 1e-2]",
    "hidden_size": "one of 32, 64, 128, 256",
    "dropout": "uniform in [0, 0.5]",
    "num_layers": "1 or 2 (rnn_dropout = dropout between them)",
    "rnn": "lstm or gru",
    "char_filters": "one of 0 (no char-CNN), 25, 50, 100",
}


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    """Draw one point of :data:`SPACE`: the overrides (TaggerConfig/TrainConfig names) of a trial."""
    options: dict[str, Any] = {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "hidden_size": trial.suggest_categorical("hidden_size", [32, 64, 128, 256]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "num_layers": trial.suggest_int("num_layers", 1, 2),
        "rnn": trial.suggest_categorical("rnn", ["lstm", "gru"]),
    }
    options["rnn_dropout"] = options["dropout"] if options["num_layers"] > 1 else 0.0
    filters = trial.suggest_categorical("char_filters", [0, 25, 50, 100])
    options["char_cnn"] = filters > 0
    if filters > 0:
        options["char_filters"] = filters
    return options


def make_objective(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    base: dict[str, Any] | None = None,
    space: Callable[[optuna.Trial], dict[str, Any]] = suggest,
) -> Callable[[optuna.Trial], float]:
    """The function Optuna maximises: train with ``base`` updated by ``space(trial)``, return the
    best dev accuracy; report the dev accuracy after each epoch and stop early when pruned.

    Args:
        train, dev: labelled sentences.
        base: options every trial shares (a preset, plus e.g. ``epochs``, ``max_sentences``).
        space: draws a trial's own options (default :func:`suggest`).
    """
    base = dict(base or {})
    split_overrides(base)  # unknown option names fail now, not in the first trial

    def objective(trial: optuna.Trial) -> float:
        options = {**base, **space(trial)}
        model_opts, train_opts = split_overrides(options)
        train_opts.setdefault("patience", 0)  # the pruner decides when to stop, not patience

        def report(epoch: int, history: dict[str, list[float]]) -> None:
            accuracy = history["dev_accuracy"][-1]
            trial.report(accuracy, step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} (dev accuracy {accuracy:.4f})")

        result = fit(train, dev, TrainConfig(**train_opts), model_opts, progress=False, on_epoch=report)
        history = result.history
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("seconds_per_epoch", sum(history["seconds"]) / len(history["seconds"]))
        trial.set_user_attr("parameters", result.model.num_parameters())
        return max(history["dev_accuracy"])

    return objective


def open_study(
    storage: str | None,
    study_name: str,
    *,
    sampler_seed: int | None = None,
    n_startup_trials: int = 2,
    n_warmup_steps: int = 1,
) -> optuna.Study:
    """Create the study, or open it if ``storage`` already holds one of that name (resuming).

    Args:
        storage: an SQLAlchemy URL (``sqlite:///study.db``, ``postgresql://...``) or ``None``
            for an in-memory study (lost when the process ends).
        study_name: the study's name inside the storage.
        sampler_seed: seeds the TPE sampler (``None``: a random seed per process).
        n_startup_trials: trials run to the end before the median pruner prunes anything.
        n_warmup_steps: epochs a trial always runs before it can be pruned.
    """
    url: str | optuna.storages.BaseStorage | None = storage
    if storage is not None and storage.startswith("sqlite:"):
        # Several processes share one SQLite file: wait for its lock instead of failing at once.
        url = optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.create_study(
        storage=url,
        study_name=study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=n_startup_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps),
        load_if_exists=True,
    )


def run_search(
    study: optuna.Study,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    n_trials: int,
    base: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    space: Callable[[optuna.Trial], dict[str, Any]] = suggest,
) -> optuna.Study:
    """Run ``n_trials`` more trials of ``study`` (or until ``timeout`` seconds); returns ``study``."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    objective = make_objective(train, dev, base, space)
    study.optimize(objective, n_trials=n_trials, timeout=timeout, gc_after_trial=True)
    return study


def best_options(study: optuna.Study, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options of the study's best trial, as ``train`` overrides (``base`` updated)."""
    trial = study.best_trial
    return {**(base or {}), **suggest(optuna.trial.FixedTrial(trial.params))}


def plot_study(study: optuna.Study) -> list[Any]:
    """Optimisation history, parameter importances, learning curves and parallel coordinates.

    Returns the matplotlib ``Axes`` drawn (importances are skipped, with a note printed, while
    fewer than two trials are complete). Optuna marks these plots experimental; that warning is
    silenced here.
    """
    from optuna.visualization import matplotlib as ovm

    axes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Attempting to set identical low and high ylims")
        ax = ovm.plot_optimization_history(study, target_name="dev accuracy")
        ax.set_title("Optimisation history: dev accuracy of each trial")
        axes.append(ax)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) >= 2:
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            ax = ovm.plot_param_importances(study, evaluator=evaluator, target_name="dev accuracy")
            ax.set_title("", loc="left")  # Optuna's own title, which would overlap ours
            ax.set_title("Parameter importances (PED-ANOVA)")
            axes.append(ax)
        else:
            print("parameter importances need at least two complete trials")
        ax = ovm.plot_intermediate_values(study)
        ax.set_title("Dev accuracy after each epoch (pruned trials stop early)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("dev accuracy")
        axes.append(ax)
        ax = ovm.plot_parallel_coordinate(study, target_name="dev accuracy")
        ax.set_title("Parallel coordinates: one line per complete trial")
        ax.set_xlabel("parameter")
        ax.set_ylabel("dev accuracy")
        axes.append(ax)
    for ax in axes:
        ax.figure.set_size_inches(9, 4)
        ax.figure.tight_layout()
    return axes


def summary_table(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, dev accuracy (``None`` unless complete), epochs run, params."""
    rows = []
    for t in study.trials:
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "dev_accuracy": t.value,
            "epochs": len(t.intermediate_values),
            **t.params,
        })
    return rows


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seqtag.experiments.search``: run trials of a (new or existing) study on UD English EWT."""
    ap = ArgumentParser(
        prog="python -m seqtag.experiments.search",
        description="Optuna search over the tagger's options on UD English EWT (see the module docstring).",
    )
    ap.add_argument("--storage", default="sqlite:///study.db",
                    help="SQLAlchemy URL of the study database (default sqlite:///study.db); "
                         "share it between processes or machines to search in parallel")
    ap.add_argument("--study-name", default="seqtag", help="study name inside the storage")
    ap.add_argument("--trials", type=int, default=10, help="trials this process runs (default 10)")
    ap.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    ap.add_argument("--preset", default="default", help="options every trial starts from")
    ap.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    ap.add_argument("--max-sentences", type=int, default=None, help="train on a subset (default: all)")
    ap.add_argument("--tagset", choices=["upos", "xpos"], default="upos")
    ap.add_argument("--embeddings", default=None, help="glove50 or a GloVe text file (default: the preset's)")
    ap.add_argument("--seed", type=int, default=0, help="training seed of every trial")
    ap.add_argument("--sampler-seed", type=int, default=None, help="TPE sampler seed (default: random)")
    ap.add_argument("--set", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="fix another option for every trial, e.g. --set embedding_dim 100")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    base = preset(args.preset)
    base.update(epochs=args.epochs, tagset=args.tagset, seed=args.seed, device=args.device,
                max_sentences=args.max_sentences)
    if args.embeddings is not None:
        base["embeddings"] = args.embeddings
    base.update({k: _parse_value(v) for k, v in args.set})
    study = open_study(args.storage, args.study_name, sampler_seed=args.sampler_seed)
    before = len(study.trials)
    run_search(study, load_ewt("train"), load_ewt("dev"), args.trials, base, timeout=args.timeout)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    print(f"study {args.study_name!r} in {args.storage}: {len(study.trials)} trials "
          f"({len(study.trials) - before} new), {len(done)} complete")
    if done:
        print(f"best dev accuracy {study.best_value:.4f} with {json.dumps(study.best_params)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
