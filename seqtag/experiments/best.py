"""The book's best tagger, trained once and looked at closely.

``python -m seqtag.experiments.best --tagset upos --seed 0 --json book/results/best_seed0.json --checkpoint runs/best_seed0.pt``
trains ``--preset best`` on all of UD English EWT train (the epoch chosen on dev), scores EWT test
once, and stores what chapter 5 draws from it: the accuracy (all words, words the tagger knows,
words it does not), the scores of every tag, the confusion matrix counts, the most frequent
confusions, and example errors in their sentences, with the machine it ran on
(:func:`seqtag.io.save_results`). The checkpoint is not part of the results: it is large and
rebuilt by the same command.

The functions below also analyse any trained tagger (:func:`analyse`): chapter 5 uses them on its
quick model when it runs without stored results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from seqtag.data import Sentence
from seqtag.options import ArgumentParser

__all__ = ["unknown_words", "error_examples", "analyse", "run_best", "parse_set", "main"]


def unknown_words(tagger: Any) -> Callable[[Sequence[str]], list[bool]]:
    """A function ``words -> [is unknown]``: which words of a sentence the tagger has no vector for.

    "Unknown" is what :class:`~seqtag.metrics.Evaluation` counts as out-of-vocabulary: the word's
    vocabulary entry (after normalisation, lower-casing with vocabulary expansion, unknown-word
    classes) is ``<unk>`` or one of its classes. ``tagger`` is a :class:`~seqtag.tagger.TrainedTagger`.
    """
    from seqtag.vocab import lookup_forms

    unknown = set(tagger.unknown_ids)
    signatures = tagger.train_config.unk_signatures
    lowercase = tagger.train_config.expand_vocab > 0

    def check(words: Sequence[str]) -> list[bool]:
        forms = lookup_forms(tagger.words, list(words), signatures, lowercase)
        return [tagger.words.index(f) in unknown for f in forms]

    return check


def error_examples(
    sentences: Sequence[Sentence],
    predictions: Sequence[Sequence[str]],
    tagset: str,
    unknown: Callable[[Sequence[str]], list[bool]] | None = None,
    k: int = 20,
    min_length: int = 5,
    max_length: int = 25,
) -> list[dict[str, Any]]:
    """The first ``k`` sentences (corpus order) of ``min_length``..``max_length`` words that hold
    at least one tagging error, each with its context.

    Args:
        sentences: gold sentences; ``predictions``: the predicted tags of each, same lengths.
        tagset: ``"upos"`` or ``"xpos"`` (the gold column compared).
        unknown: marks the words the tagger does not know (:func:`unknown_words`); ``None``: none.

    Returns:
        ``[{"sent_id", "words", "gold", "predicted", "errors", "unknown"}]``: ``errors`` and
        ``unknown`` are word positions (0-based).

    Raises:
        ValueError: a sentence and its predictions differ in length (they do not belong together).
    """
    if len(sentences) != len(predictions):
        raise ValueError(f"{len(sentences)} sentences but {len(predictions)} predictions")
    out: list[dict[str, Any]] = []
    for sentence, predicted in zip(sentences, predictions, strict=True):
        gold = sentence.tags(tagset)  # type: ignore[arg-type]
        if len(gold) != len(predicted):
            raise ValueError(f"sentence {sentence.sent_id}: {len(gold)} words but {len(predicted)} predicted tags")
        errors = [i for i, (g, p) in enumerate(zip(gold, predicted, strict=True)) if g != p]
        if not errors or not min_length <= len(gold) <= max_length:
            continue
        flags = unknown(sentence.words) if unknown is not None else [False] * len(gold)
        out.append({
            "sent_id": sentence.sent_id,
            "words": list(sentence.words),
            "gold": list(gold),
            "predicted": list(predicted),
            "errors": errors,
            "unknown": [i for i, u in enumerate(flags) if u],
        })
        if len(out) == k:
            break
    return out


def analyse(
    tagger: Any, test: Sequence[Sentence], k_confusions: int = 15, k_errors: int = 20, aux: bool = False,
    evaluation: Any = None,
) -> dict[str, Any]:
    """Score ``tagger`` (a :class:`~seqtag.tagger.TrainedTagger`) on ``test`` and describe its errors.

    ``aux=True`` describes a jointly trained tagger's second tag set (``tagger.aux_tagset``) instead.
    ``evaluation``: that tag set's :class:`~seqtag.metrics.Evaluation` on ``test`` when already
    computed (:meth:`~seqtag.tagger.TrainedTagger.evaluate_tagsets` scores both in one pass);
    ``None``: evaluate here.

    Returns a JSON-able dict: ``tagset``, ``test`` (:meth:`~seqtag.metrics.Evaluation.summary`:
    accuracy, OOV accuracy...), ``per_tag`` (precision, recall, F1, support), ``labels`` and
    ``confusion`` (rows gold, columns predicted, counts), ``top_confusions``, ``hardest_tags``
    and ``examples`` (:func:`error_examples`).
    """
    from seqtag.metrics import hardest_tags, top_confusions

    ev = tagger.evaluate(test, aux=aux) if evaluation is None else evaluation
    tagset = tagger.aux_tagset if aux else tagger.tagset
    per_tag = ev.per_tag()
    return {
        "tagset": tagset,
        "test": ev.summary(),
        "per_tag": per_tag,
        "labels": list(ev.labels),
        "confusion": ev.confusion.tolist(),
        "top_confusions": top_confusions(ev.confusion, ev.labels, k_confusions),
        "hardest_tags": hardest_tags(per_tag),
        "examples": error_examples(test, ev.predictions, tagset, unknown_words(tagger), k_errors),
    }


def run_best(tagset: str = "upos", seed: int = 0, device: str = "cpu", checkpoint: str | None = None,
             data: str | None = None, overrides: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train ``--preset best`` on EWT train (epoch chosen on dev), then :func:`analyse` it on test.

    Returns ``(tagger, payload)``; the payload adds the options, the dev accuracy, the training
    time and history to the analysis. ``checkpoint`` also saves the tagger there. ``overrides``
    change preset options (an ablation row: ``{"ema": 0.0}`` is the preset without weight averaging).
    """
    import torch

    from seqtag.config import TrainConfig, split_overrides
    from seqtag.data import load_ewt
    from seqtag.presets import preset
    from seqtag.runtime import cpu_threads
    from seqtag.train import fit

    train, dev, test = load_ewt("train", data), load_ewt("dev", data), load_ewt("test", data)
    options = {**preset("best"), "tagset": tagset, "seed": seed, "device": device}
    options.update(overrides or {})
    if options.get("aux_tagset") == tagset:  # joint tagging: the other tag set is the second one
        options["aux_tagset"] = "upos" if tagset == "xpos" else "xpos"
    model_options, train_options = split_overrides(options)
    config = TrainConfig(**train_options)
    start = time.perf_counter()
    tagger = fit(train, dev, config, model_options, progress=False)
    seconds = time.perf_counter() - start
    if checkpoint is not None:
        tagger.save(checkpoint)
    with cpu_threads(config.num_threads):
        dev_ev, dev_aux = tagger.evaluate_tagsets(dev)  # joint: both tag sets from one encoder pass
        test_ev, test_aux = tagger.evaluate_tagsets(test)
        payload = {
            "preset": "best",
            "options": options,
            "train_seconds": seconds,
            "train_threads": torch.get_num_threads(),  # what fit trained with (TrainConfig.num_threads)
            "epochs_run": len(tagger.history["dev_accuracy"]),
            "best_epoch": tagger.best_epoch,
            "dev_accuracy": dev_ev.accuracy,  # after vocabulary expansion
            "parameters": tagger.model.num_parameters(),
            "history": tagger.history,
            **analyse(tagger, test, evaluation=test_ev),
        }
        if dev_aux is not None:  # joint tagging: the second tag set, from the same model
            payload["aux"] = {"dev_accuracy": dev_aux.accuracy, **analyse(tagger, test, aux=True, evaluation=test_aux)}
    return tagger, payload


