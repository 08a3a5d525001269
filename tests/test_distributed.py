"""seqtag.distributed: the sampler's guarantees, and a 2-process DDP step equal to one big step."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from seqtag.batching import Batch, collate
from seqtag.distributed import (
    DistConfig,
    DistributedBucketSampler,
    LossSum,
    all_reduce_sum,
    ddp_step,
    evaluate,
    even_out,
    parse_args,
    run,
)
from seqtag.losses import sequence_loss
from seqtag.models import Tagger, TaggerConfig
from seqtag.tagger import TrainedTagger

LENGTHS = [7, 2, 5, 9, 1, 4, 4, 8, 3, 6, 2, 5, 7, 1, 3, 9, 6, 2, 8, 4, 5, 3, 7]


# ---------------------------------------------------------------------------------------------
# The sampler


def shares(lengths: list[int], world_size: int, epoch: int = 0, **kwargs: object) -> list[list[list[int]]]:
    """Each rank's batches for one epoch."""
    out = []
    for rank in range(world_size):
        sampler = DistributedBucketSampler(lengths, num_replicas=world_size, rank=rank, **kwargs)  # type: ignore[arg-type]
        sampler.set_epoch(epoch)
        out.append(list(sampler))
        assert len(sampler) == len(out[-1])
    return out


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 4}, {"batch_size": 3, "shuffle": False}, {"batch_size": 10, "max_tokens": 20},
     {"batch_size": 1}, {"batch_size": 50}],
)
def test_sampler_shares_are_disjoint_complete_and_equal(world_size: int, kwargs: dict) -> None:
    per_rank = shares(LENGTHS, world_size, epoch=1, **kwargs)
    seen = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(seen) == list(range(len(LENGTHS)))  # every sentence exactly once
    assert len({len(batches) for batches in per_rank}) == 1  # same number of batches: no hang
    assert all(batch for batches in per_rank for batch in batches)  # no empty batch


def test_sampler_is_deterministic_and_changes_with_the_epoch() -> None:
    lengths = [1 + (7 * i) % 23 for i in range(200)]
    first = shares(lengths, 2, epoch=0, batch_size=8, seed=3)
    assert first == shares(lengths, 2, epoch=0, batch_size=8, seed=3)
    assert first != shares(lengths, 2, epoch=1, batch_size=8, seed=3)
    assert first != shares(lengths, 2, epoch=0, batch_size=8, seed=4)


def test_sampler_gives_ranks_similar_lengths_at_each_step() -> None:
    lengths = [1 + (7 * i) % 40 for i in range(400)]
    rank0, rank1 = shares(lengths, 2, batch_size=16, pool_factor=100)
    gaps = [abs(max(lengths[i] for i in a) - max(lengths[i] for i in b)) for a, b in zip(rank0, rank1, strict=True)]
    assert max(gaps) <= 2  # the slowest rank waits little for the other


def test_even_out_splits_or_merges_without_losing_anyone() -> None:
    split = even_out([[0, 1, 2, 3], [4], [5, 6]], 2)
    assert len(split) == 4 and sorted(i for b in split for i in b) == list(range(7))
    merged = even_out([[0], [1], [2]], 2)  # 3 sentences cannot make 4 batches: merge to 2
    assert len(merged) == 2 and sorted(i for b in merged for i in b) == [0, 1, 2]
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        even_out([[0, 1]], 3)


def test_sampler_bad_arguments() -> None:
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedBucketSampler(LENGTHS, 4)
    with pytest.raises(ValueError, match="rank must be in"):
        DistributedBucketSampler(LENGTHS, 4, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="cannot be shared by 4"):
        DistributedBucketSampler([3, 4], 4, num_replicas=4, rank=0)


# ---------------------------------------------------------------------------------------------
# Two processes (gloo on 127.0.0.1) against one


SHARES = [[0, 1], [2, 3, 4]]  # unequal token counts on purpose: 9 vs 11 tokens


def global_examples() -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for n in (6, 3, 2, 5, 4):
        words = torch.randint(2, 30, (n,), generator=gen)
        out.append({"words": words, "tags": words % 5 + 1})
    return out


