"""Joint decoding: a UPOS+XPOS tagger picks each word's two tags together, among the pairs seen in training."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from seqtag.data import Sentence
from seqtag.models import AuxHead, Tagger, TaggerConfig
from seqtag.tagger import TrainedTagger
from seqtag.train import fit
from seqtag.vocab import PAD_ID, Vocab, seen_pairs
from tests.test_train import DEV, SMALL, TRAIN, quick

# tag ids 1..3 of the first tag set, 1..4 of the second; pad (0) is never a tag
PAIRS = {(1, 1), (1, 2), (2, 3), (3, 4), (3, 1)}


def _model(joint: bool = True) -> Tagger:
    model = Tagger(TaggerConfig(vocab_size=6, num_tags=4, aux_num_tags=5, embedding_dim=4, hidden_size=4,
                                joint_decoding=joint))
    if joint:
        model.set_tag_pairs(PAIRS)
    return model


def _brute_force(main: torch.Tensor, second: torch.Tensor) -> tuple[int, int]:
    """The allowed pair with the largest sum of log-probabilities, by trying every pair."""
    lm, ls = main.log_softmax(-1), second.log_softmax(-1)
    return max(PAIRS, key=lambda p: float(lm[p[0]] + ls[p[1]]))


def test_joint_decoding_picks_the_best_pair_seen_in_training() -> None:
    torch.manual_seed(0)
    model = _model()
    scores, aux_scores = torch.randn(3, 5, 4) * 3, torch.randn(3, 5, 5) * 3
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    first, second = model.decode_heads(scores, aux_scores, mask)
    for b, t in itertools.product(range(3), range(5)):
        if mask[b, t]:
            assert (int(first[b, t]), int(second[b, t])) == _brute_force(scores[b, t], aux_scores[b, t])
        else:
            assert first[b, t] == second[b, t] == PAD_ID


def test_joint_decoding_overrules_a_confident_layer_when_the_pair_does_not_exist() -> None:
    model = _model()
    # on its own the first layer says 2 and the second says 1: (2, 1) was never seen in training
    scores = torch.tensor([[[0.0, 0.0, 2.0, 1.9]]])
    aux_scores = torch.tensor([[[0.0, 3.0, 0.0, 0.0, 0.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    independent = _model(joint=False).decode_heads(scores, aux_scores, mask)
    assert (int(independent[0]), int(independent[1])) == (2, 1)
    first, second = model.decode_heads(scores, aux_scores, mask)
    assert (int(first), int(second)) == (3, 1)  # the best pair that exists


def test_without_joint_decoding_each_layer_decodes_alone() -> None:
    torch.manual_seed(1)
    model = _model(joint=False)
    scores, aux_scores = torch.randn(2, 4, 4), torch.randn(2, 4, 5)
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    first, second = model.decode_heads(scores, aux_scores, mask)
    assert torch.equal(first, model.decode(scores, mask))
    assert torch.equal(second, AuxHead(model).decode(aux_scores, mask))
    assert model.tag_pairs is None and "tag_pairs" not in model.state_dict()


def test_before_its_pairs_are_set_joint_decoding_decodes_each_layer_alone() -> None:
    torch.manual_seed(3)
    fresh = Tagger(TaggerConfig(vocab_size=6, num_tags=4, aux_num_tags=5, embedding_dim=4, hidden_size=4,
                                joint_decoding=True))
    scores, aux_scores = torch.randn(2, 3, 4) * 3, torch.randn(2, 3, 5) * 3
    mask = torch.tensor([[True] * 3, [True, False, False]])
    assert all(torch.equal(a, b) for a, b in zip(fresh.decode_heads(scores, aux_scores, mask),
                                                 _model(joint=False).decode_heads(scores, aux_scores, mask), strict=True))


def test_predict_of_either_layer_is_the_joint_decision() -> None:
    torch.manual_seed(2)
    model = _model().eval()
    words, lengths = torch.tensor([[2, 3, 4], [5, 2, 0]]), torch.tensor([3, 2])
    main, second = model.forward_heads(words, lengths)
    assert second is not None
    mask = torch.tensor([[True, True, True], [True, True, False]])
    first_ids, second_ids = model.decode_heads(main, second, mask)
    assert torch.equal(model.predict(words, lengths), first_ids)
    assert torch.equal(AuxHead(model).predict(words, lengths), second_ids)


@pytest.fixture(scope="module")
def joint() -> TrainedTagger:
    return fit(TRAIN, DEV, quick(epochs=4, aux_tagset="xpos"), {**SMALL, "joint_decoding": True}, progress=False)


def test_training_stores_the_pairs_of_the_training_data(joint: TrainedTagger, tmp_path: Path) -> None:
    assert joint.aux_tags is not None and joint.model.tag_pairs is not None
    expected = seen_pairs(TRAIN, "upos", "xpos", joint.tags, joint.aux_tags)
    assert {tuple(p) for p in joint.model.tag_pairs.nonzero().tolist()} == expected
    loaded = TrainedTagger.load(joint.save(tmp_path / "joint.pt"))
    assert loaded.model.tag_pairs is not None and torch.equal(loaded.model.tag_pairs, joint.model.tag_pairs)
    assert loaded.evaluate_joint(DEV)[1].predictions == joint.evaluate_joint(DEV)[1].predictions


def test_every_way_of_tagging_gives_the_same_joint_tags(joint: TrainedTagger) -> None:
    upos, xpos = joint.evaluate_joint(DEV, batch_size=4)
    assert joint.evaluate(DEV).predictions == upos.predictions
    assert joint.evaluate(DEV, aux=True).predictions == xpos.predictions
    both = joint.tag([s.words for s in DEV], both=True)
    assert [[u for u, _ in s] for s in both] == upos.predictions
    assert [[x for _, x in s] for s in both] == xpos.predictions
    assert joint.tag([s.words for s in DEV]) == upos.predictions
    seen = {(u, x) for s in TRAIN for u, x in zip(s.upos, s.xpos, strict=True)}
    assert {p for s in both for p in s} <= seen


def test_seen_pairs_reads_both_tag_sets_of_every_word() -> None:
    sents = [Sentence(["a", "b"], ["X", "Y"], ["x1", "y"], "s1", 1), Sentence(["c"], ["X"], ["x2"], "s2", 4)]
    tags, second = Vocab(["X", "Y"], unk=False), Vocab(["x1", "x2", "y"], unk=False)
    assert seen_pairs(sents, "upos", "xpos", tags, second) == {(1, 1), (2, 3), (1, 2)}
    with pytest.raises(ValueError, match=r"line 4: tag pair \('X', 'x2'\) is not in the tag vocabularies"):
        seen_pairs(sents, "upos", "xpos", tags, Vocab(["x1", "y"], unk=False))


@pytest.mark.bad_input
def test_joint_decoding_misuse_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="joint_decoding needs a second tag set"):
        TaggerConfig(vocab_size=5, num_tags=3, joint_decoding=True)
    with pytest.raises(ValueError, match="joint_decoding needs a second tag set .* and no CRF"):
        TaggerConfig(vocab_size=5, num_tags=3, aux_num_tags=3, crf=True, joint_decoding=True)
    with pytest.raises(ValueError, match="does not decode jointly"):
        _model(joint=False).set_tag_pairs(PAIRS)
    with pytest.raises(ValueError, match=r"tag pair \(0, 1\) is outside"):
        _model().set_tag_pairs({(0, 1), *PAIRS})
    with pytest.raises(ValueError, match=r"tag ids \[2\] have no pair"):
        _model().set_tag_pairs(PAIRS - {(2, 3)})
    with pytest.raises(ValueError, match="joint_decoding needs a second tag set"):
        fit(TRAIN[:16], DEV[:4], quick(epochs=1), {**SMALL, "joint_decoding": True}, progress=False)


def test_joint_decoding_switched_on_and_off_after_training(joint: TrainedTagger) -> None:
    assert joint.aux_tags is not None
    alone = joint.with_joint_decoding(None)
    assert alone.model.tag_pairs is None and not alone.model.config.joint_decoding
    weights = {k: v for k, v in joint.model.state_dict().items() if k != "tag_pairs"}
    assert all(torch.equal(v, alone.model.state_dict()[k]) for k, v in weights.items())
    # other pairs, then the training pairs again: the same tags as the tagger that trained with them
    pairs = seen_pairs(TRAIN, "upos", "xpos", joint.tags, joint.aux_tags)
    noun, vbz = joint.tags.stoi["NOUN"], joint.aux_tags.stoi["VBZ"]
    strange = joint.with_joint_decoding(pairs | {(noun, vbz)})
    again = strange.with_joint_decoding(pairs)
    assert again.evaluate_joint(DEV)[1].predictions == joint.evaluate_joint(DEV)[1].predictions
    words = [s.words for s in DEV]
    assert [[x for _, x in s] for s in alone.tag(words, both=True)] == alone.evaluate(DEV, aux=True).predictions
    with pytest.raises(ValueError, match="outside the tag sets"):
        joint.with_joint_decoding({(0, 0)})


def test_an_ensemble_of_joint_decoders_predicts_only_allowed_pairs(joint: TrainedTagger) -> None:
    from seqtag.experiments import best_seeds

    assert joint.aux_tags is not None
    words = [s.words for s in DEV]
    alone = best_seeds.ensemble_predictions([joint], words)
    both = joint.tag(words, both=True)
    assert alone["upos"] == [[u for u, _ in s] for s in both] and alone["xpos"] == [[x for _, x in s] for s in both]
    # only (NOUN, NN) for NOUN: an ensemble that decodes jointly never says (NOUN, VBZ), and the
    # same members decoding alone do on some word
    noun = joint.tags.stoi["NOUN"]
    pairs = {p for p in seen_pairs(TRAIN, "upos", "xpos", joint.tags, joint.aux_tags) if p[0] != noun}
    pairs.add((noun, joint.aux_tags.stoi["VBZ"]))
    forced = best_seeds.ensemble_predictions([joint.with_joint_decoding(pairs)] * 2, words)
    allowed = {(joint.tags.itos[a], joint.aux_tags.itos[b]) for a, b in pairs}
    found = {p for u, x in zip(forced["upos"], forced["xpos"], strict=True) for p in zip(u, x, strict=True)}
    assert found <= allowed and ("NOUN", "VBZ") in found


def test_compare_decodings_scores_the_same_weights_both_ways(joint: TrainedTagger) -> None:
    from seqtag.experiments.joint_decoding import compare_decodings, unseen_pairs

    found = compare_decodings(joint, TRAIN, {"dev": DEV})
    apart, together = joint.with_joint_decoding(None).evaluate_joint(DEV), joint.evaluate_joint(DEV)
    assert found["independent"]["upos"]["dev"] == apart[0].accuracy and found["joint"]["xpos"]["dev"] == together[1].accuracy
    assert found["gain"]["xpos"]["dev"] == together[1].accuracy - apart[1].accuracy
    seen = {(u, x) for s in TRAIN for u, x in zip(s.upos, s.xpos, strict=True)}
    assert found["independent"]["unseen_pairs"]["dev"] == unseen_pairs(apart[0].predictions, apart[1].predictions, seen)
    assert found["joint"]["unseen_pairs"]["dev"] == 0 and found["tokens"]["dev"] == sum(len(s.words) for s in DEV)
    assert unseen_pairs([["DET", "NOUN"]], [["DT", "VBZ"]], seen) == 1


def test_joint_decoding_experiment_writes_its_results_file(joint: TrainedTagger, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import seqtag.data
    from seqtag.experiments import joint_decoding

    monkeypatch.setattr(seqtag.data, "load_ewt", lambda split, data=None: {"train": TRAIN, "dev": DEV, "test": DEV[:10]}[split])
    ckpt = joint.save(tmp_path / "j.pt")
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"options": {"seed": joint.train_config.seed}}))
    out = tmp_path / "jd.json"
    assert joint_decoding.main(["--checkpoints", str(ckpt), "--runs", str(run), "--json", str(out)]) == 0
    stored = json.loads(out.read_text())
    row = stored["checkpoints"][0]
    assert (row["checkpoint"], row["run"], row["trained_with"]) == ("j.pt", "run.json", "joint")
    assert stored["mean_gain"]["xpos"]["test"]["mean"] == row["gain"]["xpos"]["test"]
    assert stored["machine"]["schedule"].startswith("1 checkpoint(s)")
    run.write_text(json.dumps({"options": {"seed": joint.train_config.seed + 1}}))
    with pytest.raises(SystemExit):
        joint_decoding.main(["--checkpoints", str(ckpt), "--runs", str(run), "--json", str(out)])
    single = fit(TRAIN[:16], DEV[:4], quick(epochs=1), SMALL, progress=False)
    with pytest.raises(ValueError, match="needs a jointly trained tagger"):
        joint_decoding.compare_decodings(single, TRAIN, {"dev": DEV})
