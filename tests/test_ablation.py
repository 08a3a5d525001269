"""Tests for seqtag.experiments.ablation and ablation_results: the variants, the jobs, a tiny run, the table, resuming from JSON."""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from seqtag.data import Sentence
from seqtag.experiments.ablation import (
    BASELINE,
    EXTENSIONS,
    FULL,
    QUICK,
    _known_tags,
    jobs_of,
    run_jobs,
    variants,
)
from seqtag.experiments.ablation_results import (
    Run,
    aggregate,
    load_results,
    previous_runs,
    results_payload,
    runs_of_seeds,
    save_results,
    schedule_table,
)
from seqtag.presets import preset

UPOS = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", ".": "PUNCT"}
XPOS = {"the": "DT", "a": "DT", "dog": "NN", "cat": "NN", "runs": "VBZ", ".": "."}


def _corpus(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(["the", "a"]), rng.choice(["dog", "cat"]), "runs", "."]
        out.append(Sentence(words, [UPOS[w] for w in words], [XPOS[w] for w in words]))
    return out


DATA = (_corpus(20, 0), _corpus(6, 1), _corpus(6, 2))
TINY = replace(QUICK, epochs=1, max_sentences=None, max_eval=None, seeds=(0, 1),
               model={"embedding_dim": 8, "hidden_size": 8, "char_filters": 4, "batch_size": 8,
                      "device": "cpu"})


def test_each_extension_changes_only_its_own_options() -> None:
    table = variants(FULL)
    base = table["baseline"]
    assert base["bidirectional"] is False and base["char_cnn"] is False and base["embeddings"] is None
    for name, change in EXTENSIONS.items():
        differs = {k for k in table[name] if table[name][k] != base.get(k)}
        assert differs == set(change), name
    # `all` is the list together; the best preset is that recipe, trained longer, with its own
    # training options (Adam's beta2 among them), a wider BiLSTM and both cores of the CPU (and nothing else different)
    best = preset("best")
    differs = {k for k in best if best[k] != table["all"].get(k)}
    assert differs == {"hidden_size", "epochs", "patience", "aux_tagset", "lr_schedule", "ema", "flipped", "num_threads",
                       "adam_beta2"}
    assert table["all_gru"] == {**table["all"], "rnn": "gru"}
    assert all(v["epochs"] == FULL.epochs and v["patience"] == FULL.patience for v in table.values())


def test_schedule_model_overrides_every_variant() -> None:
    quick = variants(QUICK)
    assert {v["hidden_size"] for v in quick.values()} == {QUICK.model["hidden_size"]}
    assert all(v["rnn_dropout"] == 0.0 for v in quick.values() if v["num_layers"] == 1)
    assert set(BASELINE) <= set(quick["baseline"])


def test_jobs_repeat_seeds_only_for_repeated_variants() -> None:
    jobs = jobs_of(QUICK)
    names = [j[0] for j in jobs]
    per_run = len(QUICK.tagsets)
    assert names.count("baseline") == len(QUICK.seeds) * per_run
    assert names.count("+glove") == per_run
    assert "all_gru" not in names  # not in QUICK's default variants
    assert [j[0] for j in jobs_of(QUICK, ["all_gru"])] == ["all_gru"] * per_run
    with pytest.raises(ValueError, match=r"unknown variant\(s\) \['\+nope'\]"):
        jobs_of(QUICK, ["+nope"])


def test_known_tags_drops_sentences_with_unseen_tags() -> None:
    train = _corpus(3, 0)
    odd = Sentence(["dog"], ["X"], ["FW"])
    assert _known_tags([*train, odd], train, "xpos") == train


def test_tiny_ablation_runs_and_aggregates() -> None:
    jobs = jobs_of(TINY, ["baseline", "+bidirectional"])
    seen: list[Run] = []
    runs = run_jobs(jobs, TINY, data=DATA, device="cpu", on_run=seen.append)
    assert runs == seen and len(runs) == 2 * 2 + 2  # baseline: 2 seeds x 2 tag sets
    for run in runs:
        assert 0.0 <= run.test_accuracy <= 1.0 and 0.0 <= run.dev_accuracy <= 1.0
        assert run.epochs == 1 and run.parameters > 0 and run.seconds_per_epoch > 0
    table = aggregate(runs)
    assert [row["variant"] for row in table] == ["baseline", "+bidirectional"]
    assert table[0]["seeds"] == 2 and table[1]["seeds"] == 1
    assert table[1]["parameters"] > table[0]["parameters"]  # two directions, more weights
    # Same seed, same numbers.
    again = run_jobs(jobs[:1], TINY, data=DATA, device="cpu")
    assert again[0].test_accuracy == runs[0].test_accuracy