def make_model(crf: bool) -> Tagger:
    torch.manual_seed(0)
    return Tagger(TaggerConfig(vocab_size=30, num_tags=6, embedding_dim=8, hidden_size=8, crf=crf))


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    # What torchrun would set; run() below finds the group already made and joins it.
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        examples = global_examples()
        local = collate([examples[i] for i in SHARES[rank]])  # padded to its own length
        cpu = torch.device("cpu")
        results: dict[str, object] = {}
        for crf in (False, True):
            for mode in ("global_mean", "naive_mean"):
                model = make_model(crf)
                wrapped = DistributedDataParallel(LossSum(model))
                optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
                if mode == "global_mean":
                    ddp_step(wrapped, local, optimizer, cpu)
                    # evaluate THIS model (the one the step made), not whichever the loop ends on
                    results[f"{crf}-accuracy"] = evaluate(model, [local], cpu)
                else:  # each rank's own token mean, averaged by DDP: the wrong weighting
                    optimizer.zero_grad()
                    loss = wrapped(local.words, local.lengths, local.tags, local.mask) / local.num_tokens
                    loss.backward()
                    optimizer.step()
                results[f"{crf}-{mode}"] = {k: v.clone() for k, v in model.state_dict().items()}
        sampler = DistributedBucketSampler(LENGTHS, 4)  # world size and rank from the group
        results["indices"] = [i for batch in sampler for i in batch]
        results["sum"] = all_reduce_sum([rank + 1, 10], cpu)
        results["folder"] = out
        torch.save(results, Path(out) / f"rank{rank}.pt")
        # The whole training run of `torchrun -m seqtag.distributed`, on a tiny corpus.
        argv = ["--data-dir", out, "--epochs", "2", "--batch-size", "4", "--device", "cpu", "--json",
                "--out", str(Path(out) / "model.pt"), "--embedding-dim", "8", "--hidden-size", "8"]
        run(parse_args(argv))  # tears the group down at the end
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    write_tiny_corpus(out)
    mp.spawn(_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def single_process_step(crf: bool) -> tuple[dict[str, torch.Tensor], float]:
    model = make_model(crf)
    batch: Batch = collate(global_examples())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    optimizer.zero_grad()
    sequence_loss(model, batch).backward()  # token mean over the whole global batch
    optimizer.step()
    accuracy, _ = evaluate(model, [batch], torch.device("cpu"))
    return model.state_dict(), accuracy


@pytest.mark.parametrize("crf", [False, True])
def test_ddp_step_equals_single_process_step(two_ranks: list[dict], crf: bool) -> None:
    reference, accuracy = single_process_step(crf)
    for rank in (0, 1):
        got = two_ranks[rank][f"{crf}-global_mean"]
        for name, value in reference.items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6, msg=name)
        assert two_ranks[rank][f"{crf}-accuracy"][0] == pytest.approx(accuracy)
        assert two_ranks[rank][f"{crf}-accuracy"][1] == 20  # tokens counted over both ranks
    naive = two_ranks[0][f"{crf}-naive_mean"]
    gap = max((naive[k] - v).abs().max().item() for k, v in reference.items())
    assert gap > 1e-4  # averaging per-rank means weighs the 9-token rank too much


def test_group_defaults_and_all_reduce(two_ranks: list[dict]) -> None:
    a, b = two_ranks[0]["indices"], two_ranks[1]["indices"]
    assert not set(a) & set(b) and sorted(a + b) == list(range(len(LENGTHS)))
    assert two_ranks[0]["sum"] == two_ranks[1]["sum"] == [3.0, 20.0]


# ---------------------------------------------------------------------------------------------
# The entry point


def write_tiny_corpus(folder: Path) -> None:
    """A 12-sentence CoNLL-U corpus (2 tags) as both the train and the dev file."""
    lines = []
    for k in range(12):
        lines.append(f"# sent_id = s{k}")
        for i in range(2 + k % 5):
            tag = "NOUN" if (k + i) % 2 else "VERB"
            lines.append(f"{i + 1}\tw{(k + i) % 7}\t_\t{tag}\t_\t_\t_\t_\t_\t_")
        lines.append("")
    for split in ("train", "dev"):
        (folder / f"en_ewt-ud-{split}.conllu").write_text("\n".join(lines) + "\n")


