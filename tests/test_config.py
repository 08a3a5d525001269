"""seqtag.config and the configuration dataclasses: every field documented, presets that build,
unknown fields named, overrides split."""

from __future__ import annotations

import dataclasses

import pytest

from seqtag.config import TrainConfig, split_overrides
from seqtag.distributed import DistConfig
from seqtag.io import check_known_fields
from seqtag.models import TaggerConfig
from seqtag.presets import PRESETS, preset
from seqtag.transformer import TransformerConfig

CONFIGS = [TaggerConfig, TrainConfig, TransformerConfig, DistConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_says_what_it_does_and_what_values_it_takes(cls: type) -> None:
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help", "")
        assert isinstance(text, str) and len(text) >= 15, f"{cls.__name__}.{f.name} has no real help"
        assert "\n" not in text, f"{cls.__name__}.{f.name}: help must be one line"


def test_embeddings_help_names_the_sources_and_a_file() -> None:
    from seqtag.embeddings import SOURCES

    text = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}["embeddings"]
    assert all(name in text for name in SOURCES) and "GloVe" in text and "file" in text


def test_generated_help_lists_every_option() -> None:
    from seqtag.options import ArgumentParser, add_options

    parser = ArgumentParser(prog="x")
    add_options(parser, TaggerConfig)
    add_options(parser, TrainConfig)
    text = parser.format_help()
    for name in ("--embeddings", "--expand-vocab", "--pool-factor", "--max-tokens", "--word-dropout"):
        assert name in text
    assert "--vocab-size" not in text  # from the data, not an option


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_both_configs(name: str) -> None:
    model, train = split_overrides(preset(name))
    use_chars = model.pop("char_cnn", False)
    config = TaggerConfig(vocab_size=50, num_tags=5, char_vocab_size=30 if use_chars else 0, **model)
    train_config = TrainConfig(**train)
    for key, value in preset(name).items():  # every value lands where it belongs
        if key != "char_cnn":
            assert getattr(config if key in model else train_config, key) == value


def test_unknown_preset_and_unknown_options() -> None:
    with pytest.raises(KeyError, match="known presets: .*default"):
        preset("fastest")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hiden_size'\]; model options: .*hidden_size"):
        split_overrides({"hiden_size": 3})
    model, train = split_overrides({"hidden_size": 3, "epochs": 2, "char_cnn": True})
    assert model == {"hidden_size": 3, "char_cnn": True} and train == {"epochs": 2}
    with pytest.raises(ValueError, match=r"vocab_size"):  # sizes come from the data
        split_overrides({"vocab_size": 3})


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_unknown_fields_are_named_with_the_known_ones(cls: type) -> None:
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} fields \['bogus'\].*; known fields: \["):
        check_known_fields(cls, {"bogus": 1})
    with pytest.raises(ValueError, match="must be read from a dict"):
        check_known_fields(cls, ["bogus"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"weight_decay": -1}, "weight_decay must be >= 0"), ({"clip_norm": -1}, "clip_norm must be > 0"),
     ({"max_tokens": 0}, "max_tokens must be >= 1"), ({"lr_decay": 0}, r"lr_decay must be in \(0, 1\]"),
     ({"adam_beta2": 1.0}, r"adam_beta2 must be in \(0, 1\)")],
)
def test_train_config_rejects_bad_values(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        TrainConfig(**kwargs)


def test_dist_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        DistConfig(epochs=0)
    with pytest.raises(ValueError, match="tagset must be"):
        DistConfig(tagset="deprel")  # type: ignore[arg-type]
    assert DistConfig(train_size=10).train_config().unk_signatures is False
