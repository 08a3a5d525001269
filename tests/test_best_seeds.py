"""Tests for seqtag.experiments.best_seeds: seed aggregation, targets, ablation rows, the ensemble."""

from __future__ import annotations

import copy
import json
import statistics
from pathlib import Path

import pytest
import torch

from seqtag.experiments import best_seeds
from seqtag.tagger import TrainedTagger
from seqtag.train import fit
from tests.test_train import DEV, SMALL, TRAIN, quick


def _run(seed: int, upos: float, xpos: float | None, minutes: float, command: str = "cmd", **options: object) -> dict:
    """A tiny payload shaped like python -m seqtag.experiments.best's (joint when ``xpos`` is set)."""
    run = {"command": f"{command} --seed {seed}",
           "options": {"seed": seed, "aux_tagset": "xpos" if xpos else None, "ema": 0.999, "hidden_size": 256, **options},
           "tagset": "upos", "train_seconds": 60 * minutes, "epochs_run": 22, "best_epoch": 20 + seed,
           "dev_accuracy": upos - 0.01, "history": {"dev_accuracy": [0.9, upos - 0.01]},
           "test": {"accuracy": upos, "oov_accuracy": upos - 0.2, "iv_accuracy": upos + 0.001},
           "machine": {"cpu": "Some CPU", "load_average": [1.5 + seed, 1.0, 1.0]}}
    if xpos is not None:
        run["aux"] = {"tagset": "xpos", "dev_accuracy": xpos - 0.02,
                      "test": {"accuracy": xpos, "oov_accuracy": xpos - 0.3, "iv_accuracy": xpos + 0.001}}
    return run


def _write(folder: Path, name: str, payload: dict) -> str:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def test_aggregation_mean_std_and_targets_from_the_numbers(tmp_path: Path) -> None:
    files = [_write(tmp_path, f"s{i}", _run(i, u, x, m))
             for i, (u, x, m) in enumerate([(0.961, 0.955, 18.0), (0.962, 0.957, 19.5), (0.957, 0.959, 21.0)])]
    abl = _write(tmp_path, "no_ema", _run(0, 0.958, 0.950, 17.0, "other", ema=0))
    out, out_abl = tmp_path / "best.json", tmp_path / "abl.json"
    assert best_seeds.main(["--seeds", *files, "--ablation", f"no_ema={abl}", "--json", str(out),
                            "--ablation-json", str(out_abl), "--bench", str(tmp_path / "none.json")]) == 0
    data = json.loads(out.read_text())
    assert [s["seed"] for s in data["seeds"]] == [0, 1, 2] and data["seeds"][1]["machine"]["load_average"][0] == 2.5
    assert data["seeds"][2]["xpos"]["test"] == 0.959 and data["seeds"][0]["best_epoch"] == 20
    up = data["summary"]["upos"]["test"]
    assert up["mean"] == pytest.approx(statistics.fmean([0.961, 0.962, 0.957]))
    assert up["std"] == pytest.approx(statistics.stdev([0.961, 0.962, 0.957])) and up["min"] == 0.957
    met = {t["name"]: t["met"] for t in data["targets"]}
    # UPOS mean 0.96 >= 0.96; XPOS mean 0.957 >= 0.956; the slowest seed 21 min > 20
    assert met == {"upos_test_mean": True, "xpos_test_mean": True, "train_minutes_max": False}
    assert data["met"] is False and "machine" in data and data["ensemble"] is None
    rows = {r["name"]: r for r in json.loads(out_abl.read_text())["rows"]}
    assert list(rows) == ["preset", "preset_mean", "no_ema"]
    assert rows["no_ema"]["gain"]["upos"]["test"] == pytest.approx(0.961 - 0.958)
    assert rows["no_ema"]["gain"]["xpos"]["dev"] == pytest.approx((0.955 - 0.02) - (0.950 - 0.02))
    assert rows["no_ema"]["gain"]["train_minutes"] == pytest.approx(1.0)
    assert rows["no_ema"]["command"] == "other --seed 0" and rows["preset"]["command"] == "cmd --seed 0"
    assert rows["no_ema"]["change"] == "--set ema=0"
    assert rows["preset_mean"]["upos"]["test"] == pytest.approx(up["mean"])


