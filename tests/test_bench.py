"""Tests for seqtag.bench: the FLOP formula, the timed samples and their padding, the exact
flipped BiLSTM, ratios with their spread, targets, the rounds, the tagging speed, the report's
JSON schema and machine record, and the command line.

Everything runs on a tiny synthetic corpus with a tiny model and one thread; no timing is
asserted (speed targets live in the benchmark's own output).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from seqtag import bench, plots
from seqtag.batching import BucketBatchSampler, padding_fraction, random_batches
from seqtag.bench import load as load_module
from seqtag.bench.command import BenchOptions
from seqtag.bench.timing import measure_rounds, optimizers, relative_spread
from seqtag.config import TrainConfig
from seqtag.losses import masked_cross_entropy
from seqtag.models import Tagger, TaggerConfig
from seqtag.vocab import PAD_ID

ROOT = Path(__file__).resolve().parent.parent
TINY = {"embedding_dim": 8, "hidden_size": 8, "threads": 1, "repeats": 1, "log": None, "tagging_time": 0.02}


@pytest.fixture(scope="module")
def corpus() -> bench.BenchCorpus:
    return bench.synthetic_corpus(num_sentences=240, vocab_size=30, num_tags=6, max_len=40, seed=1)


@pytest.fixture(scope="module")
def report(corpus: bench.BenchCorpus) -> dict:
    return bench.run_benchmark(
        corpus, device="cpu", batch_sizes=(4, 16), max_sentences=32, per_sentence_max=8, **TINY
    )


# ---------------------------------------------------------------- FLOPs


def test_flops_match_a_hand_count() -> None:
    # E=3, H=2, C=5, one BiLSTM layer. Per direction per token: 4 gates * H = 8 outputs, each a
    # dot product over E + H = 5 inputs -> 40 multiply-adds = 80 FLOPs; two directions: 160.
    # Output layer: 2H = 4 inputs * 5 tags = 20 multiply-adds = 40 FLOPs. Forward 200.
    assert bench.flops_per_token(3, 2, 5) == {"forward": 200, "train": 600}
    # One direction: 80 + 2 * 2 * 5 = 100.
    assert bench.flops_per_token(3, 2, 5, bidirectional=False)["forward"] == 100
    # A second BiLSTM layer reads 2H = 4 inputs: 2 directions * 2 * 8 * (4 + 2) = 192 more.
    assert bench.flops_per_token(3, 2, 5, num_layers=2)["forward"] == 392
    # A GRU has 3 gates: 2 * 2 * 6 * 5 + 40 = 160.
    assert bench.flops_per_token(3, 2, 5, gates=3)["forward"] == 160


@pytest.mark.parametrize(("layers", "bidirectional"), [(1, True), (2, True), (1, False), (3, False)])
def test_flops_are_two_per_weight_of_the_real_model(layers: int, bidirectional: bool) -> None:
    # Every weight-matrix entry (not the biases) is one multiply-add per token.
    model = Tagger(TaggerConfig(50, 7, embedding_dim=12, hidden_size=10, num_layers=layers,
                                bidirectional=bidirectional))
    weights = sum(p.numel() for n, p in model.rnn.named_parameters() if n.startswith("weight"))
    weights += model.output.weight.numel()
    flops = bench.flops_per_token(12, 10, 7, num_layers=layers, bidirectional=bidirectional)
    assert flops["forward"] == 2 * weights
    assert flops["train"] == 3 * flops["forward"]


@pytest.mark.bad_input
def test_flops_reject_bad_sizes() -> None:
    with pytest.raises(ValueError, match="hidden_size must be >= 1"):
        bench.flops_per_token(3, 0, 5)


def test_gemm_measurement_returns_a_rate() -> None:
    rate = bench.measure_gemm_flops(8, 8, 5, batch_size=4, seq_len=3, min_time=0.01)
    assert math.isfinite(rate) and rate > 0


# ---------------------------------------------------------------- samples and padding


def test_synthetic_corpus_is_valid_and_long_tailed(corpus: bench.BenchCorpus) -> None:
    lengths = corpus.lengths
    assert len(corpus) == 240 and min(lengths) >= 1 and max(lengths) <= 40
    assert sorted(lengths)[len(lengths) // 2] < sum(lengths) / len(lengths)  # long tail: median below mean
    assert all(int(w.min()) >= 1 and int(t.max()) < 6 for w, t in zip(corpus.words, corpus.tags, strict=True))


@pytest.mark.bad_input
def test_corpus_rejects_mismatched_tags() -> None:
    with pytest.raises(ValueError, match="sentence 0: words .* and tags"):
        bench.BenchCorpus([torch.tensor([2, 3])], [torch.tensor([1])], 5, 3)


def test_epoch_padding_is_that_of_the_samplers(corpus: bench.BenchCorpus) -> None:
    lengths = corpus.lengths
    bucketed, shuffled, pad = bench.timed_sample(lengths, 16, 64, pool_factor=5, seed=3)
    expected_bucketed = padding_fraction(BucketBatchSampler(lengths, 16, pool_factor=5, seed=3).batches(), lengths)
    expected_random = padding_fraction(random_batches(len(lengths), 16, 3), lengths)
    assert pad == {"random": expected_random, "bucketed": expected_bucketed}
    assert pad["bucketed"] < pad["random"]
    # ceil(64 / 16) = 4 < 8 batches: at least 8 are timed
    assert len(bucketed) == len(shuffled) == 8
    assert all(len(b) <= 16 for b in bucketed + shuffled)


def test_stratified_sample_spans_lengths_and_keeps_the_padding(corpus: bench.BenchCorpus) -> None:
    lengths = corpus.lengths
    epoch = random_batches(len(lengths), 8, seed=0)  # 30 batches
    sample = bench.stratified_batches(epoch, lengths, 6, seed=0)
    assert len(sample) == 6 and all(b in epoch for b in sample)
    sizes = sorted(len(b) * max(lengths[i] for i in b) for b in epoch)
    picked = sorted(len(b) * max(lengths[i] for i in b) for b in sample)
    for j, size in enumerate(picked):  # one batch from each sixth of the ranking
        assert sizes[j * 5] <= size <= sizes[j * 5 + 4]
    assert abs(padding_fraction(sample, lengths) - padding_fraction(epoch, lengths)) < 0.1
    assert sorted(map(tuple, bench.stratified_batches(epoch, lengths, 99))) == sorted(map(tuple, epoch))


# ---------------------------------------------------------------- the strategies' models


def test_the_benchmarks_flipped_model_is_the_packed_one_run_exactly_and_padded_is_not() -> None:
    config = TaggerConfig(30, 6, embedding_dim=8, hidden_size=5)
    models = {s: bench.strategy_model(s, config, seed=3).eval()
              for s in ("bucketed_packed", "bucketed_flipped", "bucketed_padded", "per_sentence")}
    flipped = models["bucketed_flipped"]
    assert type(flipped) is Tagger and flipped.config.flipped and not models["bucketed_packed"].config.flipped
    assert not models["bucketed_padded"].config.packed and models["per_sentence"].config.packed
    reference = models["bucketed_packed"].state_dict()
    for model in models.values():  # one model, run three ways: the same weights everywhere
        assert all(torch.equal(t, reference[k]) for k, t in model.state_dict().items())
    torch.manual_seed(0)
    lengths = torch.tensor([7, 3, 5, 1])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    words = torch.randint(2, 30, (4, 7)).masked_fill(~mask, PAD_ID)
    with torch.no_grad():
        want = models["bucketed_packed"](words, lengths)[mask]
        assert torch.allclose(flipped(words, lengths)[mask], want, atol=1e-5)
        assert not torch.allclose(models["bucketed_padded"](words, lengths)[mask], want, atol=1e-3)


def test_the_flipped_model_trains_to_the_packed_models_weights() -> None:
    # Exact means exact in training too: one Adam step from the same weights on the same batch.
    config = TaggerConfig(30, 6, embedding_dim=8, hidden_size=5)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    gen = torch.Generator().manual_seed(1)
    words = torch.randint(2, 30, (3, 6), generator=gen).masked_fill(~mask, PAD_ID)
    tags = torch.randint(1, 6, (3, 6), generator=gen).masked_fill(~mask, PAD_ID)
    after = []
    for strategy in ("bucketed_packed", "bucketed_flipped"):
        model = bench.strategy_model(strategy, config, seed=0)
        (opt,) = optimizers(model)
        masked_cross_entropy(model(words, lengths), tags, mask).backward()
        opt.step()
        after.append(model.state_dict())
    assert all(torch.allclose(after[0][k], after[1][k], atol=1e-5) for k in after[0])


@pytest.mark.bad_input
def test_strategy_model_names_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'flipped'"):
        bench.strategy_model("flipped", TaggerConfig(30, 6))


def test_sparse_embedding_updates_only_the_rows_a_batch_uses() -> None:
    model = bench.strategy_model("bucketed_flipped", TaggerConfig(30, 6, embedding_dim=4, hidden_size=3))
    dense = optimizers(model)
    assert len(dense) == 1 and not model.embedding.sparse
    opts = optimizers(model, sparse_embedding=True)
    assert model.embedding.sparse and [type(o).__name__ for o in opts] == ["SparseAdam", "Adam"]
    assert sum(len(g["params"]) for o in opts for g in o.param_groups) == len(list(model.parameters()))
    before = model.embedding.weight.detach().clone()
    words, lengths = torch.tensor([[3, 5, 7], [5, 9, PAD_ID]]), torch.tensor([3, 2])
    model(words, lengths).sum().backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.is_sparse
    for opt in opts:
        opt.step()
    changed = (model.embedding.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert changed == [3, 5, 7, 9]  # the used rows only (<pad> has no gradient)


@pytest.mark.bad_input
def test_sparse_embedding_needs_an_embedding() -> None:
    with pytest.raises(ValueError, match=r"\.embedding is an nn.Embedding"):
        optimizers(nn.Linear(2, 2), sparse_embedding=True)


# ---------------------------------------------------------------- busy processes


def test_busy_processes_run_for_the_block_and_are_gone_after() -> None:
    with bench.busy_processes(2) as record:
        assert record["processes"] == 2 and len(record["pids"]) == 2
        assert all(Path(f"/proc/{pid}").exists() for pid in record["pids"]) or sys.platform != "linux"
        deadline = time.monotonic() + 10  # wait until both have run (not a timing assert)
        while time.monotonic() < deadline and not all(
                (c or 0) > 0 for c in (load_module._cpu_seconds(p) for p in record["pids"])):
            time.sleep(0.05)
    assert record["wall_seconds"] > 0 and len(record["cpu_seconds"]) == 2
    if sys.platform == "linux":
        assert all(c is not None and c > 0 for c in record["cpu_seconds"])
        assert all(f > 0 for f in record["busy_fraction"])
        # terminated and reaped: no process (or only a new, unrelated one) under those ids
        assert not any(Path(f"/proc/{pid}/cmdline").exists()
                       and load_module.SPIN in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                       for pid in record["pids"])
    with bench.busy_processes(0) as none:
        pass
    assert none["processes"] == 0 and none["cpu_seconds"] == []


@pytest.mark.bad_input
def test_busy_processes_reject_a_negative_count() -> None:
    with pytest.raises(ValueError, match="busy must be an int >= 0"), bench.busy_processes(-1):
        pass


# ---------------------------------------------------------------- ratios and targets


def _row(strategy: str, batch_size: int, speed: float) -> dict:
    return {"strategy": strategy, "batch_size": batch_size, "train_tokens_per_s": speed}


def test_ratios_from_hand_made_results() -> None:
    rows = [_row("per_sentence", 1, 100.0), _row("random_padded", 32, 500.0),
            _row("random_packed", 32, 400.0), _row("bucketed_packed", 32, 1500.0),
            _row("bucketed_packed", 8, 900.0), _row("bucketed_padded", 32, 3000.0)]
    assert bench.compute_ratios(rows, 32) == {
        "bucketed_packed_vs_per_sentence": 15.0,
        "bucketed_packed_vs_random_padded": 3.0,
        "bucketed_packed_vs_random_packed": 3.75,
    }
    assert bench.compute_ratios(rows, 8)["bucketed_packed_vs_random_padded"] is None
    other = bench.other_ratios(rows, 32)
    assert other["bucketed_padded_vs_bucketed_packed"] == 2.0
    assert other["bucketed_flipped_vs_per_sentence"] is None
    assert other["best_bucketed_packed_vs_per_sentence"] == {"ratio": 15.0, "batch_size": 32}


def test_ratio_range_pairs_the_rounds() -> None:
    fast = {**_row("bucketed_packed", 32, 0.0), "tokens": 100, "train_seconds": [1.0, 2.0, 1.0]}
    slow = {**_row("random_padded", 32, 0.0), "tokens": 100, "train_seconds": [4.0, 4.0, 5.0]}
    # per round: 4x, 2x, 5x
    assert bench.ratio_range([fast, slow], "bucketed_packed", "random_padded", 32) == {
        "min": 2.0, "max": 5.0, "rounds": 3}
    other = {**slow, "train_seconds": [4.0, 4.0]}  # not timed in the same rounds
    assert bench.ratio_range([fast, other], "bucketed_packed", "random_padded", 32) is None
    assert bench.ratio_range([fast], "bucketed_packed", "random_padded", 32) is None
    spreads = bench.ratio_spreads([fast, slow], 32)
    assert spreads["bucketed_packed_vs_random_padded"]["max"] == 5.0
    assert spreads["bucketed_packed_vs_per_sentence"] is None


class _Clock:
    """A stand-in runner whose training rounds take the given seconds, in order."""

    def __init__(self, seconds: list[float]) -> None:
        self.planned, self.train_times, self.infer_times = list(seconds), [], []

    def train_round(self) -> None:
        self.train_times.append(self.planned.pop(0))

    def infer_round(self) -> None:
        self.infer_times.append(1.0)

    def row(self) -> dict:
        return {"rounds": len(self.train_times), "infer_rounds": len(self.infer_times)}


def test_rounds_continue_while_they_spread_and_stop_at_the_limit() -> None:
    assert relative_spread([1.0]) == 0.0 and relative_spread([1.0, 1.5, 2.0]) == pytest.approx(2 / 3)
    steady, noisy = _Clock([1.0, 1.02, 9.0, 9.0]), _Clock([1.0, 2.0, 1.5, 1.5, 1.5, 1.5])
    between = []
    rows = measure_rounds([steady, noisy], repeats=2, max_repeats=4, spread_target=0.1,
                          between=lambda: between.append(1))
    assert rows == [{"rounds": 4, "infer_rounds": 2}] * 2  # noisy kept both going to the limit
    assert len(between) == 4
    calm = [_Clock([1.0, 1.05, 5.0]), _Clock([2.0, 2.1, 5.0])]
    assert measure_rounds(calm, repeats=2, max_repeats=5, spread_target=0.1)[0]["rounds"] == 2


def test_tagging_speed_counts_every_word(corpus: bench.BenchCorpus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # a 2-thread run would need 2 cores
    out = bench.tagging_speed(corpus, threads=(1, 2), batch_size=64, min_time=0.02)
    assert out["words"] == sum(corpus.lengths) and out["sentences"] == len(corpus)
    assert [r["threads"] for r in out["runs"]] == [1]
    run = out["runs"][0]
    assert run["words_per_s"] == pytest.approx(out["words"] / run["median_s"]) and run["passes"] >= 1
    assert out["device"] == "cpu" and "forward + decode" in out["model"] and "E=100, H=128" in out["model"]
    assert torch.get_num_threads() == 1  # the Timer restores the thread setting


def test_targets_are_met_missed_or_not_measured() -> None:
    fake = {"ratios": {"bucketed_packed_vs_per_sentence": 5.0, "bucketed_packed_vs_random_padded": 2.0,
                       "bucketed_packed_vs_random_packed": None},
            "best_exact": {"strategy": "bucketed_flipped", "vs_per_sentence": 12.5, "vs_random_padded": 1.1},
            "pad_fraction": {"random": 0.6, "bucketed": 0.05}, "roofline_fraction": None}
    met = {t["name"]: t["met"] for t in bench.check_targets(fake)}
    assert met == {"best_exact_vs_per_sentence": True, "best_exact_vs_random_padded": False,
                   "bucketed_pad_fraction": True, "roofline_fraction": None}
    assert {t["name"]: t["met"] for t in bench.check_targets({**fake, "best_exact": None})}[
        "best_exact_vs_per_sentence"] is None


def test_best_exact_is_the_fastest_correct_batched_strategy() -> None:
    rows = [{**_row("per_sentence", 1, 100.0), "tokens": 100, "train_seconds": [1.0, 1.0]},
            {**_row("random_padded", 32, 500.0), "tokens": 500, "train_seconds": [1.0, 2.0]},
            {**_row("bucketed_padded", 32, 3000.0), "tokens": 3000, "train_seconds": [1.0, 1.0]},  # wrong: never best
            {**_row("bucketed_packed", 32, 900.0), "tokens": 900, "train_seconds": [1.0, 1.0]},
            {**_row("bucketed_flipped", 32, 1500.0), "tokens": 1500, "train_seconds": [1.0, 1.5]},
            _row("bucketed_flipped", 8, 9000.0)]
    best = bench.best_exact(rows, 32)
    assert best is not None and best["strategy"] == "bucketed_flipped" and best["batch_size"] == 32
    assert best["vs_per_sentence"] == 15.0 and best["vs_random_padded"] == 3.0
    # per round: 1500/100 then 1000/100; 1500/500 then 1000/250
    assert best["spread"] == {"vs_per_sentence": {"min": 10.0, "max": 15.0, "rounds": 2},
                              "vs_random_padded": {"min": 3.0, "max": 4.0, "rounds": 2}}
    assert bench.best_exact(rows[:3], 32) is None  # no exact batched strategy timed


def _run_of(ratios: dict, best: dict | None = None, **config: object) -> dict:
    base = {"embedding_dim": 100, "hidden_size": 128, "bidirectional": True, "batch_sizes": [32],
            "optimizer": "Adam"}
    return {"config": {**base, **config}, "corpus": "c", "threads": 1, "ratio_batch_size": 32,
            "ratios": ratios, "other_ratios": {"best": {"ratio": 2.0, "batch_size": 32}, "gone": None},
            "best_exact": best}


def test_compare_runs_holds_within_the_tolerance_and_names_what_differs() -> None:
    quiet = _run_of({"a": 10.0, "b": 2.0}, {"vs_per_sentence": 12.0, "vs_random_padded": 2.0})
    busy = _run_of({"a": 8.0, "b": 2.2}, {"vs_per_sentence": 9.0, "vs_random_padded": 2.0})
    out = bench.compare_runs(quiet, busy)
    assert set(out["ratios"]) == {"a", "b", "best_exact_vs_per_sentence", "best_exact_vs_random_padded"}
    assert out["ratios"]["a"] == {"quiet": 10.0, "loaded": 8.0, "change": pytest.approx(-0.2)}
    assert out["ratios"]["best_exact_vs_per_sentence"]["change"] == pytest.approx(-0.25)
    assert out["held"] is True and out["tolerance"] == bench.LOAD_TOLERANCE
    assert bench.compare_runs(quiet, busy, tolerance=0.2)["held"] is False  # -25 % is outside 20 %
    collapsed = _run_of({"a": 0.6, "b": 2.0})
    assert bench.compare_runs(quiet, collapsed)["held"] is False


@pytest.mark.bad_input
def test_compare_runs_refuses_runs_of_different_benchmarks() -> None:
    with pytest.raises(ValueError, match="differ in hidden_size, optimizer"):
        bench.compare_runs(_run_of({"a": 1.0}), _run_of({"a": 1.0}, hidden_size=64, optimizer="SparseAdam"))
    with pytest.raises(ValueError, match="no speed ratio in common"):
        bench.compare_runs(_run_of({"a": 1.0}), _run_of({"b": 1.0}))


# ---------------------------------------------------------------- the whole run


def test_report_has_the_promised_schema(report: dict) -> None:
    for key in ("device", "torch", "threads", "results", "ratios", "pad_fraction", "best_exact", "busy",
                "gemm_flops_per_s", "roofline_fraction", "targets", "machine", "config"):
        assert key in report
    assert report["busy"]["processes"] == report["config"]["busy"] == 0
    assert report["config"]["sparse_embedding"] is False and report["config"]["optimizer"] == "Adam(lr=1e-3, fused)"
    assert report["best_exact"]["strategy"] in bench.EXACT
    assert report["best_exact"] == bench.best_exact(report["results"], report["ratio_batch_size"])
    assert report["device"] == "cpu" and report["threads"] == 1
    assert report["torch"] == torch.__version__
    assert set(report["ratios"]) == set(bench.RATIO_KEYS)
    assert set(report["pad_fraction"]) == {"random", "bucketed"}
    strategies = [(r["strategy"], r["batch_size"]) for r in report["results"]]
    assert strategies.count(("per_sentence", 1)) == 1
    for bs in (4, 16):
        for s in bench.STRATEGIES[1:] + bench.EXTRA_STRATEGIES:
            assert (s, bs) in strategies
    for r in report["results"]:
        for key in ("strategy", "batch_size", "bidirectional", "train_tokens_per_s", "infer_tokens_per_s",
                    "pad_fraction"):
            assert key in r
        assert r["train_tokens_per_s"] > 0 and r["infer_tokens_per_s"] > 0
        assert r["correct"] == (r["strategy"] not in ("random_padded", "bucketed_padded"))
        assert r["flipped"] == (r["strategy"] == "bucketed_flipped")
        assert r["packed"] == (r["strategy"] in ("per_sentence", "random_packed", "bucketed_packed"))
        assert len(r["train_seconds"]) == 1
    json.loads(json.dumps(report))  # JSON-able as it is


def test_report_records_the_machine_and_both_padding_pools(report: dict, corpus: bench.BenchCorpus) -> None:
    m = report["machine"]
    for key in ("cpu", "cpu_count", "gpu", "torch", "load_average", "load_average_end", "nice", "schedule"):
        assert key in m
    assert m["cpu_count"] == os.cpu_count() and m["torch"] == torch.__version__ and m["gpu"] is None
    assert len(m["load_average"]) == len(m["load_average_end"]) == 3 and m["nice"] == os.nice(0)
    assert report["schedule"] == m["schedule"] == "full" and report["config"]["quick"] is False
    padding, bs, lengths = report["padding"], report["ratio_batch_size"], corpus.lengths
    assert padding["batch_size"] == bs and padding["benchmark_pool"]["pool_factor"] == 200
    assert padding["benchmark_pool"]["bucketed"] == report["pad_fraction"]["bucketed"]
    pool = TrainConfig().pool_factor
    assert padding["training_pool"] == {
        "pool_factor": pool, "random": report["pad_fraction"]["random"],
        "bucketed": padding_fraction(BucketBatchSampler(lengths, bs, pool_factor=pool, seed=0).batches(), lengths)}
    tagging = report["tagging"]
    assert tagging["words"] == sum(lengths) and [r["threads"] for r in tagging["runs"]] == [
        t for t in (1, 2) if t <= (os.cpu_count() or 1)]
    text = bench.format_report(report)
    assert "words/s" in text and f"training's pool of {pool} batches" in text
    for key, rng in report["ratio_spread"].items():
        if rng is not None:
            assert rng["rounds"] == 1 and rng["min"] == pytest.approx(rng["max"])
            value = {**report["ratios"], **report["other_ratios"]}[key]
            assert rng["min"] == pytest.approx(value)  # one round: the range is the ratio itself


def test_report_numbers_are_consistent(report: dict, corpus: bench.BenchCorpus) -> None:
    results, bs = report["results"], report["ratio_batch_size"]
    assert bs == 16  # the batch size nearest to 32
    speed = {(r["strategy"], r["batch_size"]): r["train_tokens_per_s"] for r in results}
    assert report["ratios"]["bucketed_packed_vs_per_sentence"] == pytest.approx(
        speed["bucketed_packed", 16] / speed["per_sentence", 1])
    assert report["ratios"]["bucketed_packed_vs_random_padded"] == pytest.approx(
        speed["bucketed_packed", 16] / speed["random_padded", 16])
    _, _, pad = bench.timed_sample(corpus.lengths, 16, 32, pool_factor=200)
    assert report["pad_fraction"] == pad
    for r in results:
        if r["strategy"] != "per_sentence":
            assert r["epoch_pad_fraction"] == report["pad_fraction_by_batch_size"][str(r["batch_size"])][
                r["strategy"].split("_")[0]]
        tokens = r["tokens"] / sorted(r["train_seconds"])[0]
        assert r["train_tokens_per_s"] == pytest.approx(tokens)  # median of one pass
    per_sentence = next(r for r in results if r["strategy"] == "per_sentence")
    assert per_sentence["pad_fraction"] == 0.0 and per_sentence["sentences"] == 8
    flops = bench.flops_per_token(8, 8, corpus.num_tags)["train"]
    main = next(r for r in results if r["strategy"] == "bucketed_packed" and r["batch_size"] == 16)
    assert report["roofline_fraction"] == pytest.approx(
        main["train_tokens_per_s"] * flops / report["gemm_flops_per_s"])
    ceilings = report["gemm_by_batch_size"]
    assert set(ceilings) == {"1", "4", "16"} and ceilings["16"]["flops_per_s"] == report["gemm_flops_per_s"]
    for r in results:  # every row against the GEMM ceiling of its own batch size
        assert r["roofline_fraction"] == pytest.approx(
            r["train_tokens_per_s"] * flops / ceilings[str(r["batch_size"])]["flops_per_s"])
    assert [t["name"] for t in report["targets"]] == [t[0] for t in bench.TARGETS]
    text = bench.format_report(report)
    assert "WRONG" in text and "targets" in text and "bucketed_packed_vs_per_sentence" in text


def test_unidirectional_run_skips_the_flipped_model(corpus: bench.BenchCorpus) -> None:
    out = bench.run_benchmark(corpus, device="cpu", batch_sizes=(8,), max_sentences=8, per_sentence_max=4,
                              bidirectional=False, strategies=("per_sentence", "bucketed_padded",
                                                               "bucketed_flipped"), **TINY)
    assert [r["strategy"] for r in out["results"]] == ["per_sentence", "bucketed_padded"]
    assert all(r["correct"] and not r["bidirectional"] for r in out["results"])
    assert out["ratios"]["bucketed_packed_vs_per_sentence"] is None


def test_threads_are_set_for_the_run_and_restored(corpus: bench.BenchCorpus) -> None:
    before = torch.get_num_threads()
    asked = 2 if before != 2 else 1
    out = bench.run_benchmark(corpus, device="cpu", batch_sizes=(8,), max_sentences=8, per_sentence_max=2,
                              strategies=("per_sentence", "bucketed_packed"), tagging_threads=(),
                              **{**TINY, "threads": asked})
    assert out["threads"] == asked and out["machine"]["torch_threads"] == asked
    assert torch.get_num_threads() == before
    assert "tagging" not in out


@pytest.mark.bad_input
@pytest.mark.parametrize(("kw", "message"), [
    ({"strategies": ("bucketed",)}, "unknown strategies"),
    ({"batch_sizes": (0,)}, "batch sizes must be >= 1"),
    ({"threads": 0}, "threads must be >= 1"),
])
def test_run_rejects_bad_options(corpus: bench.BenchCorpus, kw: dict, message: str) -> None:
    options = {**TINY, "batch_sizes": (4,), **kw}
    with pytest.raises(ValueError, match=message):
        bench.run_benchmark(corpus, device="cpu", **options)


def test_main_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "sub" / "bench.json"
    args = parser.parse_args(["--synthetic", "80", "--device", "cpu", "--batch-sizes", "8", "--max-sentences",
                              "16", "--per-sentence-max", "4", "--repeats", "1", "--embedding-dim", "8",
                              "--hidden-size", "8", "--threads", "1", "--no-bidirectional", "--tagging-threads", "1",
                              "--tagging-time", "0.02", "--note", "a test", "--busy", "1", "--sparse-embedding",
                              "--json", str(out)])
    assert args.bidirectional is False
    assert bench.main(args) == 0
    data = json.loads(out.read_text())
    assert data["config"]["bidirectional"] is False and data["config"]["batch_sizes"] == [8]
    assert data["schedule"] == data["machine"]["schedule"] == "full" and data["note"] == "a test"
    assert data["config"]["busy"] == data["busy"]["processes"] == 1 and len(data["busy"]["cpu_seconds"]) == 1
    assert data["config"]["sparse_embedding"] is True and data["config"]["optimizer"].startswith("SparseAdam")
    printed = capsys.readouterr().out
    assert "targets" in printed and "1 busy process(es)" in printed and "SparseAdam" in printed
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # written atomically, nothing left over


def test_module_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    cmd = [sys.executable, "-m", "seqtag.bench", "--quick", "--synthetic", "60", "--device", "cpu",
           "--batch-sizes", "4", "--max-sentences", "8", "--per-sentence-max", "4", "--repeats", "1",
           "--embedding-dim", "8", "--hidden-size", "8", "--threads", "1", "--tagging-threads", "0", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout and "per_sentence" in done.stdout
    data = json.loads(out.read_text())
    assert data["config"]["quick"] is True and {r["strategy"] for r in data["results"]} >= set(bench.STRATEGIES)
    assert "tagging" not in data  # --tagging-threads 0 skips it


def test_every_option_explains_itself() -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    text = "".join(parser.format_help().split())  # argparse wraps lines (and hyphenated words)
    for f in dataclasses.fields(BenchOptions):
        assert "--" + f.name.replace("_", "-") in text, f.name
        assert "".join(f.metadata["help"].split()) in text, f.name
    assert "(default:1024,quick:512)" in text  # both schedules, from the schedule tables


@pytest.mark.bad_input
def test_unknown_strategy_on_the_command_line_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from seqtag.options import ArgumentParser

    parser = ArgumentParser(prog="bench")
    bench.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategies", "bucketed"])
    assert "invalid choice: 'bucketed'" in capsys.readouterr().err


def test_profile_counts_the_operators_of_a_step(corpus: bench.BenchCorpus) -> None:
    batch = bench.prepare_batches(corpus, [[0, 1, 2]], torch.device("cpu"))[0]
    assert batch[1].tolist() == corpus.lengths[:3]
    counts = bench.profile_train_step(Tagger(TaggerConfig(30, 6, embedding_dim=4, hidden_size=4)), batch)
    assert counts.get("aten::lstm", 0) >= 1 and all(isinstance(v, int) and v > 0 for v in counts.values())


def test_plots_have_titles_and_labels(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plots.plot_throughput(report)
    assert len(ax.lines) == len(bench.STRATEGIES + bench.EXTRA_STRATEGIES)  # per_sentence as a line too
    ax2 = plots.plot_padding(report["pad_fraction_by_batch_size"], pool_factor=200)
    for a in (ax, ax2):
        assert a.get_title() and a.get_xlabel() and a.get_ylabel()
    assert "pool of 200 batches" in ax2.get_title()
    plt.close("all")


def test_busy_machine_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    cpu = torch.device("cpu")
    warning = bench.busy_warning(cpu, 2, [1.0])  # 1 + 2 threads > 2 cores
    assert warning is not None and "--threads 1" in warning and "1.0 on 2 cores" in warning
    assert bench.busy_warning(cpu, 1, [3.0]) is None  # one thread does not spin-wait
    assert bench.busy_warning(cpu, 2, [0.0]) is None  # an idle machine
    assert bench.busy_warning(torch.device("cuda"), 2, [3.0]) is None
