"""Joint decoding, measured: the same weights choosing their two tags apart, then together.

``python -m seqtag.experiments.joint_decoding --checkpoints runs/best_seed0.pt --runs book/results/best_runs/preset_seed0_fam25.json --json book/results/joint_decoding.json``
scores each jointly trained checkpoint (``--preset best`` learns UPOS and XPOS) on EWT dev and
test twice: each output layer's own best tag, and the best pair of tags among the pairs seen in
EWT train (``TaggerConfig.joint_decoding``, :meth:`seqtag.models.Tagger.decode_heads`). It also
counts the words whose two predicted tags form a pair that training never had (a ``PROPN``
tagged ``VBZ``). The weights are the same in both, so a difference is the decoding's alone: no
training noise, no second run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqtag.data import Sentence
from seqtag.options import ArgumentParser

__all__ = ["unseen_pairs", "compare_decodings", "main"]

DECODINGS = ("independent", "joint")


def unseen_pairs(first: Sequence[Sequence[str]], second: Sequence[Sequence[str]], seen: set[tuple[str, str]]) -> int:
    """How many words have a ``(first tag, second tag)`` pair outside ``seen`` (tag names)."""
    return sum((a, b) not in seen for xs, ys in zip(first, second, strict=True) for a, b in zip(xs, ys, strict=True))


def compare_decodings(tagger: Any, train: Sequence[Sentence], splits: dict[str, Sequence[Sentence]]) -> dict[str, Any]:
    """Accuracy of both tag sets on each labelled split, decoded apart and together, and the
    words of each split whose predicted pair training never had.

    Args:
        tagger: a jointly trained :class:`~seqtag.tagger.TrainedTagger`, decoding either way.
        train: its training sentences: the pairs joint decoding may choose are theirs.
        splits: ``{"dev": sentences, "test": sentences}``.

    Returns:
        ``{"independent": {tagset: {split: acc}, "unseen_pairs": {split: n}}, "joint": {...},
        "tokens": {split: n}, "gain": {tagset: {split: joint - independent}}}``.
    """
    from seqtag.vocab import seen_pairs

    if tagger.aux_tags is None:
        raise ValueError("compare_decodings needs a jointly trained tagger (aux_tagset): it has one tag set")
    pairs = seen_pairs(train, tagger.tagset, tagger.aux_tagset, tagger.tags, tagger.aux_tags)
    names = {(tagger.tags.itos[a], tagger.aux_tags.itos[b]) for a, b in pairs}
    out: dict[str, Any] = {"tokens": {}}
    for decoding, variant in zip(DECODINGS, (tagger.with_joint_decoding(None), tagger.with_joint_decoding(pairs)),
                                 strict=True):
        scores: dict[str, Any] = {tagger.tagset: {}, tagger.aux_tagset: {}, "unseen_pairs": {}}
        for split, sentences in splits.items():
            main, second = variant.evaluate_joint(sentences)
            scores[tagger.tagset][split], scores[tagger.aux_tagset][split] = main.accuracy, second.accuracy
            scores["unseen_pairs"][split] = unseen_pairs(main.predictions, second.predictions, names)
            out["tokens"][split] = main.tokens
        out[decoding] = scores
    out["gain"] = {t: {s: out["joint"][t][s] - out["independent"][t][s] for s in splits}
                   for t in (tagger.tagset, tagger.aux_tagset)}
    return out


def _mean_gain(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each tag set's and split's gain averaged over the checkpoints, with its smallest and largest."""
    out: dict[str, Any] = {}
    for tagset, splits in rows[0]["gain"].items():
        out[tagset] = {s: {"mean": statistics.fmean(r["gain"][tagset][s] for r in rows),
                           "min": min(r["gain"][tagset][s] for r in rows),
                           "max": max(r["gain"][tagset][s] for r in rows)} for s in splits}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seqtag.experiments.joint_decoding``: score checkpoints decoded apart and together."""
    from seqtag.data import load_ewt
    from seqtag.io import load_json, save_results
    from seqtag.runtime import cpu_threads
    from seqtag.tagger import load

    ap = ArgumentParser(prog="python -m seqtag.experiments.joint_decoding", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", nargs="+", required=True, metavar="FILE",
                    help="jointly trained checkpoints (--checkpoint of python -m seqtag.experiments.best)")
    ap.add_argument("--runs", nargs="*", default=[], metavar="FILE",
                    help="the run file of each checkpoint, in the same order (recorded, and checked for the same seed)")
    ap.add_argument("--data", default=None, help="folder with the EWT files (default: $SEQTAG_DATA, else download)")
    ap.add_argument("--device", default="cpu", help="device to tag on (default: %(default)s)")
    ap.add_argument("--json", required=True, help="results file to write (e.g. book/results/joint_decoding.json)")
    args = ap.parse_args(argv)
    if args.runs and len(args.runs) != len(args.checkpoints):
        ap.error(f"{len(args.runs)} run files for {len(args.checkpoints)} checkpoints: give one per checkpoint, or none")
    train, splits = load_ewt("train", args.data), {"dev": load_ewt("dev", args.data), "test": load_ewt("test", args.data)}
    rows = []
    for k, path in enumerate(args.checkpoints):
        tagger = load(path, device=args.device)
        seed = tagger.train_config.seed
        row: dict[str, Any] = {"checkpoint": Path(path).name, "seed": seed, "tagset": tagger.tagset,
                               "aux_tagset": tagger.aux_tagset, "trained_with": "joint" if tagger.model.config.joint_decoding
                               else "independent"}
        if args.runs:
            run = load_json(args.runs[k])
            if run.get("options", {}).get("seed", seed) != seed:
                ap.error(f"{args.runs[k]}: seed {run['options']['seed']} is not the checkpoint's ({seed}): "
                         "give the runs in the checkpoints' order")
            row["run"] = Path(args.runs[k]).name
        with cpu_threads(tagger.train_config.num_threads):
            row.update(compare_decodings(tagger, train, splits))
        rows.append(row)
        gain = row["gain"]
        print(f"{row['checkpoint']}: joint minus independent, test " +
              ", ".join(f"{t} {100 * g['test']:+.2f}" for t, g in gain.items()) +
              f"; unseen pairs on test {row['independent']['unseen_pairs']['test']} -> {row['joint']['unseen_pairs']['test']}")
    command = "python -m seqtag.experiments.joint_decoding " + " ".join(sys.argv[1:] if argv is None else argv)
    save_results(args.json, {"command": command, "decodings": {
        "independent": "each output layer's most probable tag (never <pad>)",
        "joint": "the pair of tags seen in EWT train with the highest sum of both layers' log-probabilities"},
        "checkpoints": rows, "mean_gain": _mean_gain(rows)},
        schedule=f"{len(rows)} checkpoint(s) scored on full EWT dev and test, each decoded both ways", device=args.device)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