def test_a_single_tagset_row_and_a_flipped_speed_row(tmp_path: Path) -> None:
    seeds = [best_seeds.seed_row(_run(i, 0.95 + i / 1000, 0.94, 10.0)) for i in range(2)]
    no_joint = best_seeds.seed_row(_run(0, 0.951, None, 8.0))
    bench = {"other_ratios": {"bucketed_flipped_vs_bucketed_packed": 1.5}, "ratio_batch_size": 32}
    rows = best_seeds.ablation_rows(seeds, {"no_joint": no_joint}, best_seeds.flipped_speed(bench, "bench_cpu"))
    row = rows[2]
    assert set(row["gain"]) == {"upos", "train_minutes"} and "xpos" not in row  # no second head: no XPOS
    assert row["gain"]["upos"]["test"] == pytest.approx(-0.001) and row["gain"]["train_minutes"] == 2.0
    assert rows[-1]["speedup"] == 1.5 and rows[-1]["source"] == "bench_cpu.json"
    assert best_seeds.flipped_speed({"other_ratios": {}}, "x") is None
    summary = best_seeds.summarise(seeds)
    assert summary["upos"]["test"]["mean"] == pytest.approx(0.9505)
    low = best_seeds.targets(summary)
    assert [t["met"] for t in low] == [False, False, True]


@pytest.mark.bad_input
def test_bad_inputs_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="not a run file"):
        best_seeds.seed_row({"command": "x"}, "x.json")
    seeds = [best_seeds.seed_row(_run(0, 0.95, 0.94, 10.0))]
    with pytest.raises(ValueError, match="same seed"):
        best_seeds.ablation_rows(seeds, {"no_ema": best_seeds.seed_row(_run(1, 0.95, 0.94, 10.0, ema=0))})
    # a row must be the preset with exactly its one option changed
    with pytest.raises(ValueError, match=r"only ema=0, but its options differ in nothing"):
        best_seeds.ablation_rows(seeds, {"no_ema": best_seeds.seed_row(_run(0, 0.95, 0.94, 10.0))})
    with pytest.raises(ValueError, match=r"only hidden_size=128, but its options differ in \{'ema'"):
        best_seeds.ablation_rows(seeds, {"narrow": best_seeds.seed_row(_run(0, 0.95, 0.94, 10.0, ema=0, hidden_size=128))})
    with pytest.raises(ValueError, match="seed 1 .* other options than seed 0"):
        best_seeds.summarise(seeds + [best_seeds.seed_row(_run(1, 0.95, 0.94, 10.0, hidden_size=128))])
    with pytest.raises(ValueError, match="unknown ablation"):
        best_seeds.ablation_rows(seeds, {"no_glove": seeds[0]})
    f = _write(tmp_path, "s0", _run(0, 0.95, 0.94, 10.0))
    with pytest.raises(SystemExit):
        best_seeds.main(["--seeds", f, "--ablation", "no_ema"])
    assert "NAME=FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        best_seeds.main(["--seeds", f, "--checkpoints", "a.pt", "b.pt"])
    assert "one per seed" in capsys.readouterr().err


@pytest.fixture(scope="module")
def joints() -> list[TrainedTagger]:
    first = fit(TRAIN, DEV, quick(epochs=3, aux_tagset="xpos"), SMALL, progress=False)
    # a second member that disagrees with the first (random output layers, but not everywhere
    # stronger): an average of the two then differs from either alone
    second = copy.deepcopy(first)
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in (second.model.output, second.model.aux_output):
            layer.weight.normal_(0, 0.5)  # type: ignore[union-attr]
    return [first, second]


def test_ensemble_of_one_is_the_tagger_itself(joints: list[TrainedTagger]) -> None:
    words = [s.words for s in DEV]
    alone = best_seeds.ensemble_predictions(joints[:1], words)
    assert alone["upos"] == joints[0].tag(words)
    assert [[x for _, x in pairs] for pairs in joints[0].tag(words, both=True)] == alone["xpos"]


