"""Tests for seqtag.article: the article's code, its bugs and pitfalls, the fixes, the two tables."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqtag.article import code, fixes, registry, table
from seqtag.article.registry import REGISTRY
from seqtag.models import Tagger, TaggerConfig
from seqtag.notebook import diff_lines, show_code


def test_toy_data_matches_the_vocabularies() -> None:
    assert code.X_IDS == [[1, 2, 3, 4, 5, 6, 7], [8, 8], [7, 9]]
    assert code.Y_IDS == [[1, 2, 3, 3, 3, 1, 4], [5, 5], [4, 5]]
    assert sorted(code.VOCAB.values()) == list(range(len(code.VOCAB)))
    assert code.VOCAB["<PAD>"] == code.TAGS["<PAD>"] == 0


def test_article_pad_makes_float64_and_matches_what_the_article_shows() -> None:
    padded = code.article_pad(code.X_IDS, 0)
    assert padded.dtype == np.float64
    assert padded.tolist() == code.ARTICLE_SHOWN_PADDED_X
    # The X that the article's own trick-1 block pads does NOT give what it shows.
    restated = code.article_pad(code.ARTICLE_TRICK1_X, 0)
    assert restated.tolist() != code.ARTICLE_SHOWN_PADDED_X
    assert restated[0, 0] == code.VOCAB["<PAD>"]


def test_trick1_listing_runs_and_pads_what_article_pad_pads() -> None:
    namespace: dict[str, object] = {"np": np, "vocab": code.VOCAB}
    exec(code.ARTICLE_TRICK1, namespace)
    assert namespace["X"] == code.ARTICLE_TRICK1_X
    np.testing.assert_array_equal(namespace["padded_X"], code.article_pad(code.ARTICLE_TRICK1_X, 0))


def test_registry_is_well_formed() -> None:
    assert len(REGISTRY) == len({b.id for b in REGISTRY.values()})
    for bug in REGISTRY.values():
        assert bug.chapter in registry.CHAPTERS, bug.id
        assert bug.title and bug.fix, bug.id
    assert set(fixes.WALKTHROUGH) <= set(REGISTRY)
    assert all(REGISTRY[b].kind == "bug" for b in fixes.WALKTHROUGH)  # chapter 4 fixes the article's code


def test_every_bug_quotes_a_line_of_the_article_and_no_pitfall_does() -> None:
    for bug in REGISTRY.values():
        if bug.kind == "bug":
            assert re.match(r"^(trick 1|BieberLSTM), line \d+$", code.locate(bug.article_line)), bug.id
        else:
            assert bug.article_line == "", bug.id
    with pytest.raises(ValueError, match="not a line of the article"):
        code.locate("x = 1")


def test_a_bug_must_quote_its_line() -> None:
    with pytest.raises(ValueError, match="quotes the article's line"):
        registry.Bug("x", "t", "f", "01_padding", lambda: None, kind="bug")
    with pytest.raises(ValueError, match="quotes the article's line"):
        registry.Bug("x", "t", "f", "01_padding", lambda: None, kind="pitfall", article_line="self.lstm")
    with pytest.raises(ValueError, match="unknown chapter"):
        registry.Bug("x", "t", "f", "99_nowhere", lambda: None, kind="pitfall")


@pytest.mark.parametrize("bug_id", sorted(REGISTRY))
def test_each_reproduction_raises_iff_declared(bug_id: str) -> None:
    bug = REGISTRY[bug_id]
    message = registry.capture(bug_id)
    if bug.raises:
        assert re.match(r"^[A-Za-z]+(Error|Exception): \S", message), message
    else:
        assert message.startswith("(no error) "), message
    # Deterministic and free of what nbval would have to sanitise.
    assert message == registry.capture(bug_id)
    assert not re.search(r"0x[0-9a-fA-F]{6,}", message)
    assert "site-packages" not in message and "\n" not in message


def test_silent_reproductions_state_the_wrong_result() -> None:
    """The silent rows say what went wrong; these fail if PyTorch starts behaving differently."""
    assert registry.capture("random_init_hidden").endswith("same outputs: False")
    assert registry.capture("hidden_rows_unchecked") == (
        "(no error) a batch of 2 sentences returns h_n with 3 rows; the real rows are right: True; "
        "the extra row is never written (all NaN when PyTorch fills uninitialized memory): True"
    )
    assert registry.capture("float_lengths").endswith("11 real words, 8 packed")
    assert registry.capture("all_padding_nan").endswith("loss = nan")
    assert registry.capture("mask_times_nan").endswith("loss = nan")
    assert registry.capture("nan_grad_after_log_softmax").endswith("first: 0")


def test_hidden_rows_reproduction_restores_the_deterministic_setting() -> None:
    assert not torch.are_deterministic_algorithms_enabled()
    registry.capture("hidden_rows_unchecked")
    assert not torch.are_deterministic_algorithms_enabled()


def test_capture_of_a_callable_and_of_an_unknown_id() -> None:
    assert registry.capture(lambda: 1 / 0) == "ZeroDivisionError: division by zero"
    assert registry.capture(lambda: 3) == "(no error) 3"
    with pytest.raises(KeyError, match="known ids"):
        registry.capture("no_such_bug")


def test_expect_accepts_the_same_error_and_rejects_others(capsys: pytest.CaptureFixture[str]) -> None:
    with registry.expect("data_index_0dim"):
        int(torch.ones(3).sum().data[0])
    assert "invalid index of a 0-dim tensor" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="without error"), registry.expect("data_index_0dim"):
        int(torch.ones(3).sum().item())
    with pytest.raises(AssertionError, match="seqtag.article reproduces"), registry.expect("data_index_0dim"):
        raise ValueError("another error")


def test_walkthrough_patches_apply_in_order() -> None:
    """Each walk-through patch finds its text in the source the earlier fixes leave."""
    for bug_id in fixes.WALKTHROUGH:
        src = fixes.source_before(bug_id)
        for old, _ in REGISTRY[bug_id].patches:
            assert old in src, (bug_id, old)
    with pytest.raises(ValueError, match="not part of chapter 4"):
        fixes.source_before("ragged_batch")


def test_apply_fix_prints_the_diff_with_hunk_headers(capsys: pytest.CaptureFixture[str]) -> None:
    src = fixes.apply_fix(code.ARTICLE_BIEBER_LSTM, "lowercase_x")
    out = capsys.readouterr().out
    assert "-        X = torch.nn.utils.rnn.pack_padded_sequence(x," in out
    assert "+        X = torch.nn.utils.rnn.pack_padded_sequence(X," in out
    assert "pack_padded_sequence(x," not in src
    with pytest.raises(ValueError, match="not in this source"):
        fixes.apply_fix(src, "lowercase_x")
    with pytest.raises(ValueError, match="outside the class source"):
        fixes.apply_fix(src, "float_ids_into_embedding")
    # Two separate changes: two hunks, each with its @@ header.
    fixes.apply_fix(fixes.source_before("hparams"), "hparams")
    hunks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("@@")]
    assert len(hunks) == 2, hunks


def test_diff_lines_keep_separate_hunks_apart() -> None:
    lines = diff_lines("a\nb\nc\nd\ne\n", "A\nb\nc\nd\nE\n")
    assert lines == ["@@ -1 +1 @@", "-a", "+A", "@@ -5 +5 @@", "-e", "+E"]


def _fixed_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return code.define(fixes.fixed_article_source())(nb_layers=1, nb_lstm_units=8)


def test_fully_fixed_article_model_runs_on_any_batch() -> None:
    model = _fixed_model()
    X = torch.from_numpy(code.article_pad(code.X_IDS, 0)).long()
    Y = torch.from_numpy(code.article_pad(code.Y_IDS, 0)).long()
    loss = model.loss(model(X, [7, 2, 2]), Y, [7, 2, 2])
    assert torch.isfinite(loss)
    out = model(X[[1, 0, 2]], [2, 7, 2])  # unsorted
    assert out.shape == (3, 7, len(code.TAGS))
    assert model(X[1:], [2, 2]).shape == (2, 7, len(code.TAGS))  # padded past its longest
    torch.testing.assert_close(model(X, [7, 2, 2]), model(X, [7, 2, 2]))  # deterministic


def test_fully_fixed_article_model_equals_seqtag_tagger() -> None:
    model = _fixed_model()
    config = TaggerConfig(
        vocab_size=len(code.VOCAB), num_tags=len(code.TAGS), embedding_dim=3, hidden_size=8,
        bidirectional=False,
    )
    tagger = Tagger(config)
    renamed = {
        k.replace("word_embedding", "embedding").replace("lstm", "rnn").replace("hidden_to_tag", "output"): v
        for k, v in model.state_dict().items()
    }
    tagger.load_state_dict(renamed)
    X = torch.from_numpy(code.article_pad(code.X_IDS, 0)).long()
    lengths = torch.tensor([7, 2, 2])
    mask = torch.arange(7) < lengths[:, None]
    expected = model(X, [7, 2, 2])
    got = F.log_softmax(tagger(X, lengths), dim=-1)
    torch.testing.assert_close(got[mask], expected[mask])


# The loss the bug index recommends -------------------------------------------------------------

def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    tags = torch.from_numpy(code.article_pad(code.Y_IDS, 0)).long()
    mask = tags != 0
    logits = torch.randn(*tags.shape, len(code.TAGS))
    return logits, tags, mask


def test_masked_nll_fixed_equals_the_article_formula_on_finite_scores() -> None:
    logits, tags, mask = _batch()
    torch.testing.assert_close(
        fixes.masked_nll_fixed(logits, tags, mask), fixes.article_loss_fixed(logits.log_softmax(-1), tags)
    )
    torch.testing.assert_close(
        fixes.masked_nll_fixed(logits, tags, mask), F.cross_entropy(logits.view(-1, 6), tags.view(-1), ignore_index=0)
    )


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), float("-inf"), 1e4])
def test_masked_nll_fixed_is_safe_for_any_value_at_pads(garbage: float) -> None:
    logits, tags, mask = _batch()
    clean = logits.clone().requires_grad_(True)
    fixes.masked_nll_fixed(clean, tags, mask).backward()
    poisoned = logits.clone()
    poisoned[~mask] = garbage
    poisoned[1, 5, 2] = -garbage  # mixed signs in one padded row
    poisoned.requires_grad_(True)
    loss = fixes.masked_nll_fixed(poisoned, tags, mask)
    loss.backward()
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, fixes.masked_nll_fixed(logits, tags, mask))
    assert bool(torch.isfinite(poisoned.grad).all())
    assert bool((poisoned.grad[~mask] == 0).all())
    torch.testing.assert_close(poisoned.grad, clean.grad)


@pytest.mark.parametrize("garbage", [float("nan"), float("inf")])
def test_masking_by_multiplication_or_after_log_softmax_is_not_safe(garbage: float) -> None:
    """The counter-examples the fix must beat (so the test above can fail)."""
    logits, tags, mask = _batch()
    logits[1, 5] = garbage
    assert not torch.isfinite(fixes.article_loss_fixed(logits.log_softmax(-1), tags))
    scores = logits.clone().requires_grad_(True)
    F.cross_entropy(scores.view(-1, 6), tags.view(-1), ignore_index=0).backward()
    assert not bool(torch.isfinite(scores.grad).all())


def test_masked_nll_fixed_on_a_batch_without_real_tokens_and_bad_arguments() -> None:
    logits = torch.randn(2, 3, 6, requires_grad=True)
    tags = torch.zeros(2, 3, dtype=torch.long)
    loss = fixes.masked_nll_fixed(logits, tags, tags != 0)
    loss.backward()
    assert loss.item() == 0.0 and bool((logits.grad == 0).all())
    with pytest.raises(ValueError, match="mask must be bool"):
        fixes.masked_nll_fixed(logits, tags, (tags != 0).float())
    with pytest.raises(ValueError, match=r"need logits \(B, T, C\)"):
        fixes.masked_nll_fixed(logits[0], tags, tags != 0)


# The two tables --------------------------------------------------------------------------------

def test_two_tables_split_the_registry_and_count_from_their_rows() -> None:
    bugs, pitfalls = table.bug_table("bug"), table.bug_table("pitfall")
    assert {r.id for r in bugs} | {r.id for r in pitfalls} == set(REGISTRY)
    assert {r.id for r in bugs} == {b.id for b in REGISTRY.values() if b.kind == "bug"}
    # The examples are pitfalls, not bugs of the article's code.
    assert {"zero_length", "float_lengths", "lengths_2d", "ragged_batch"} <= {r.id for r in pitfalls}
    for rows in (bugs, pitfalls):
        c = table.counts(rows)
        assert c["rows"] == len(rows) == c["raise"] + c["silent"]
        assert sum(v for k, v in c.items() if k.startswith("chapter ")) == len(rows)
    assert table.counts(bugs)["lines"] == len({r.line for r in bugs}) < len(bugs)  # some lines hold two bugs
    assert table.counts(pitfalls)["lines"] == 0
    with pytest.raises(ValueError, match="one table per kind"):
        table.BugTable(bugs + pitfalls)


def test_annotated_listing_marks_every_cited_line() -> None:
    rows = table.bug_table("bug")
    text = table.annotated(code.ARTICLE_BIEBER_LSTM, "BieberLSTM", rows) + "\n" + table.annotated(
        code.ARTICLE_TRICK1, "trick 1", rows
    )
    marked = re.findall(r"# <- bug ([\d, ]+)$", text, flags=re.M)
    numbers = sorted(int(n) for m in marked for n in m.split(", "))
    assert numbers == list(range(1, len(rows) + 1))  # every bug marked once, on its line
    for i, r in enumerate(rows, 1):
        line = next(t for t in text.splitlines() if re.search(rf"# <- bug (\d+, )*{i}(, \d+)*$", t))
        assert r.line.strip() in line, (r.id, line)


def test_bug_table_and_markdown() -> None:
    for kind, width in (("bug", 6), ("pitfall", 5)):
        rows = table.bug_table(kind)
        chapters = [r.chapter for r in rows]
        assert chapters == sorted(chapters)  # chapter order
        text = repr(table.BugTable(rows))
        assert text == table.to_markdown(rows)
        lines = text.splitlines()
        assert len(lines) == len(rows) + 2
        # Every data row has exactly its columns (no unescaped pipe).
        for line in lines[2:]:
            assert len(re.split(r"(?<!\\)\|", line)) == width + 2, line
    assert "tensor.item<T>()" in repr(table.BugTable(table.bug_table("bug")))
    assert "(BieberLSTM, line " in repr(table.BugTable(table.bug_table("bug")))


def test_html_table_escapes_and_marks_code() -> None:
    rows = table.bug_table("bug")
    page = table.BugTable(rows)._repr_html_()
    assert page.count("<tr>") == len(rows) + 1  # header + one row per bug
    assert "tensor.item&lt;T&gt;()" in page  # escaped, not a tag
    assert "<code>&lt;PAD&gt;</code>" in page  # `<PAD>` in a fix becomes code
    for r in rows:  # every Markdown code span of titles and fixes became <code>
        assert "`" not in table._html_text(r.bug) + table._html_text(r.fix), r


def test_code_cell_survives_backticks_and_pipes() -> None:
    assert table._code_cell("use `a|b` here") == "`` use `a\\|b` here ``"


def test_show_code_is_markdown_with_the_same_text_as_repr() -> None:
    shown = show_code("x = 1\n\n", language="python")
    assert shown._repr_markdown_() == repr(shown) == "```python\nx = 1\n```"
