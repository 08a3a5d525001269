"""The comparisons of chapters 9-11 (seqtag.experiments): quick schedules end to end on tiny data,
results files written whole with their machine record, the epoch chosen on dev, test scored once."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from seqtag.data import Sentence
from seqtag.experiments import common, crf_vs_softmax, ddp_speed, transformer_vs_bilstm
from seqtag.experiments.common import choose_epoch, keep_known_tags, sentence_accuracy
from seqtag.vocab import Vocab

UPOS = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB", ".": "PUNCT"}
XPOS = {"the": "DT", "a": "DT", "dog": "NN", "cat": "NN", "runs": "VBZ", "sleeps": "VBZ", ".": "."}
MACHINE_KEYS = {"date", "cpu", "cpu_count", "torch", "torch_threads", "gpu", "load_average", "schedule"}


def corpus(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(["the", "a"]), rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"]), "."]
        out.append(Sentence(words, [UPOS[w] for w in words], [XPOS[w] for w in words]))
    return out


DATA = (corpus(24, 0), corpus(6, 1), corpus(6, 2))


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


# --- common -------------------------------------------------------------------------------------


def test_choose_epoch_takes_the_first_best_dev_score() -> None:
    assert choose_epoch([0.5, 0.9, 0.7]) == 2
    assert choose_epoch([0.9, 0.8, 0.9]) == 1  # ties: the earlier epoch
    with pytest.raises(ValueError, match="at least one"):
        choose_epoch([])


def test_sentence_accuracy_and_known_tags() -> None:
    assert sentence_accuracy([["A", "B"], ["A", "A"], ["B"]], [["A", "B"], ["A", "B"], ["B"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predicted sentences but 1"):
        sentence_accuracy([["A"], ["B"]], [["A"]])
    odd = Sentence(["the", "dog"], ["DET", "X"], ["DT", "FW"])
    kept, dropped = keep_known_tags(DATA[0], [*DATA[1], odd], "xpos")
    assert (len(kept), dropped) == (len(DATA[1]), 1) and odd not in kept


def test_results_file_is_atomic_and_carries_the_machine(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    common.write_results(path, {"runs": {"a": 1}, "schedule": {"x": 1}}, "quick")
    stored = json.loads(path.read_text())
    assert set(stored["machine"]) >= MACHINE_KEYS and stored["machine"]["schedule"] == "quick"
    with pytest.raises(TypeError):  # not JSON-able: the old file stays as it was, no temporary left
        common.write_results(path, {"runs": {"a": object()}}, "quick")
    assert json.loads(path.read_text()) == stored and no_temporary_files(tmp_path)
    assert common.read_results(path, {"x": 1}) == {"a": 1}
    assert common.read_results(path, {"x": 2}) == {}  # another schedule: nothing to resume
    (tmp_path / "bad.json").write_text("{\n  oops")
    with pytest.raises(ValueError, match=r"bad.json:2: not valid JSON"):
        common.read_results(tmp_path / "bad.json", {})


# --- CRF vs softmax -------------------------------------------------------------------------------

TINY_CRF = replace(crf_vs_softmax.QUICK, epochs=2, model={"embedding_dim": 8, "hidden_size": 8, "dropout": 0.0})


def test_crf_vs_softmax_end_to_end_scores_test_once_with_the_dev_epoch(tmp_path: Path, monkeypatch) -> None:
    scored = []
    real_score = crf_vs_softmax.score_on_test

    def spy(tagger, test, train):  # the weights scored are those of the best dev epoch, scored once
        scored.append((tagger.best_epoch, choose_epoch(tagger.history["dev_accuracy"])))
        return real_score(tagger, test, train)

    monkeypatch.setattr(crf_vs_softmax, "score_on_test", spy)
    out = tmp_path / "crf.json"
    result = crf_vs_softmax.run(TINY_CRF, out, data=DATA)
    assert set(result["runs"]) == {"upos_softmax", "upos_crf", "xpos_softmax", "xpos_crf"}
    assert len(scored) == 4 and all(best == chosen for best, chosen in scored)
    stored = json.loads(out.read_text())
    assert stored["runs"] == json.loads(json.dumps(result["runs"])) and set(stored["machine"]) >= MACHINE_KEYS
    assert no_temporary_files(tmp_path)
    for r in stored["runs"].values():
        assert 0.0 <= r["test_sentence_accuracy"] <= 1.0 and 0.0 <= r["test_accuracy"] <= 1.0
        assert r["test_tokens"] == sum(len(s) for s in DATA[2]) and len(r["seconds_per_epoch"]) == r["epochs_run"]
    assert len(stored["runs"]["xpos_crf"]["transitions"]["scores"]) == len(stored["runs"]["xpos_crf"]["transitions"]["tags"])
    # Resuming: every pair is stored, so nothing is trained again.
    monkeypatch.setattr(crf_vs_softmax, "train_one", lambda *a: pytest.fail("trained a stored run again"))
    assert crf_vs_softmax.run(TINY_CRF, out, data=DATA)["runs"] == stored["runs"]


def test_transition_stats_counts_unseen_bigrams_and_error_runs() -> None:
    seen = Counter({("<s>", "DT"): 1, ("DT", "NN"): 1, ("NN", "</s>"): 1})
    stats = crf_vs_softmax.transition_stats([["DT", "VB", "VB"]], [["DT", "NN", "NN"]], seen)
    assert stats["unseen_bigrams"] == 3 and stats["bigrams"] == 4  # DT-VB, VB-VB, VB-</s>
    assert stats["p_error_after_right"] == 1.0 and stats["p_error_after_error"] == 1.0


# --- Transformer vs BiLSTM ----------------------------------------------------------------------


def test_train_and_choose_keeps_the_best_dev_epochs_weights() -> None:
    words = Vocab(["the", "a", "dog", "cat", "runs", "sleeps", "."])
    tags = Vocab(sorted(set(UPOS.values())), unk=False)
    ds = transformer_vs_bilstm._dataset(DATA[0], words, tags)
    model, lr = transformer_vs_bilstm.build_model("bilstm", transformer_vs_bilstm.QUICK, len(words), len(tags))
    snapshots, scores = [], iter([0.5, 0.9, 0.7])  # dev says epoch 2; the last epoch is 3

    def dev_score(m: torch.nn.Module) -> float:
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scores)

    out = transformer_vs_bilstm.train_and_choose(model, ds, dev_score, epochs=3, lr=lr, batch_size=8)
    assert out["best_epoch"] == 2 and out["dev_scores"] == [0.5, 0.9, 0.7]
    assert not torch.equal(snapshots[1]["output.weight"], snapshots[2]["output.weight"])  # it did train on
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key])
    assert len(out["train_seconds"]) == 3 and out["tokens_per_epoch"] == sum(len(s) for s in DATA[0])


def test_transformer_vs_bilstm_end_to_end(tmp_path: Path) -> None:
    tiny = replace(transformer_vs_bilstm.QUICK, epochs=2, bilstm=(("embedding_dim", 8), ("hidden_size", 8), ("lr", 2e-3)),
                   transformer=(("d_model", 8), ("nhead", 2), ("num_layers", 1), ("dim_feedforward", 16), ("lr", 1e-3)))
    out = tmp_path / "tr.json"
    result = transformer_vs_bilstm.run(tiny, out, data=DATA)
    stored = json.loads(out.read_text())
    assert set(stored["runs"]) == {"bilstm", "transformer"} and stored["schedule"]["epochs"] == 2
    for r in result["runs"].values():
        assert r["threads"] == 1 and r["train_tokens_per_second"] > 0 and len(r["dev_scores"]) == 2
        assert r["best_epoch"] == choose_epoch(r["dev_scores"]) and 0.0 <= r["test_accuracy"] <= 1.0
    assert no_temporary_files(tmp_path)
    with pytest.raises(ValueError, match="unknown model 'gru'"):
        transformer_vs_bilstm.build_model("gru", tiny, 10, 3)


# --- DDP speed ------------------------------------------------------------------------------------


def test_ddp_commands_and_summary() -> None:
    one = ddp_speed.command(1, 2, 32, ddp_speed.QUICK)
    two = ddp_speed.command(2, 1, 16, ddp_speed.FULL, "/data")
    assert one[1:3] == ["-m", "seqtag.distributed"] and one[one.index("--threads") + 1] == "2"
    assert "torch.distributed.run" in two and two[two.index("--nproc_per_node") + 1] == "2"
    assert two[two.index("--train-size") + 1] == "0" and two[two.index("--data-dir") + 1] == "/data"
    runs = {"1x1#1": {"config": "1x1", "tokens_per_second": 100.0, "seconds_per_epoch": 10.0},
            "1x1#2": {"config": "1x1", "tokens_per_second": 300.0, "seconds_per_epoch": 4.0},
            "2x1#1": {"config": "2x1", "tokens_per_second": 150.0, "seconds_per_epoch": 8.0}}
    s = ddp_speed.summary(runs)
    assert s["1x1"]["tokens_per_second"] == 200.0 and s["1x1"]["seconds_per_epoch"] == 7.0
    assert s["2x1"]["speedup_over_1x1"] == pytest.approx(0.75) and s["1x1"]["runs"] == 2


def write_conllu(folder: Path) -> None:
    for split, sentences in zip(("train", "dev", "test"), DATA, strict=True):
        lines = []
        for k, s in enumerate(sentences):
            lines.append(f"# sent_id = {split}-{k}")
            lines += [f"{i + 1}\t{w}\t_\t{u}\t{x}\t_\t_\t_\t_\t_" for i, (w, u, x) in enumerate(zip(s.words, s.upos, s.xpos, strict=True))]
            lines.append("")
        (folder / f"en_ewt-ud-{split}.conllu").write_text("\n".join(lines) + "\n")


def test_ddp_speed_one_process_run_is_measured_and_stored(tmp_path: Path, monkeypatch) -> None:
    write_conllu(tmp_path)
    monkeypatch.setattr(ddp_speed, "CONFIGS", {"1x1": (1, 1, 8)})
    out = tmp_path / "results" / "ddp.json"
    result = ddp_speed.run(replace(ddp_speed.QUICK, train_size=0, dev_size=0), out, tmp_path)
    r = result["runs"]["1x1#1"]
    assert r["world_size"] == 1 and r["epoch"] == 1 and r["train_tokens_per_epoch"] == sum(len(s) for s in DATA[0])
    assert r["tokens_per_second"] == pytest.approx(r["train_tokens_per_epoch"] / r["train_seconds"])
    assert r["wall_seconds"] > r["train_seconds"] and r["load_before"] is not None
    stored = json.loads(out.read_text())
    assert stored["summary"]["1x1"]["speedup_over_1x1"] == 1.0 and set(stored["machine"]) >= MACHINE_KEYS


def test_score_counts_real_tokens_only() -> None:
    words = Vocab(["the", "a", "dog", "cat", "runs", "sleeps", "."])
    tags = Vocab(sorted(set(UPOS.values())), unk=False)
    sentences = [DATA[0][0], Sentence(["the", "dog"], ["DET", "NOUN"], ["DT", "NN"])]
    ds = transformer_vs_bilstm._dataset(sentences, words, tags)
    gold = {i: torch.tensor(tags.encode(s.upos)) for i, s in enumerate(sentences)}

    class Oracle(torch.nn.Module):  # right at every real token, wrong (tag 1) at every pad
        def predict(self, words, lengths):
            out = torch.ones_like(words)
            for row, n in enumerate(lengths.tolist()):
                match = [i for i, g in gold.items() if len(g) == n]
                out[row, :n] = gold[match[0]]
            return out

    result = transformer_vs_bilstm.score(Oracle(), transformer_vs_bilstm._loader(ds), tags, [1])
    assert result["accuracy"] == 1.0 and result["tokens"] == 6
    assert result["predictions"] == [s.upos for s in sentences]


def test_interleaved_timing_times_every_model_on_the_same_batches() -> None:
    tiny = replace(TINY_CRF, tagsets=("xpos",))
    measured = crf_vs_softmax.timing(tiny, data=DATA, batches=2, rounds=3)
    assert measured["batches"] == 2 and set(measured["xpos"]) >= {"softmax", "crf", "crf_over_softmax_step"}
    for name in ("softmax", "crf"):
        t = measured["xpos"][name]
        assert len(t["rounds"]) == 3 and t["step_seconds"] > 0 and t["predict_seconds"] > 0
        assert t["step_seconds"] == sorted(r[0] for r in t["rounds"])[1]  # the median of 3 rounds
    ratio = measured["xpos"]["crf"]["step_seconds"] / measured["xpos"]["softmax"]["step_seconds"]
    assert measured["xpos"]["crf_over_softmax_step"] == pytest.approx(ratio)
    with pytest.raises(ValueError, match="at least one batch"):
        common.interleaved_timing({}, [], 1)


def test_transformer_timing_restores_threads() -> None:
    tiny = replace(transformer_vs_bilstm.QUICK, threads=2, bilstm=(("embedding_dim", 8), ("hidden_size", 8), ("lr", 2e-3)),
                   transformer=(("d_model", 8), ("nhead", 2), ("num_layers", 1), ("dim_feedforward", 16), ("lr", 1e-3)))
    measured = transformer_vs_bilstm.timing(tiny, data=DATA, batches=2, rounds=1)
    assert measured["threads"] == 2 and torch.get_num_threads() == 1
    assert measured["transformer_over_bilstm_step"] > 0 and measured["bilstm"]["train_tokens_per_second"] > 0


def test_command_line_options(tmp_path: Path) -> None:
    args = common.parse_args("prog", "what", ["--full", "--seed", "1", "--json", "r.json"], timing=True)
    assert (args.full, args.seed, args.json, args.timing) == (True, 1, "r.json", None)
    assert common.parse_args("prog", "what", []).seed is None
    with pytest.raises(SystemExit):
        common.parse_args("prog", "what", ["--data", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):  # --timing only where the module offers it
        common.parse_args("prog", "what", ["--timing", "t.json"])


@pytest.mark.parametrize("module", ["ablation", "best", "crf_vs_softmax", "search"])
def test_experiment_commands_never_abbreviate_options(module: str) -> None:
    """`--jso FILE` must be an error, not a silent `--json FILE` (argparse's allow_abbrev)."""
    import importlib

    mod = importlib.import_module(f"seqtag.experiments.{module}")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--jso", "x.json"])
    assert exc.value.code == 2