def test_ensemble_averages_probabilities_per_head(joints: list[TrainedTagger]) -> None:
    words = [s.words for s in DEV]
    both = best_seeds.ensemble_predictions(joints, words)
    for k in (0, 1):  # the test can tell an average from either member alone
        assert both != best_seeds.ensemble_predictions(joints[k:k + 1], words)
    # the same average by hand, one sentence at a time
    for i, sentence in enumerate(words):
        probs = []
        for t in joints:
            batch = t.loader(t.dataset([sentence])).__iter__().__next__()
            main, aux = t.model.eval().forward_heads(batch.words, batch.lengths, batch.chars)
            main, aux = main.detach().clone(), aux.detach().clone()
            main[..., 0] = aux[..., 0] = float("-inf")
            probs.append((main.softmax(-1)[0], aux.softmax(-1)[0]))
        upos = joints[0].tags.decode((probs[0][0] + probs[1][0]).argmax(-1).tolist())
        xpos = joints[0].aux_tags.decode((probs[0][1] + probs[1][1]).argmax(-1).tolist())  # type: ignore[union-attr]
        assert both["upos"][i] == upos and both["xpos"][i] == xpos
    scores = best_seeds.ensemble_scores(joints, {"dev": DEV})
    right = sum(p == g for s, ps in zip(DEV, best_seeds.ensemble_predictions(joints, [s.words for s in DEV])["xpos"],
                                        strict=True) for p, g in zip(ps, s.xpos, strict=True))
    assert scores["xpos"]["dev"] == right / sum(len(s.words) for s in DEV) and scores["seconds"]["dev"] >= 0


@pytest.mark.bad_input
def test_ensemble_rejects_mismatched_taggers(joints: list[TrainedTagger]) -> None:
    single = fit(TRAIN[:16], DEV[:4], quick(epochs=1), SMALL, progress=False)
    with pytest.raises(ValueError, match="different tag sets"):
        best_seeds.ensemble_predictions([joints[0], single], [["a"]])
    with pytest.raises(ValueError, match="at least one"):
        best_seeds.ensemble_predictions([], [["a"]])
    with pytest.raises(ValueError, match="empty sentence"):
        best_seeds.ensemble_predictions(joints, [[]])
    assert torch.is_tensor(joints[0].model.output.weight)


def test_each_ablation_names_one_option_and_a_row_changing_it_is_accepted() -> None:
    assert best_seeds.changed_option('--set lr_schedule="constant"') == ("lr_schedule", "constant")
    assert best_seeds.changed_option("--set aux_tagset=null") == ("aux_tagset", None)
    assert {best_seeds.changed_option(change)[0] for _, change in best_seeds.ABLATIONS.values()} == {
        "aux_tagset", "ema", "lr_schedule", "hidden_size", "char_encoder", "num_threads", "char_filters", "locked_dropout",
        "label_smoothing", "residual", "head_hidden",
        "adam_beta2", "word_dropout", "dropout", "epochs"}
    seeds = [best_seeds.seed_row(_run(0, 0.96, 0.955, 20.0, num_threads=2))]
    # device and threads may differ: where and how the same recipe ran
    narrow = best_seeds.seed_row(_run(0, 0.958, 0.953, 12.0, hidden_size=128, device="cuda"))
    row = best_seeds.ablation_rows(seeds, {"narrow": narrow})[-1]
    assert row["name"] == "narrow" and row["gain"]["xpos"]["test"] == pytest.approx(0.002)
    with pytest.raises(ValueError, match="not a --set"):
        best_seeds.changed_option("hidden_size=128")


def test_train_threads_come_from_the_run_not_from_the_saving_process() -> None:
    run = _run(0, 0.96, 0.955, 20.0)
    run["machine"]["torch_threads"] = 2  # the process's setting when the file was saved
    assert best_seeds.seed_row(run)["train_threads"] == 1  # the preset leaves TrainConfig's default
    assert best_seeds.train_threads({**run, "train_threads": 3}) == 3
    assert best_seeds.train_threads(_run(0, 0.96, 0.955, 20.0, num_threads=2)) == 2
    assert best_seeds.train_threads(_run(0, 0.96, 0.955, 20.0, device="cuda")) is None


def test_an_option_a_run_file_does_not_name_counts_as_its_default() -> None:
    old = _run(0, 0.961, 0.956, 30.0)  # written before char_encoder and num_threads were options of the preset
    new = _run(0, 0.962, 0.957, 18.0, char_encoder="lstm", num_threads=2)
    assert best_seeds.full_options(old["options"])["char_encoder"] == "cnn"
    assert best_seeds.option_difference(old, new) == {"char_encoder": ("lstm", "cnn")}  # threads: free
    assert best_seeds.option_difference(old, new, free=("seed",)) == {"char_encoder": ("lstm", "cnn"), "num_threads": (2, 1)}
    seeds = [best_seeds.seed_row(new)]
    row = best_seeds.ablation_rows(seeds, {"char_cnn": best_seeds.seed_row(old)})[-1]
    assert row["name"] == "char_cnn" and row["gain"]["upos"]["test"] == pytest.approx(0.001)
    with pytest.raises(ValueError, match="char_encoder"):  # the same old run as a one_thread row: two changes
        best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(old)})