def parse_set(item: str) -> tuple[str, Any]:
    """``("ema", 0)`` of the ``--set`` value ``"ema=0"``: a preset option and its JSON value.

    Raises:
        ValueError: the value is not JSON, or the item is not ``NAME=VALUE`` (the message names it).
    """
    name, sep, value = item.partition("=")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"--set {item}: the value must be JSON (a number, true/false, null or a quoted string)") from None
    if not sep or not name:
        raise ValueError(f"--set {item}: write NAME=VALUE")
    return name, parsed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seqtag.experiments.best``: train the best preset once, store its analysis."""
    from seqtag.io import save_results

    ap = ArgumentParser(prog="python -m seqtag.experiments.best", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tagset", choices=("upos", "xpos"), default="upos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None, help="folder with the EWT files (default: $SEQTAG_DATA, else download)")
    ap.add_argument("--json", required=True, help="results file to write (e.g. book/results/best_seed0.json)")
    ap.add_argument("--checkpoint", default=None, help="also save the trained tagger here")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                    help="change one preset option, e.g. --set ema=0 --set aux_tagset=null (an ablation row)")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        try:
            name, value = parse_set(item)
        except ValueError as exc:
            ap.error(str(exc))
        overrides[name] = value
    _, payload = run_best(args.tagset, args.seed, args.device, args.checkpoint, args.data, overrides)
    command = "python -m seqtag.experiments.best " + " ".join(sys.argv[1:] if argv is None else argv)
    from seqtag.runtime import cpu_threads

    with cpu_threads(payload["train_threads"]):  # the machine record's torch_threads: the training's
        save_results(args.json, {"command": command, **payload}, device=args.device,
                     schedule=f"full EWT, --preset best{''.join(' --set ' + x for x in args.set)}, seed {args.seed}, "
                              f"{args.device}, {payload['train_threads']} torch thread(s)")
    aux = f", {payload['aux']['tagset']} {payload['aux']['test']['accuracy']:.4f}" if "aux" in payload else ""
    print(f"{args.tagset} test accuracy {payload['test']['accuracy']:.4f}{aux}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
