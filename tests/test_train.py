"""seqtag.train (the loop) and seqtag.tagger (checkpoints): learns, stops early, keeps the best
weights, checkpoints round-trip."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from seqtag import __version__
from seqtag.config import CheckpointError, TrainConfig, split_overrides
from seqtag.data import Sentence, subset
from seqtag.tagger import TrainedTagger
from seqtag.train import fit
from seqtag.vocab import build_vocabs, lookup_forms, unk_signature

LEXICON = {
    "DET": ["the", "a", "every"],
    "ADJ": ["big", "small", "red", "old"],
    "NOUN": ["dog", "cat", "bird", "house", "tree", "car"],
    "VERB": ["sees", "likes", "finds", "eats"],
}


def toy_corpus(n: int, seed: int) -> list[Sentence]:
    """DET [ADJ] NOUN VERB DET [ADJ] NOUN . -- "fish" is a NOUN after a DET and a VERB elsewhere."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        words, upos = [], []
        for part in ("np", "verb", "np"):
            if part == "verb":
                verb = "fish" if rng.random() < 0.3 else rng.choice(LEXICON["VERB"])
                words.append(verb)
                upos.append("VERB")
                continue
            words.append(rng.choice(LEXICON["DET"]))
            upos.append("DET")
            if rng.random() < 0.5:
                words.append(rng.choice(LEXICON["ADJ"]))
                upos.append("ADJ")
            words.append("fish" if rng.random() < 0.2 else rng.choice(LEXICON["NOUN"]))
            upos.append("NOUN")
        words.append(".")
        upos.append("PUNCT")
        xpos = [{"DET": "DT", "ADJ": "JJ", "NOUN": "NN", "VERB": "VBZ", "PUNCT": "."}[t] for t in upos]
        out.append(Sentence(words, upos, xpos, f"toy-{seed}-{k}", k + 1))
    return out


TRAIN, DEV = toy_corpus(120, 1), toy_corpus(30, 2)
SMALL = {"embedding_dim": 16, "hidden_size": 16}