def test_the_one_thread_row_must_differ_in_threads_though_threads_are_free_elsewhere() -> None:
    seeds = [best_seeds.seed_row(_run(0, 0.96, 0.955, 18.0, num_threads=2))]
    row = best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(_run(0, 0.959, 0.955, 30.0))})[-1]
    assert row["gain"]["train_minutes"] == pytest.approx(-12.0)  # same CPU: the threads are the change
    elsewhere = _run(0, 0.959, 0.955, 30.0)
    elsewhere["machine"]["cpu"] = "Another CPU"
    row = best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(elsewhere)})[-1]
    assert row["gain"]["train_minutes"] is None and row["cpu"] == "Another CPU" and row["train_threads"] == 1
    assert row["gain"]["upos"]["test"] == pytest.approx(0.001)  # accuracy compares anywhere
    no_ema = best_seeds.ablation_rows(seeds, {"no_ema": best_seeds.seed_row(_run(0, 0.96, 0.955, 15.0, ema=0))})[-1]
    assert no_ema["gain"]["train_minutes"] is None  # 1 thread against the preset's 2: minutes not compared
    with pytest.raises(ValueError, match="only num_threads=1"):  # 2 threads is not the 1-thread row
        best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(_run(0, 0.959, 0.955, 17.0, num_threads=2))})


def test_kept_rows_stay_against_the_run_they_were_measured_against() -> None:
    old = _run(0, 0.961, 0.956, 30.0, command="old")
    previous = {"rows": best_seeds.ablation_rows([best_seeds.seed_row(old)],
                                                 {"no_ema": best_seeds.seed_row(_run(0, 0.9615, 0.9555, 31.0, "o", ema=0))})}
    seeds = [best_seeds.seed_row(_run(0, 0.963, 0.957, 18.0, "new", num_threads=2))]
    rows = best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(old)}, kept=(previous, "prev.json"))
    assert [r["name"] for r in rows] == ["preset", "preset_mean", "one_thread", "no_ema"]
    no_ema = rows[-1]
    assert no_ema["against"] == "one_thread" and no_ema["kept_from"] == "prev.json"
    assert no_ema["gain"]["upos"]["test"] == pytest.approx(0.961 - 0.9615)  # against the old run, as measured
    with pytest.raises(ValueError, match="no row here: add that run file"):
        best_seeds.ablation_rows(seeds, {}, kept=(previous, "prev.json"))
    other = best_seeds.seed_row(old)
    other["upos"] = {**other["upos"], "test": 0.5}
    with pytest.raises(ValueError, match="not the same run"):
        best_seeds.ablation_rows(seeds, {"one_thread": other}, kept=(previous, "prev.json"))
    with pytest.raises(ValueError, match="no 'preset' row"):
        best_seeds.kept_rows({"rows": []}, rows, "x.json")


def test_a_kept_row_keeps_its_minutes_compared_with_the_run_they_were_compared_with() -> None:
    old = _on(_run(0, 0.961, 0.956, 30.0, "old"), "Intel")
    there = _on(_run(0, 0.960, 0.955, 35.0, "there", num_threads=2), "AMD")
    previous = {"rows": best_seeds.ablation_rows(
        [best_seeds.seed_row(old)],
        {"no_ema": best_seeds.seed_row(_on(_run(0, 0.9615, 0.9555, 31.0, "o", ema=0), "Intel")),
         "char_lstm": best_seeds.seed_row(_on(_run(0, 0.960, 0.957, 34.0, "c", char_encoder="lstm", num_threads=2), "AMD"))},
        timing=[best_seeds.seed_row(there)])}
    assert {r["name"]: r.get("minutes_against") for r in previous["rows"]}["no_ema"] == "preset"
    # the new preset ran on a third CPU; its old run is the one_thread row, the AMD run is timed again
    seeds = [best_seeds.seed_row(_on(_run(0, 0.963, 0.957, 10.0, "new", num_threads=2), "Zen"))]
    rows = {r["name"]: r for r in best_seeds.ablation_rows(
        seeds, {"one_thread": best_seeds.seed_row(old)}, kept=(previous, "prev.json"), timing=[best_seeds.seed_row(there)])}
    assert rows["no_ema"]["minutes_against"] == "one_thread"  # not the new preset row, which ran elsewhere
    assert rows["char_lstm"]["minutes_against"] == "preset_on_1" and rows["preset_on_1"]["cpu"] == "AMD"
    assert rows["no_ema"]["gain"]["train_minutes"] == pytest.approx(-1.0)  # as measured, unchanged
    legacy = {"rows": [{k: v for k, v in r.items() if k != "minutes_against"} for r in previous["rows"]]}
    rows = {r["name"]: r for r in best_seeds.ablation_rows(  # written before minutes_against: its preset's run
        seeds, {"one_thread": best_seeds.seed_row(old)}, kept=(legacy, "prev.json"), timing=[best_seeds.seed_row(there)])}
    assert rows["no_ema"]["minutes_against"] == "one_thread"
    with pytest.raises(ValueError, match="add that run file as a --timing"):  # the AMD run is no row here
        best_seeds.ablation_rows(seeds, {"one_thread": best_seeds.seed_row(old)}, kept=(previous, "prev.json"))


