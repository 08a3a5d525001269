"""Tests for seqtag.bugs: the article's code, its bugs, and the appendix's table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqtag import bugs
from seqtag.models import Tagger, TaggerConfig

CHAPTERS = {"01_padding", "02_packing", "03_masking", "04_bieber_lstm"}


def test_toy_data_matches_the_vocabularies() -> None:
    assert bugs.X_IDS == [[1, 2, 3, 4, 5, 6, 7], [8, 8], [7, 9]]
    assert bugs.Y_IDS == [[1, 2, 3, 3, 3, 1, 4], [5, 5], [4, 5]]
    assert sorted(bugs.VOCAB.values()) == list(range(len(bugs.VOCAB)))
    assert bugs.VOCAB["<PAD>"] == bugs.TAGS["<PAD>"] == 0


def test_article_pad_makes_float64_and_matches_what_the_article_shows() -> None:
    padded = bugs.article_pad(bugs.X_IDS, 0)
    assert padded.dtype == np.float64
    assert padded.tolist() == bugs.ARTICLE_SHOWN_PADDED_X
    # The X that the article's own trick-1 block pads does NOT give what it shows.
    restated = bugs.article_pad(bugs.ARTICLE_TRICK1_X, 0)
    assert restated.tolist() != bugs.ARTICLE_SHOWN_PADDED_X
    assert restated[0, 0] == bugs.VOCAB["<PAD>"]


def test_registry_is_well_formed() -> None:
    assert len(bugs.REGISTRY) == len({b.id for b in bugs.REGISTRY.values()})
    for bug in bugs.REGISTRY.values():
        assert bug.chapter in CHAPTERS, bug.id
        assert bug.title and bug.fix, bug.id
    assert set(bugs.WALKTHROUGH) <= set(bugs.REGISTRY)
    assert sum(b.raises for b in bugs.REGISTRY.values()) >= 12


@pytest.mark.parametrize("bug_id", sorted(bugs.REGISTRY))
def test_each_reproduction_raises_iff_declared(bug_id: str) -> None:
    bug = bugs.REGISTRY[bug_id]
    message = bugs.capture(bug_id)
    if bug.raises:
        assert re.match(r"^[A-Za-z]+(Error|Exception): \S", message), message
    else:
        assert message.startswith("(no error) "), message
    # Deterministic and free of what nbval would have to sanitise.
    assert message == bugs.capture(bug_id)
    assert not re.search(r"0x[0-9a-fA-F]{6,}", message)
    assert "site-packages" not in message and "\n" not in message


def test_capture_of_a_callable_and_of_an_unknown_id() -> None:
    assert bugs.capture(lambda: 1 / 0) == "ZeroDivisionError: division by zero"
    assert bugs.capture(lambda: 3) == "(no error) 3"
    with pytest.raises(KeyError, match="known ids"):
        bugs.capture("no_such_bug")


def test_expect_accepts_the_same_error_and_rejects_others(capsys: pytest.CaptureFixture[str]) -> None:
    with bugs.expect("data_index_0dim"):
        int(torch.ones(3).sum().data[0])
    assert "invalid index of a 0-dim tensor" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="without error"), bugs.expect("data_index_0dim"):
        int(torch.ones(3).sum().item())
    with pytest.raises(AssertionError, match="seqtag.bugs reproduces"), bugs.expect("data_index_0dim"):
        raise ValueError("another error")


def test_walkthrough_patches_apply_in_order() -> None:
    """Each walk-through patch finds its text in the source the earlier fixes leave."""
    for bug_id in bugs.WALKTHROUGH:
        src = bugs.source_before(bug_id)
        bug = bugs.REGISTRY[bug_id]
        if bug.patches:
            for old, _ in bug.patches:
                assert old in src, (bug_id, old)
    with pytest.raises(ValueError, match="not part of chapter 4"):
        bugs.source_before("ragged_batch")


def test_apply_fix_prints_the_diff(capsys: pytest.CaptureFixture[str]) -> None:
    src = bugs.apply_fix(bugs.ARTICLE_BIEBER_LSTM, "lowercase_x")
    out = capsys.readouterr().out
    assert "-        X = torch.nn.utils.rnn.pack_padded_sequence(x," in out
    assert "+        X = torch.nn.utils.rnn.pack_padded_sequence(X," in out
    assert "pack_padded_sequence(x," not in src
    with pytest.raises(ValueError, match="not in this source"):
        bugs.apply_fix(src, "lowercase_x")
    with pytest.raises(ValueError, match="outside the class source"):
        bugs.apply_fix(src, "float_ids_into_embedding")


def _fixed_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return bugs.define(bugs.fixed_article_source())(nb_layers=1, nb_lstm_units=8)


def test_fully_fixed_article_model_runs_on_any_batch() -> None:
    model = _fixed_model()
    X = torch.from_numpy(bugs.article_pad(bugs.X_IDS, 0)).long()
    Y = torch.from_numpy(bugs.article_pad(bugs.Y_IDS, 0)).long()
    loss = model.loss(model(X, [7, 2, 2]), Y, [7, 2, 2])
    assert torch.isfinite(loss)
    out = model(X[[1, 0, 2]], [2, 7, 2])  # unsorted
    assert out.shape == (3, 7, len(bugs.TAGS))
    assert model(X[1:], [2, 2]).shape == (2, 7, len(bugs.TAGS))  # padded past its longest
    torch.testing.assert_close(model(X, [7, 2, 2]), model(X, [7, 2, 2]))  # deterministic


def test_fully_fixed_article_model_equals_seqtag_tagger() -> None:
    model = _fixed_model()
    config = TaggerConfig(
        vocab_size=len(bugs.VOCAB), num_tags=len(bugs.TAGS), embedding_dim=3, hidden_size=8,
        bidirectional=False,
    )
    tagger = Tagger(config)
    renamed = {
        k.replace("word_embedding", "embedding").replace("lstm", "rnn").replace("hidden_to_tag", "output"): v
        for k, v in model.state_dict().items()
    }
    tagger.load_state_dict(renamed)
    X = torch.from_numpy(bugs.article_pad(bugs.X_IDS, 0)).long()
    lengths = torch.tensor([7, 2, 2])
    mask = torch.arange(7) < lengths[:, None]
    expected = model(X, [7, 2, 2])
    got = F.log_softmax(tagger(X, lengths), dim=-1)
    torch.testing.assert_close(got[mask], expected[mask])


def test_bug_table_and_markdown() -> None:
    rows = bugs.bug_table()
    assert len(rows) == len(bugs.REGISTRY)
    chapters = [r.chapter for r in rows]
    assert chapters == sorted(chapters)  # chapter order
    table = bugs.BugTable(rows)
    text = repr(table)
    assert text == bugs.to_markdown(rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) + 2
    # Every data row has exactly the 5 columns (no unescaped pipe), and backticks stay balanced.
    for line in lines[2:]:
        assert len(re.split(r"(?<!\\)\|", line)) == 7, line
    assert "tensor.item<T>()" in text


def test_html_table_escapes_and_marks_code() -> None:
    rows = bugs.bug_table()
    page = bugs.BugTable(rows)._repr_html_()
    assert page.count("<tr>") == len(rows) + 1  # header + one row per bug
    assert "tensor.item&lt;T&gt;()" in page  # escaped, not a tag
    assert "<code>&lt;PAD&gt;</code>" in page  # `<PAD>` in a fix becomes code
    for r in rows:  # every Markdown code span of titles and fixes became <code>
        assert "`" not in bugs._html_text(r.bug) + bugs._html_text(r.fix), r


def test_code_cell_survives_backticks_and_pipes() -> None:
    cell = bugs._code_cell("use `a|b` here")
    assert cell == "`` use `a\\|b` here ``"