def quick(**kwargs: object) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 8, "lr": 0.01, "min_freq": 1, "device": "cpu", "patience": 0}
    return TrainConfig(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained() -> TrainedTagger:
    return fit(TRAIN, DEV, quick(epochs=6), SMALL, progress=False)


def test_loss_falls_and_the_tagger_learns(trained: TrainedTagger) -> None:
    h = trained.history
    assert len(h["train_loss"]) == 6 and h["train_loss"][-1] < h["train_loss"][0] / 2
    assert max(h["dev_accuracy"]) > 0.9
    ev = trained.evaluate(DEV)
    assert ev.accuracy == pytest.approx(max(h["dev_accuracy"]))  # the best epoch's weights are kept
    assert trained.best_epoch == 1 + h["dev_accuracy"].index(max(h["dev_accuracy"]))


def test_evaluation_counts_agree_with_predictions(trained: TrainedTagger) -> None:
    dev = DEV + [Sentence(["the", "zebra", "sees", "a", "gnu", "."], ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"], ["DT", "NN", "VBZ", "DT", "NN", "."])]
    ev = trained.evaluate(dev, batch_size=7)
    gold = [t for s in dev for t in s.upos]
    pred = [t for p in ev.predictions for t in p]
    assert ev.tokens == len(gold) == int(ev.confusion.sum())
    assert ev.correct == sum(g == p for g, p in zip(gold, pred, strict=True))
    assert ev.oov_tokens == 2  # zebra, gnu
    oov_words = [w for s in dev for w in s.words if w not in trained.words]
    assert ev.oov_rate == pytest.approx(len(oov_words) / len(gold))
    iv_part = ev.iv_accuracy * (ev.tokens - ev.oov_tokens) + ev.oov_accuracy * ev.oov_tokens
    assert iv_part == pytest.approx(ev.correct)
    assert ev.labels == trained.tags.itos[1:] and ev.confusion.shape == (len(ev.labels),) * 2
    scores = ev.per_tag()
    noun = ev.labels.index("NOUN")
    assert scores["NOUN"]["support"] == gold.count("NOUN")
    assert scores["NOUN"]["recall"] == pytest.approx(float(ev.confusion[noun, noun]) / gold.count("NOUN"))
    assert trained.tag([s.words for s in dev[:3]]) == ev.predictions[:3]
    assert set(ev.summary()) >= {"accuracy", "tokens", "oov_accuracy"}


def test_early_stopping_and_best_epoch() -> None:
    # A learning rate this small cannot change a prediction: dev accuracy never improves after
    # epoch 1, so patience=2 stops after epoch 3.
    result = fit(TRAIN, DEV, quick(epochs=10, patience=2, lr=1e-12), SMALL, progress=False)
    assert len(result.history["dev_accuracy"]) == 3 and result.best_epoch == 1


def test_same_seed_same_parameters_other_seed_differs() -> None:
    def params(seed: int) -> dict[str, torch.Tensor]:
        cfg = quick(epochs=2, seed=seed)
        return fit(TRAIN, DEV, cfg, {**SMALL, "dropout": 0.3}, progress=False).model.state_dict()

    a, b, c = params(0), params(0), params(1)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoint_round_trip(trained: TrainedTagger, tmp_path: Path) -> None:
    path = trained.save(tmp_path / "sub" / "m.pt")
    raw = torch.load(path, weights_only=True)  # only plain values and tensors inside
    assert raw["seqtag_version"] == __version__ and raw["tagset"] == "upos"
    assert raw["tagger_config"]["hidden_size"] == 16 and raw["train_config"]["epochs"] == 6
    back = TrainedTagger.load(path)
    assert back.words == trained.words and back.tags == trained.tags and back.chars == trained.chars
    assert back.model.config == trained.model.config and back.train_config == trained.train_config
    state, other = trained.model.state_dict(), back.model.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state)
    assert back.tag([s.words for s in DEV]) == trained.tag([s.words for s in DEV])
    assert back.history == trained.history
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_fit_writes_the_best_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    result = fit(TRAIN, DEV, quick(epochs=2), SMALL, checkpoint=path, progress=False)
    assert TrainedTagger.load(path).tag([DEV[0].words]) == result.tag([DEV[0].words])


def edited(trained: TrainedTagger, tmp_path: Path, change: object) -> Path:
    ckpt = trained.to_checkpoint()
    change(ckpt)  # type: ignore[operator]
    path = tmp_path / "edited.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["tagger_config"].update(attention=True), r"unknown TaggerConfig fields \['attention'\]"),
        (lambda c: c["train_config"].update(warmup=3), r"unknown TrainConfig fields \['warmup'\]"),
        (lambda c: c.update(seqtag_version="0.0.1"), "written by seqtag 0.0.1"),
        (lambda c: c.update(format=99), "checkpoint format 99"),
        (lambda c: c.pop("vocabs"), r"lacks \['vocabs'\]"),
        (lambda c: c["state_dict"].pop("output.weight"), r"weights missing: \['output.weight'\]"),
        (lambda c: c["state_dict"].update({"output.bias": torch.zeros(3)}), "size mismatch for output.bias"),
        (lambda c: c["vocabs"]["words"]["itos"].pop(), "vocabulary sizes do not match"),
    ],
)
@pytest.mark.bad_input
def test_mismatched_checkpoint_is_a_clear_error(
    trained: TrainedTagger, tmp_path: Path, change: object, expected: str
) -> None:
    path = edited(trained, tmp_path, change)
    with pytest.raises(CheckpointError, match=expected) as info:
        TrainedTagger.load(path)
    assert str(path) in str(info.value)


def test_other_version_loads_when_not_strict(trained: TrainedTagger, tmp_path: Path) -> None:
    path = edited(trained, tmp_path, lambda c: c.update(seqtag_version="0.0.1"))
    assert TrainedTagger.load(path, strict_version=False).tags == trained.tags