def test_after_a_direction_is_adopted_the_earlier_preset_rows_stay_the_reference() -> None:
    def amd(run: dict) -> dict:
        return best_seeds.seed_row(_on(run, "AMD"))

    old = [amd(_run(s, 0.960, 0.955, 19.0, "old", num_threads=2)) for s in (0, 1, 2)]
    beta = [amd(_run(s, 0.961 + s / 1000, 0.956, 17.0, "beta", num_threads=2, adam_beta2=0.9)) for s in (0, 1, 2)]
    no_ema = amd(_run(0, 0.9615, 0.9555, 18.0, "o", num_threads=2, ema=0))
    previous = {"rows": best_seeds.ablation_rows(old, {"no_ema": no_ema}, repeated={"adam_beta2": beta})}
    # beta2 0.9 adopted: its runs are the seeds now, the old recipe is the direction reversed
    rows = {r["name"]: r for r in best_seeds.ablation_rows(
        beta, {}, kept=(previous, "prev.json"), repeated={"adam_beta2_0999": old}, preset_changed=True)}
    assert list(rows) == ["preset", "preset_mean", "adam_beta2_0999", "earlier_preset", "earlier_preset_mean", "no_ema"]
    assert rows["adam_beta2_0999"]["gain"]["upos"]["test"] == pytest.approx(0.962 - 0.960)  # the preset's mean minus the row's
    assert rows["adam_beta2_0999"]["files"] == [r["command"] for r in old]
    assert rows["earlier_preset"]["upos"] == previous["rows"][0]["upos"] and rows["earlier_preset"]["kept_from"] == "prev.json"
    assert rows["earlier_preset"]["what"].startswith("the preset before its last change: --preset best, seed 0")
    assert rows["no_ema"]["against"] == "earlier_preset" and rows["no_ema"]["minutes_against"] == "earlier_preset"
    assert rows["no_ema"]["gain"] == previous["rows"][2]["gain"]  # as measured
    # (the old adam_beta2 row is gone: its runs are the preset's own seeds, measured by adam_beta2_0999)
    with pytest.raises(ValueError, match="--preset-changed"):
        best_seeds.ablation_rows(beta, {}, kept=(previous, "prev.json"), repeated={"adam_beta2_0999": old})
    # a second adoption: the rows kept the first time keep naming the run they were measured against
    again = {r["name"]: r for r in best_seeds.kept_rows({"rows": list(rows.values())}, [], "mid.json", preset_changed=True)}
    assert again["no_ema"]["against"] == "earlier_earlier_preset" and again["adam_beta2_0999"]["against"] == "earlier_preset"
    assert again["earlier_earlier_preset"]["what"] == "the preset before its last two changes: --preset best, seed 0"
    assert again["earlier_preset"]["what"] == "the preset before its last change: --preset best, seed 0"


@pytest.mark.bad_input
def test_preset_changed_needs_the_file_it_says_how_to_keep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = _write(tmp_path, "s0", _run(0, 0.96, 0.955, 18.0))
    with pytest.raises(SystemExit):
        best_seeds.main(["--seeds", seed, "--preset-changed", "--json", str(tmp_path / "b.json"),
                         "--ablation-json", str(tmp_path / "a.json"), "--bench", str(tmp_path / "none.json")])
    assert "--preset-changed says how to keep the rows of a --keep file" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()
    # a kept file whose preset run is no row here: one line naming the fix, and neither file written
    kept = _write(tmp_path, "kept", {"rows": [{"name": "preset", "command": "elsewhere --seed 0"}]})
    with pytest.raises(SystemExit):
        best_seeds.main(["--seeds", seed, "--keep", kept, "--json", str(tmp_path / "b.json"),
                         "--ablation-json", str(tmp_path / "a.json"), "--bench", str(tmp_path / "none.json")])
    assert "kept.json: its rows were compared with the run `elsewhere --seed 0`" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def _on(run: dict, cpu: str) -> dict:
    run["machine"]["cpu"] = cpu
    return run


