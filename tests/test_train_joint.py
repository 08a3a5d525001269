"""Training options of the best preset: joint UPOS+XPOS heads, the cosine schedule, weight averaging (EMA)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from seqtag.batching import collate
from seqtag.config import TrainConfig
from seqtag.losses import masked_cross_entropy, sequence_loss
from seqtag.models import AuxHead, TaggerConfig
from seqtag.tagger import TrainedTagger
from seqtag.train import fit
from tests.test_train import DEV, SMALL, TRAIN, _record_steps, quick


@pytest.fixture(scope="module")
def joint() -> TrainedTagger:
    return fit(TRAIN, DEV, quick(epochs=6, aux_tagset="xpos"), SMALL, progress=False)


def test_joint_tagger_learns_both_tag_sets_and_reports_both(joint: TrainedTagger) -> None:
    assert joint.aux_tagset == "xpos" and joint.aux_tags is not None
    assert joint.model.config.aux_num_tags == len(joint.aux_tags)
    assert len(joint.history["dev_aux_accuracy"]) == len(joint.history["dev_accuracy"])
    upos, xpos = joint.evaluate(DEV), joint.evaluate(DEV, aux=True)
    assert upos.accuracy > 0.9 and xpos.accuracy > 0.9
    # the second head's predictions are its own: XPOS strings, aligned with the words
    assert all(len(p) == len(s) for p, s in zip(xpos.predictions, DEV, strict=True))
    assert {t for p in xpos.predictions for t in p} <= {"DT", "JJ", "NN", "VBZ", "."}


def test_evaluate_joint_gives_both_evaluations_from_one_encoder_pass(joint: TrainedTagger) -> None:
    calls: list[str] = []
    hook = joint.model.rnn.register_forward_hook(lambda *_: calls.append("encoder"))
    try:
        upos, xpos = joint.evaluate_joint(DEV, batch_size=4)
        both = len(calls)
        calls.clear()
        joint.evaluate(DEV, batch_size=4)
    finally:
        hook.remove()
    assert both == len(calls) > 0  # the encoder ran as often as for one tag set alone
    assert (upos.accuracy, upos.predictions) == (joint.evaluate(DEV).accuracy, joint.evaluate(DEV).predictions)
    separate = joint.evaluate(DEV, aux=True)
    assert (xpos.accuracy, xpos.predictions, xpos.oov_tokens) == (separate.accuracy, separate.predictions, separate.oov_tokens)
    assert torch.equal(xpos.confusion, separate.confusion)


@pytest.mark.bad_input
def test_evaluate_joint_needs_a_joint_tagger() -> None:
    single = fit(TRAIN[:16], DEV[:4], quick(epochs=1), SMALL, progress=False)
    with pytest.raises(ValueError, match="learns one tag set"):
        single.evaluate_joint(DEV)
    main, second = single.evaluate_tagsets(DEV)  # every tag set it learns: one
    assert second is None and main.predictions == single.evaluate(DEV).predictions


def test_evaluate_tagsets_of_a_joint_tagger_is_its_joint_pass(joint: TrainedTagger) -> None:
    main, second = joint.evaluate_tagsets(DEV)
    together = joint.evaluate_joint(DEV)
    assert second is not None and (main.predictions, second.predictions) == (together[0].predictions, together[1].predictions)


def test_joint_loss_is_the_sum_of_both_heads_from_one_encoder_pass(joint: TrainedTagger) -> None:
    ds = joint.dataset([s.words for s in DEV[:6]], [s.upos for s in DEV[:6]], [s.xpos for s in DEV[:6]])
    batch = collate([ds[i] for i in range(len(ds))])
    model = joint.model.eval()
    calls = []
    handle = model.rnn.register_forward_hook(lambda *a: calls.append(1))
    loss = sequence_loss(model, batch)
    handle.remove()
    main = masked_cross_entropy(model(batch.words, batch.lengths), batch.tags, batch.mask)
    aux = masked_cross_entropy(AuxHead(model)(batch.words, batch.lengths), batch.aux_tags, batch.mask)
    torch.testing.assert_close(loss, main + aux)
    assert len(calls) == 1  # flipped=False here: the RNN module itself ran once for both heads
    # label smoothing reaches both output layers
    smoothed = sequence_loss(model, batch, label_smoothing=0.2)
    main_s = masked_cross_entropy(model(batch.words, batch.lengths), batch.tags, batch.mask, label_smoothing=0.2)
    aux_s = masked_cross_entropy(AuxHead(model)(batch.words, batch.lengths), batch.aux_tags, batch.mask,
                                 label_smoothing=0.2)
    torch.testing.assert_close(smoothed, main_s + aux_s)
    assert not torch.allclose(smoothed, main_s + aux)


def test_each_epochs_dev_evaluation_reads_the_encoder_once_for_both_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    from seqtag.models import Tagger

    passes: list[bool] = []
    features = Tagger.features

    def counted(self: Tagger, *args: object, **kwargs: object) -> torch.Tensor:
        passes.append(self.training)
        return features(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Tagger, "features", counted)
    dev = DEV[:40]
    tagger = fit(TRAIN[:60], dev, quick(epochs=2, aux_tagset="xpos", eval_batch_size=16), SMALL, progress=False)
    dev_batches = math.ceil(len(dev) / 16)
    assert passes.count(False) == 2 * dev_batches  # 2 epochs, one pass per dev batch (not one per head)
    assert len(tagger.history["dev_aux_accuracy"]) == 2


def test_joint_checkpoint_round_trip(joint: TrainedTagger, tmp_path: Path) -> None:
    loaded = TrainedTagger.load(joint.save(tmp_path / "joint.pt"))
    assert loaded.aux_tagset == "xpos" and loaded.aux_tags is not None
    assert loaded.aux_tags.itos == joint.aux_tags.itos  # type: ignore[union-attr]
    assert loaded.evaluate(DEV, aux=True).accuracy == joint.evaluate(DEV, aux=True).accuracy


@pytest.mark.bad_input
def test_joint_misuse_is_a_clear_error(joint: TrainedTagger) -> None:
    single = fit(TRAIN[:16], DEV[:4], quick(epochs=1), SMALL, progress=False)
    with pytest.raises(ValueError, match="no second one to evaluate"):
        single.evaluate(DEV, aux=True)
    with pytest.raises(ValueError, match="learns one tag set"):
        single.dataset([["a"]], [["DET"]], [["DT"]])
    ds = joint.dataset([s.words for s in DEV[:2]], [s.upos for s in DEV[:2]])  # no second tags
    with pytest.raises(ValueError, match="needs aux_tags"):
        sequence_loss(joint.model, collate([ds[0], ds[1]]))
    with pytest.raises(ValueError, match="no second output layer"):
        AuxHead(single.model)
    with pytest.raises(ValueError, match="aux_tagset must be None or the other"):
        TrainConfig(tagset="upos", aux_tagset="upos")
    with pytest.raises(ValueError, match="aux_num_tags"):
        TaggerConfig(vocab_size=5, num_tags=3, aux_num_tags=1)


def test_cosine_schedule_falls_from_lr_to_zero_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _record_steps(monkeypatch)
    fit(TRAIN[:64], DEV[:4], quick(epochs=2, batch_size=16, lr=0.01, lr_schedule="cosine"), SMALL, progress=False)
    total = 8  # 2 epochs of 4 batches
    expected = [0.005 * (1 + math.cos(math.pi * k / total)) for k in range(total)]
    assert [s["lr"] for s in steps] == pytest.approx(expected)


@pytest.mark.bad_input
@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"lr_schedule": "cosine", "lr_decay": 0.5}, "leave lr_decay at 1"),
    ({"lr_schedule": "linear"}, "lr_schedule must be"),
    ({"ema": 1.0}, "ema must be in"),
])
def test_schedule_options_are_validated(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        TrainConfig(**kwargs)


def test_ema_keeps_and_returns_the_averaged_weights() -> None:
    def weights(result: TrainedTagger) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in result.model.rnn.parameters()])

    init = weights(fit(TRAIN, DEV, quick(epochs=1, lr=1e-12), SMALL, progress=False))  # same seed: same start
    live = weights(fit(TRAIN, DEV, quick(epochs=1), SMALL, progress=False))
    slow = weights(fit(TRAIN, DEV, quick(epochs=1, ema=0.9999), SMALL, progress=False))
    # Averaged with decay 0.9999 over 15 steps, the weights are almost those after the first step;
    # the live ones have moved on from there.
    assert (slow - init).norm() < 0.2 * (live - init).norm()