@pytest.mark.bad_input
def test_truncated_or_foreign_files(trained: TrainedTagger, tmp_path: Path) -> None:
    good = trained.save(tmp_path / "good.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        TrainedTagger.load(cut)
    foreign = tmp_path / "list.pt"
    torch.save([1, 2, 3], foreign)
    with pytest.raises(CheckpointError, match="not a seqtag checkpoint"):
        TrainedTagger.load(foreign)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        TrainedTagger.load(tmp_path / "missing.pt")


def test_pretrained_embeddings_are_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqtag.embeddings

    calls = []

    def fake(words, source, dim, seed=0):  # type: ignore[no-untyped-def]
        calls.append((len(words), source, dim))
        vectors = torch.full((len(words), dim), 0.5)
        found = torch.zeros(len(words), dtype=torch.bool)
        found[words.index("dog")] = True
        return vectors, found

    monkeypatch.setattr(seqtag.embeddings, "pretrained_matrix", fake)
    cfg = quick(epochs=1, embeddings="glove50", lr=1e-12)
    result = fit(TRAIN, DEV, cfg, {**SMALL, "freeze_embeddings": True}, progress=False)
    assert calls == [(len(result.words), "glove50", 16)]
    weight = result.model.embedding.weight
    # every row is the matrix's (its unmatched rows are random at the source's scale), <pad> zero
    assert torch.all(weight[result.words.index("dog")] == 0.5) and torch.all(weight[result.words.index("cat")] == 0.5)
    assert torch.all(weight[0] == 0)


def test_char_cnn_option_and_xpos() -> None:
    result = fit(TRAIN, DEV, quick(epochs=1, tagset="xpos"), {**SMALL, "char_cnn": True}, progress=False)
    assert result.model.config.char_vocab_size == len(result.chars) > 10
    assert set(result.tags.itos[1:]) == {"DT", "JJ", "NN", "VBZ", "."}
    assert len(result.tag([["the", "dog", "eats", "."]])[0]) == 4
    item = result.dataset([["the", "reddog"]])[0]  # the char-CNN sees the word as written, not <unk>
    assert result.chars.decode(item["chars"][1][:6]) == list("reddog")


@pytest.mark.parametrize(
    ("word", "expected"),
    [("Qaim", "<unk:Cap>"), ("blogging", "<unk:low-ing>"), ("1,500", "<unk:num>"), ("NATO", "<unk:CAPS>"),
     ("-->", "<unk:sym>"), ("well-known", "<unk:hyph>"), ("Quickly", "<unk:Cap-ly>"), ("is", "<unk:low>")],
)
def test_unk_signature(word: str, expected: str) -> None:
    assert unk_signature(word) == expected


def test_signatures_are_learned_from_rare_words_and_count_as_oov() -> None:
    rare = [Sentence(["the", "Zork", "sees", "a", "glorping", "."], ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"],
                     ["DT", "NN", "VBZ", "DT", "NN", "."])]
    words, _, _ = build_vocabs(TRAIN + rare, "upos", min_freq=2, signatures=True)
    assert "<unk:Cap>" in words and "<unk:low-ing>" in words and "Zork" not in words
    assert lookup_forms(words, ["the", "Quux", "in", "2024"], True) == ["the", "<unk:Cap>", "<unk:low>", "<unk:num>"]
    assert lookup_forms(words, ["Quux"], False) == ["Quux"]
    result = fit(TRAIN + rare, DEV, quick(epochs=1, min_freq=2), SMALL, progress=False)
    assert result.train_config.unk_signatures and result.words.index("<unk:Cap>") in result.unknown_ids
    ev = result.evaluate([Sentence(["the", "Blorf", "sees", "a", "dog", "."], ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"],
                                   ["DT", "NN", "VBZ", "DT", "NN", "."])])
    assert ev.oov_tokens == 1  # Blorf, as <unk:Cap>


def test_vocabs_subset_and_overrides() -> None:
    words, tags, chars = build_vocabs(TRAIN, "upos", min_freq=1)
    assert "fish" in words and tags.itos[0] == "<pad>" and not tags.unk and "g" in chars
    part = subset(TRAIN, 10, seed=3)
    assert len(part) == 10 and part == sorted(part, key=TRAIN.index) and subset(TRAIN, 10, seed=3) == part
    model, train = split_overrides({"hidden_size": 8, "char_cnn": True, "epochs": 2})
    assert model == {"hidden_size": 8, "char_cnn": True} and train == {"epochs": 2}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hiden_size'\]"):
        split_overrides({"hiden_size": 8})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"epochs": 0}, "epochs must be >= 1"), ({"tagset": "deprel"}, "tagset must be"),
     ({"optimizer": "sgd"}, "optimizer must be 'adam'"), ({"lr": 0}, "lr must be > 0"),
     ({"patience": -1}, "patience must be >= 0"), ({"num_threads": 0}, "num_threads"),
     ({"lr_decay": 1.5}, "lr_decay must be in"), ({"label_smoothing": 1.0}, "label_smoothing must be in")],
)
@pytest.mark.bad_input
def test_train_config_validation(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        TrainConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"epochs": 1, "bogus": 2})