def test_a_direction_run_elsewhere_compares_its_minutes_with_the_recipe_run_there() -> None:
    seeds = [best_seeds.seed_row(_on(_run(0, 0.961, 0.956, 30.0), "Intel"))]
    timing = [best_seeds.seed_row(_on(_run(0, 0.960, 0.955, 31.0, "again", num_threads=2), "AMD"))]
    ablations = {"char_lstm": best_seeds.seed_row(_on(_run(0, 0.960, 0.957, 34.0, char_encoder="lstm", num_threads=2), "AMD")),
                 "no_ema": best_seeds.seed_row(_on(_run(0, 0.962, 0.955, 29.0, ema=0), "Intel")),
                 "hidden_192": best_seeds.seed_row(_on(_run(0, 0.96, 0.955, 20.0, hidden_size=192), "Other"))}
    rows = {r["name"]: r for r in best_seeds.ablation_rows(seeds, ablations, timing=timing)}
    assert list(rows) == ["preset", "preset_mean", "preset_on_1", "no_ema", "hidden_192", "char_lstm"]
    assert rows["preset_on_1"]["cpu"] == "AMD" and "gain" not in rows["preset_on_1"]
    assert "the time reference of the rows run there" in rows["preset_on_1"]["what"]
    again = best_seeds.ablation_rows(seeds, {}, timing=[best_seeds.seed_row(_on(_run(0, 0.962, 0.957, 30.5, "rerun"), "Intel"))])
    assert "how far a rerun of seed 0 moves the numbers" in again[-1]["what"]  # same CPU and threads: a rerun
    assert rows["char_lstm"]["gain"]["train_minutes"] == pytest.approx(31.0 - 34.0)
    assert rows["char_lstm"]["minutes_against"] == "preset_on_1"
    assert rows["char_lstm"]["gain"]["upos"]["test"] == pytest.approx(0.961 - 0.960)  # accuracy: against seed 0
    assert rows["no_ema"]["gain"]["train_minutes"] == pytest.approx(1.0) and rows["no_ema"]["minutes_against"] == "preset"
    assert rows["hidden_192"]["gain"]["train_minutes"] is None and "minutes_against" not in rows["hidden_192"]
    with pytest.raises(ValueError, match="not the preset's recipe"):
        best_seeds.ablation_rows(seeds, {}, timing=[best_seeds.seed_row(_run(0, 0.96, 0.955, 31.0, ema=0))])


def test_a_replication_on_another_machine_is_kept_beside_the_seeds(tmp_path: Path) -> None:
    files = [_write(tmp_path, f"s{i}", _run(i, 0.961, 0.957, 18.0)) for i in range(2)]
    again = [_run(i, u, x, m) for i, (u, x, m) in enumerate([(0.960, 0.957, 21.0), (0.962, 0.956, 19.0)])]
    for run in again:
        run["machine"]["cpu"] = "Slower CPU"
    other = [_write(tmp_path, f"r{i}", run) for i, run in enumerate(again)]
    out = tmp_path / "best.json"
    assert best_seeds.main(["--seeds", *files, "--replication", *other, "--json", str(out), "--ablation-json",
                            str(tmp_path / "abl.json"), "--bench", str(tmp_path / "none.json")]) == 0
    data = json.loads(out.read_text())
    rep = data["replication"]
    assert rep["cpus"] == ["Slower CPU"] and [r["seed"] for r in rep["seeds"]] == [0, 1]
    assert rep["summary"]["xpos"]["test"]["mean"] == pytest.approx(0.9565)
    assert {t["name"]: t["met"] for t in rep["targets"]} == {"upos_test_mean": True, "xpos_test_mean": True,
                                                             "train_minutes_max": False}
    assert data["summary"]["upos"]["test"]["mean"] == pytest.approx(0.961)  # the seeds' own numbers, unmixed
    assert data["met"] is True and rep["met"] is False
    with pytest.raises(ValueError, match="replication run .* other options than the seeds"):
        best_seeds.replication([best_seeds.seed_row(_run(0, 0.96, 0.95, 18.0))],
                               [best_seeds.seed_row(_run(0, 0.96, 0.95, 18.0, ema=0))])