def test_training_run_in_two_processes(two_ranks: list[dict]) -> None:
    folder = Path(two_ranks[0]["folder"])
    trained = TrainedTagger.load(folder / "model.pt")  # rank 0's checkpoint, seqtag.train's format
    assert trained.train_config.epochs == 2 and trained.model.config.num_tags == 3
    assert len(trained.history["dev_accuracy"]) == 2
    assert all(0.0 <= a <= 1.0 for a in trained.history["dev_accuracy"])
    assert trained.tag([["w1", "w2"]])[0][0] in ("NOUN", "VERB")
    assert sorted(p.name for p in folder.iterdir() if "model" in p.name) == ["model.pt"]


def test_command_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "torchrun" in text and "--nproc_per_node" in text and "--crf" in text
    cfg = parse_args(["train", "--epochs", "3", "--crf", "--train-size", "100"])
    assert (cfg.epochs, cfg.crf, cfg.train_size, cfg.batch_size) == (3, True, 100, DistConfig().batch_size)
    with pytest.raises(SystemExit, match="2"):  # a usage error, with the reason on stderr
        parse_args(["--epochs", "0"])
    assert "epochs must be >= 1, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# One process without torchrun: what the checkpoint records, and what the loop reads back per step


def _single_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> DistConfig:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    write_tiny_corpus(tmp_path)
    settings: dict = {"data_dir": str(tmp_path), "device": "cpu", "embedding_dim": 8, "hidden_size": 8,
                      "json": True, "out": str(tmp_path / "model.pt"), **options}
    return DistConfig(**settings)


def test_checkpoint_holds_the_best_epoch_and_what_was_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dev accuracy falls after epoch 1: the checkpoint must hold epoch 1's weights, say so, and
    describe the vocabulary it was built with (no unknown-word signatures)."""
    import seqtag.distributed as distributed

    cfg = _single_process(tmp_path, monkeypatch, epochs=3)
    snapshots: list[dict[str, torch.Tensor]] = []
    module = sys.modules[distributed.run.__module__]

    def fake_evaluate(model, loader, device):  # noqa: ANN001, ANN202
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return [0.9, 0.5, 0.4][len(snapshots) - 1], 10

    monkeypatch.setattr(module, "evaluate", fake_evaluate)
    run(cfg)
    trained = TrainedTagger.load(tmp_path / "model.pt")
    assert trained.best_epoch == 1
    assert trained.history["dev_accuracy"] == [0.9, 0.5, 0.4]
    state = trained.model.state_dict()
    assert all(torch.equal(state[k], snapshots[0][k]) for k in state)  # epoch 1's weights
    assert not all(torch.equal(state[k], snapshots[2][k]) for k in state)
    assert trained.train_config.unk_signatures is False  # the vocabulary was built without them
    assert not any(w.startswith("<unk:") for w in trained.words.itos)
    assert trained.train_config.patience == 0 and trained.train_config.expand_vocab == 0
    # tagging with the loaded checkpoint looks words up the way training did
    assert trained.tag([["w1", "w2"]])[0][0] in ("NOUN", "VERB")


def test_training_loop_reads_the_device_once_per_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   host_reads) -> None:  # noqa: ANN001
    """No all-reduce nor float() per step: the loss accumulates on the device, the global token
    count of each step comes from the sampler (every rank knows every rank's batches)."""
    import seqtag.distributed as distributed

    reduce_calls: list[int] = []
    for mod_name in {distributed.all_reduce_sum.__module__, distributed.run.__module__,
                     distributed.ddp_step.__module__}:
        module = sys.modules[mod_name]
        original = module.all_reduce_sum
        monkeypatch.setattr(module, "all_reduce_sum",
                            lambda values, device, _o=original: reduce_calls.append(1) or _o(values, device))
    reads = host_reads("distributed", ("item", "tolist", "__float__", "__int__", "__bool__"))
    counts = {}
    for batch_size in (12, 2):  # 1 step per epoch, then 6 or more
        reduce_calls.clear()
        reads.clear()
        log = run(_single_process(tmp_path, monkeypatch, epochs=2, batch_size=batch_size, out=""))
        counts[batch_size] = (len(reduce_calls), len(reads), log["steps_per_epoch"])
    assert counts[2][2] >= 6 * counts[12][2]
    assert counts[2][:2] == counts[12][:2], counts  # syncs do not grow with the number of steps