def test_fit_trains_with_its_threads_and_restores_them() -> None:
    """conftest pins one thread: ask for two, see two during training and one afterwards."""
    seen: list[int] = []
    assert torch.get_num_threads() == 1
    fit(TRAIN[:20], DEV[:5], quick(epochs=1, num_threads=2), SMALL, progress=False,
        on_epoch=lambda epoch, history: seen.append(torch.get_num_threads()))
    assert seen == [2]
    assert torch.get_num_threads() == 1


def test_loading_a_tagger_never_imports_the_training_loop(trained: TrainedTagger, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = trained.save(tmp_path / "m.pt")
    code = (f"import sys, seqtag; t = seqtag.load({str(path)!r}); print(t.tag([['the', 'dog']])[0]); "
            "print('seqtag.train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[1] == "False"


def test_fit_reads_the_loss_back_once_per_epoch_not_per_step(host_reads) -> None:  # noqa: ANN001
    """``loss.item()`` every step waits for the GPU every step. Count the reads seqtag.train makes
    itself: they must not grow with the number of steps."""
    reads = host_reads("train.py", ("item", "tolist", "cpu", "__float__", "__int__", "__bool__"))
    counts = []
    for batch_size in (120, 4):  # 1 step per epoch, then 30
        reads.clear()
        fit(TRAIN, DEV[:5], quick(epochs=2, batch_size=batch_size), SMALL, progress=False)
        counts.append(len(reads))
    assert counts[0] == counts[1], f"{counts[0]} reads with 1 step per epoch, {counts[1]} with 30"


def test_fit_pins_batches_and_copies_them_without_blocking_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the loaders pin their batches and fit copies them with non_blocking=True; on the CPU
    neither (pinning needs a GPU). The DataLoaders fit builds are recorded to check."""
    import seqtag.train as train_module
    from seqtag.batching import Batch
    from seqtag.runtime import transfer_options

    made: list[bool] = []
    real_loader = train_module.DataLoader

    def recording_loader(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        made.append(bool(kwargs.get("pin_memory", False)))
        return real_loader(*args, **kwargs)

    moves: list[bool] = []
    real_to = Batch.to
    monkeypatch.setattr(train_module, "DataLoader", recording_loader)
    monkeypatch.setattr(Batch, "to", lambda self, device, non_blocking=False: moves.append(non_blocking)
                        or real_to(self, device, non_blocking))
    fit(TRAIN[:16], DEV[:4], quick(epochs=1), SMALL, progress=False)
    assert made and not any(made) and moves and not any(moves)  # the CPU: no pinning
    assert train_module.transfer_options is transfer_options  # the policy fit uses:
    assert transfer_options(torch.device("cuda")) == {"pin_memory": True, "non_blocking": True}
    assert transfer_options(torch.device("cpu")) == {"pin_memory": False, "non_blocking": False}


def _record_steps(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, float]]:
    """Record, at every optimizer step, the learning rate and the gradients' global norm."""
    steps: list[dict[str, float]] = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        steps.append({"lr": self.param_groups[0]["lr"], "grad_norm": norm})
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return steps


def test_lr_decay_multiplies_the_rate_after_every_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _record_steps(monkeypatch)
    fit(TRAIN[:32], DEV[:4], quick(epochs=3, batch_size=16, lr=0.01, lr_decay=0.5), SMALL, progress=False)
    assert [s["lr"] for s in steps] == pytest.approx([0.01] * 2 + [0.005] * 2 + [0.0025] * 2)


def test_adam_beta2_reaches_the_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    betas: list[tuple[float, float]] = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        betas.append(self.param_groups[0]["betas"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    fit(TRAIN[:16], DEV[:4], quick(epochs=1, batch_size=16), SMALL, progress=False)
    assert betas == [(0.9, 0.999)]
    betas.clear()
    fit(TRAIN[:16], DEV[:4], quick(epochs=1, batch_size=16, adam_beta2=0.9), SMALL, progress=False)
    assert betas == [(0.9, 0.9)]


def test_clip_norm_bounds_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _record_steps(monkeypatch)
    fit(TRAIN[:32], DEV[:4], quick(epochs=1, clip_norm=None), SMALL, progress=False)
    assert max(s["grad_norm"] for s in steps) > 0.05  # unclipped gradients are larger than the bound
    steps.clear()
    fit(TRAIN[:32], DEV[:4], quick(epochs=1, clip_norm=0.05), SMALL, progress=False)
    assert steps and max(s["grad_norm"] for s in steps) <= 0.05 * (1 + 1e-4)


def test_max_tokens_caps_the_padded_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqtag.train as train_module

    sizes: list[int] = []
    real_loss = train_module.sequence_loss
    monkeypatch.setattr(train_module, "sequence_loss",
                        lambda model, batch, **kw: sizes.append(batch.words.numel()) or real_loss(model, batch, **kw))
    fit(TRAIN, DEV[:4], quick(epochs=1, batch_size=32), SMALL, progress=False)
    assert max(sizes) > 60  # without the cap, 32 sentences of ~6 tokens pad to more than 60
    sizes.clear()
    fit(TRAIN, DEV[:4], quick(epochs=1, batch_size=32, max_tokens=60), SMALL, progress=False)
    assert sizes and max(sizes) <= 60
    assert sum(sizes) >= sum(len(s) for s in TRAIN)  # every sentence still trained on


def test_crf_tagger_fit_save_load_evaluate(tmp_path: Path) -> None:
    result = fit(TRAIN, DEV, quick(epochs=4), {**SMALL, "crf": True}, progress=False)
    assert result.model.crf is not None
    before = result.evaluate(DEV)
    assert before.accuracy > 0.8  # the toy grammar is easy
    path = result.save(tmp_path / "crf.pt")
    back = TrainedTagger.load(path)
    assert back.model.config.crf and back.model.crf is not None
    assert torch.equal(back.model.crf.transitions, result.model.crf.transitions)
    after = back.evaluate(DEV)
    assert after.predictions == before.predictions and after.correct == before.correct
    assert after.loss == pytest.approx(before.loss)


def test_label_smoothing_reaches_the_training_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqtag.train as train_module

    seen: list[float] = []
    real_loss = train_module.sequence_loss
    monkeypatch.setattr(train_module, "sequence_loss",
                        lambda model, batch, **kw: seen.append(kw.get("label_smoothing", 0.0)) or real_loss(model, batch, **kw))
    result = fit(TRAIN[:32], DEV[:4], quick(epochs=1, label_smoothing=0.1), SMALL, progress=False)
    assert seen and set(seen) == {0.1}
    assert result.train_config.label_smoothing == 0.1  # kept with the checkpoint's training options


@pytest.mark.bad_input
def test_label_smoothing_with_a_crf_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a CRF tagger's loss cannot use it"):
        fit(TRAIN[:8], DEV[:2], quick(epochs=1, label_smoothing=0.1), {**SMALL, "crf": True}, checkpoint=tmp_path / "crf.pt",
            progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.bad_input
@pytest.mark.parametrize("aux", [None, "xpos"])
def test_a_dev_tag_training_never_has_is_named_with_its_line(aux: str | None) -> None:
    dev = [*DEV[:3], Sentence(["hello", "!"], ["INTJ", "PUNCT"], ["UH", "."], "odd-1", 77)]
    if aux:  # the main tag set is fine; the second one has the stranger
        dev[3] = Sentence(["the", "dog"], ["DET", "NOUN"], ["DT", "FW"], "odd-1", 77)
    tag = "'FW'" if aux else "'INTJ'"
    with pytest.raises(ValueError, match=rf"dev line 77 \(odd-1\): {'XPOS' if aux else 'UPOS'} tag {tag} never occurs "
                                         rf"in the 32 training sentences"):
        fit(TRAIN[:32], dev, quick(epochs=1, aux_tagset=aux), SMALL, progress=False)