def test_a_direction_on_several_seeds_is_paired_with_the_presets_runs_of_those_seeds_on_its_cpu(tmp_path: Path) -> None:
    seeds = [_write(tmp_path, f"s{i}", _on(_run(i, 0.960, 0.955, 12.0), "Fast")) for i in range(3)]
    again = [_write(tmp_path, f"r{i}", _on(_run(i, 0.961 + i / 1000, 0.956, 19.0 + i), "Slow")) for i in range(3)]
    locked = [_write(tmp_path, f"l{i}", _on(_run(i, 0.962, 0.954 + i / 1000, 18.0, locked_dropout=True), "Slow"))
              for i in range(3)]
    abl = tmp_path / "abl.json"
    common = ["--seeds", *seeds, "--replication", *again, "--json", str(tmp_path / "best.json"),
              "--ablation-json", str(abl), "--bench", str(tmp_path / "none.json")]
    assert best_seeds.main([*common, "--ablation", "locked_dropout=" + ",".join(locked)]) == 0
    row = json.loads(abl.read_text())["rows"][-1]
    assert row["name"] == "locked_dropout" and row["seeds"] == [0, 1, 2] and "mean of seeds 0, 1, 2" in row["what"]
    assert row["upos"]["test"] == pytest.approx(0.962) and row["xpos"]["test"] == pytest.approx(0.955)
    # against the replication (same CPU, same seeds), not the faster CPU's seeds
    assert row["against_runs"] == ["r0.json", "r1.json", "r2.json"] and row["cpu"] == "Slow"
    assert row["gain"]["upos"]["test"] == pytest.approx(0.962 - 0.962)
    assert row["gain"]["xpos"]["test"] == pytest.approx(0.956 - 0.955)
    assert row["gain"]["train_minutes"] == pytest.approx(20.0 - 18.0)
    assert row["minutes_against"] == "the preset's runs of seeds 0, 1, 2 there"
    assert [e["seed"] for e in row["each"]] == [0, 1, 2] and row["each"][2]["xpos"]["test"] == pytest.approx(0.956)
    # a seed with no run of the preset on its CPU has nothing to be compared with
    lone = best_seeds.seed_row(_on(_run(5, 0.96, 0.95, 18.0, locked_dropout=True), "Slow"))
    with pytest.raises(ValueError, match="no run of the preset with seed 5 on Slow"):
        best_seeds.repeated_row("locked_dropout", [lone], [best_seeds.seed_row(json.loads(Path(f).read_text())) for f in again])
    with pytest.raises(ValueError, match="expected the preset with only locked_dropout=true"):
        best_seeds.repeated_row("locked_dropout", [best_seeds.seed_row(_on(_run(0, 0.96, 0.95, 18.0), "Slow"))],
                                [best_seeds.seed_row(json.loads(Path(again[0]).read_text()))])
    # one seed run on the replication's CPU: paired with the replication's run of that seed, not with the
    # preset's seed 0 on the other CPU
    assert best_seeds.main([*common, "--ablation", f"locked_dropout={locked[1]}"]) == 0
    row = json.loads(abl.read_text())["rows"][-1]
    assert row["seeds"] == [1] and row["what"].endswith("(seed 1)") and row["against_runs"] == ["r1.json"]
    assert row["gain"]["upos"]["test"] == pytest.approx(0.962 - 0.962)
    assert row["gain"]["xpos"]["test"] == pytest.approx(0.956 - 0.955) and row["gain"]["train_minutes"] == pytest.approx(2.0)
    assert row["minutes_against"] == "the preset's run of seed 1 there"
    # the preset's seed 0 once more on the replication's CPU: a rerun there, not a time reference of its own
    rerun = _write(tmp_path, "rerun", _on(_run(0, 0.963, 0.957, 16.0), "Slow"))
    assert best_seeds.main([*common, "--timing", rerun]) == 0
    row = next(r for r in json.loads(abl.read_text())["rows"] if r["name"] == "preset_on_1")
    assert row["what"].endswith("again on Slow with 1 thread(s), as the replication's seed 0 was there: how far a "
                                "rerun there moves the numbers and the minutes")
    # one row, one CPU: runs from two CPUs would average minutes that do not compare
    mixed = [best_seeds.seed_row(json.loads(Path(f).read_text())) for f in locked[:2]]
    mixed[1]["machine"] = {**mixed[1]["machine"], "cpu": "Fast"}
    with pytest.raises(ValueError, match="its runs trained on .*Slow.* and .*Fast"):
        best_seeds.repeated_row("locked_dropout", mixed, [best_seeds.seed_row(json.loads(Path(f).read_text())) for f in again])
    with pytest.raises(SystemExit):
        best_seeds.main([*common, "--ablation", f"locked_dropout={locked[0]}", "--ablation", f"locked_dropout={locked[1]}"])