def _row(variant: str, tagset: str, seed: int, acc: float) -> dict[str, object]:
    return asdict(Run(variant, tagset, seed, acc, acc, acc / 2, 0.1, 100, 1.0, 3, 2))


def test_aggregate_mean_and_std() -> None:
    rows = [_row("b", "upos", s, a) for s, a in [(0, 0.90), (1, 0.92), (2, 0.94)]]
    rows += [_row("b", "xpos", 0, 0.8)]
    (row,) = aggregate(rows)
    assert row["upos_test"] == pytest.approx(0.92) and row["upos_test_std"] == pytest.approx(0.02)
    assert row["xpos_dev"] == pytest.approx(0.8) and row["xpos_dev_std"] == 0.0
    assert row["upos_test_oov"] == pytest.approx(0.46) and row["seeds"] == 3


def test_results_round_trip_and_resume_keeps_only_matching_runs(tmp_path: Path) -> None:
    jobs = jobs_of(TINY, ["baseline"])
    runs = [Run(**_row("baseline", t, s, 0.5)) for _, _, t, s in jobs]  # type: ignore[arg-type]
    options = {name: opts for name, opts, _, _ in jobs}
    path = save_results(tmp_path / "r.json", results_payload("cmd", TINY, options, runs, 60.0))
    data = load_results(path)
    assert data["command"] == "cmd" and data["minutes"] == 1.0 and len(data["runs"]) == 4
    kept, kept_options, minutes = previous_runs(path, jobs)
    assert kept == runs and kept_options == options and minutes == 1.0
    changed = [(n, {**o, "hidden_size": 99}, t, s) for n, o, t, s in jobs]
    assert previous_runs(path, changed)[0] == []  # other options: train again
    other = jobs_of(TINY, ["+gru"])
    assert previous_runs(path, other)[0] == runs  # runs of variants not asked for are kept
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a seqtag.experiments.ablation results file"):
        load_results(tmp_path / "bad.json")


def test_results_record_the_machine(tmp_path: Path) -> None:
    path = save_results(tmp_path / "r.json", results_payload("cmd", TINY, {}, [], 0.0))
    recorded = load_results(path)["machine"]
    assert recorded["cpu"] and recorded["cpu_count"] >= 1 and "torch" in recorded and "load_average" in recorded


def test_runs_of_seeds_compares_every_variant_on_the_same_seeds() -> None:
    rows = [_row("baseline", "upos", s, a) for s, a in [(0, 0.90), (1, 0.92), (2, 0.94)]]
    rows += [_row("+gru", "upos", 0, 0.91), _row("+bidirectional", "upos", 1, 0.95)]
    table = aggregate(runs_of_seeds(rows, [0]))
    assert [r["variant"] for r in table] == ["baseline", "+gru"]  # +bidirectional has no seed-0 run
    assert table[0]["upos_test"] == pytest.approx(0.90) and table[0]["seeds"] == 1
    assert aggregate(runs_of_seeds(rows, [0, 1, 2]))[0]["upos_test"] == pytest.approx(0.92)
    assert runs_of_seeds(rows, [5]) == []


def test_schedule_table_says_what_each_variant_ran() -> None:
    runs = [_row("baseline", t, s, 0.9) for s in (0, 1) for t in ("upos", "xpos")] + [_row("+gru", "upos", 0, 0.9)]
    results = {"runs": runs, "variants": {"baseline": {"epochs": 10, "patience": 3}, "+gru": {"epochs": 10}}}
    base, gru = schedule_table(results)
    assert base == {"variant": "baseline", "seeds": [0, 1], "tagsets": ["upos", "xpos"], "runs": 4,
                    "max_epochs": 10, "patience": 3, "epochs_run": [3, 3, 3, 3], "best_epochs": [2, 2, 2, 2]}
    assert gru["seeds"] == [0] and gru["runs"] == 1 and gru["patience"] is None


def test_the_stored_full_ablation_ran_the_variants_this_code_defines() -> None:
    """Chapter 7 shows book/results/ablation_full.json as the table of these variants: each stored
    variant's options must be what ``variants(FULL)`` builds today."""
    import seqtag.results

    stored = seqtag.results.load("ablation_full")["variants"]
    table = variants(FULL)
    assert set(stored) <= set(table) and "all" in stored
    for name, options in stored.items():
        assert options == table[name], name