def test_accuracy_decimals_show_a_third_decimal_only_when_two_would_hide_a_miss() -> None:
    missed = {"bound": 0.956, "met": False}
    assert best_seeds.accuracy_decimals(0.95598, missed) == 3  # "95.60" would read as reaching 95.6
    assert best_seeds.accuracy_decimals(0.9554, missed) == 2  # "95.54" shows the miss itself
    assert best_seeds.accuracy_decimals(0.95612, {"bound": 0.956, "met": True}) == 2
    assert best_seeds.accuracy_decimals(0.95598, {"bound": None, "met": False}) == 2
    for target in best_seeds.targets({"seeds": [0, 1, 2], "upos": {"test": {"mean": 0.95998}},
                                      "xpos": {"test": {"mean": 0.95598}}, "train_minutes": {"max": 17.0}})[:2]:
        assert best_seeds.accuracy_decimals(target["value"], target) == 3


def test_an_adoption_renames_the_seed_files_a_kept_row_was_paired_with() -> None:
    """best_seedN.json held the previous preset's runs when a direction was measured against them; after an
    adoption they hold the new preset's, so a kept row names where its pairs are now (not the same file name)."""
    def amd(run: dict, file: str) -> dict:
        return best_seeds.seed_row(_on(run, "AMD"), file)

    old = [amd(_run(s, 0.960, 0.955, 17.0, "old", num_threads=2, epochs=22), f"best_seed{s}.json") for s in (0, 1, 2)]
    wide = [amd(_run(s, 0.9595, 0.955, 16.0, "wd", num_threads=2, epochs=22, word_dropout=0.2), f"wd_seed{s}.json")
            for s in (0, 1, 2)]
    previous = {"rows": best_seeds.ablation_rows(old, {}, repeated={"word_dropout_02": wide})}
    assert previous["rows"][-1]["against_runs"] == ["best_seed0.json", "best_seed1.json", "best_seed2.json"]
    new = [amd(_run(s, 0.961, 0.956, 17.5, "new", num_threads=2, epochs=24), f"best_seed{s}.json") for s in (0, 1, 2)]
    moved = [{**r, "file": f"best_runs/epochs_22_seed{r['seed']}.json"} for r in old]
    rows = {r["name"]: r for r in best_seeds.ablation_rows(
        new, {}, kept=(previous, "prev.json"), repeated={"epochs_22": moved}, preset_changed=True)}
    assert rows["word_dropout_02"]["against"] == "earlier_preset"
    assert rows["word_dropout_02"]["against_runs"] == [f"best_runs/epochs_22_seed{s}.json" for s in (0, 1, 2)]
    assert rows["epochs_22"]["against_runs"] == ["best_seed0.json", "best_seed1.json", "best_seed2.json"]  # the new runs
    assert [(e["epochs_run"], e["best_epoch"]) for e in rows["epochs_22"]["each"]] == [(22, 20), (22, 21), (22, 22)]
    # without the reversed row, the runs are named by their commands: the file name no longer holds them
    alone = {r["name"]: r for r in best_seeds.ablation_rows(new, {}, kept=(previous, "prev.json"), preset_changed=True)}
    assert alone["word_dropout_02"]["against_runs"] == [f"old --seed {s}" for s in (0, 1, 2)]


def test_the_stored_best_seeds_ran_the_preset_as_it_is_now() -> None:
    """README and chapter 7 state best.json's numbers as `--preset best`'s: its seeds must have run that recipe
    (a direction adopted into the preset without its runs becoming the seeds fails here)."""
    import seqtag.results
    from seqtag.presets import preset

    best = seqtag.results.load("best")
    recipe = {"options": {**preset("best"), "tagset": "upos"}}
    assert [r["seed"] for r in best["seeds"]] == [0, 1, 2]
    for run in [*best["seeds"], {"options": best["options"]}]:
        assert best_seeds.option_difference(run, recipe) == {}
