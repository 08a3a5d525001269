"""seqtag.tokenize: raw English -> EWT tokens (NLTK plus our rules), and its measured agreement."""

from __future__ import annotations

import pytest

from seqtag.tokenize import library_tokenize, measure_agreement, token_spans, tokenize
from tests.test_data import HAVE_EWT, SHARED


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("I don't think it's too late.", ["I", "do", "n't", "think", "it", "'s", "too", "late", "."]),
        ("We're sure they'll say you've, he'd and I'm", ["We", "'re", "sure", "they", "'ll", "say", "you", "'ve",
                                                          ",", "he", "'d", "and", "I", "'m"]),
        ("I don’t know, it’s fine", ["I", "do", "n’t", "know", ",", "it", "’s", "fine"]),  # typographic
        ('He said "hi" (twice).', ["He", "said", '"', "hi", '"', "(", "twice", ")", "."]),  # quotes kept as typed
        ("It costs $3.50, i.e. 3.5 times more.", ["It", "costs", "$", "3.50", ",", "i.e.", "3.5", "times", "more", "."]),
        ("Now at 83.5.", ["Now", "at", "83.5", "."]),
        ("See http://www.x.org/a/b.asp?id=97508. Then", ["See", "http://www.x.org/a/b.asp?id=97508", ".", "Then"]),
        ("Mail joe.doe@example.com or Olsen@ENRON!", ["Mail", "joe.doe@example.com", "or", "Olsen@ENRON", "!"]),
        ("Great :) really :-( see you ;)", ["Great", ":)", "really", ":-(", "see", "you", ";)"]),
        ("an opt-out and an anti-war e-mail", ["an", "opt", "-", "out", "and", "an", "anti-war", "e-mail"]),
        ("Call 713-853-1234 -- now!!", ["Call", "713-853-1234", "--", "now", "!!"]),
        ("USD/DM and/or w/ L/C", ["USD", "/", "DM", "and", "/", "or", "w/", "L/C"]),
        ("   ", []),
        # two sentences on one line: NLTK alone splits only the last period
        ("It's too late. Mr. Smith of Acme Inc. left the U.S. in 2005. No. 5 won.",
         ["It", "'s", "too", "late", ".", "Mr.", "Smith", "of", "Acme", "Inc.", "left", "the", "U.S.", "in", "2005",
          ".", "No.", "5", "won", "."]),
        ("I said no. J. Doe agreed", ["I", "said", "no", ".", "J.", "Doe", "agreed"]),
    ],
)
def test_tokens_follow_ewt(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_every_token_is_a_substring_at_its_span() -> None:
    text = "I don’t think “it's” 5,000-strong, see www.x.com :)"
    spans = token_spans(text)
    assert [text[a:b] for a, b in spans] == tokenize(text)
    assert all(b > a for a, b in spans) and spans == sorted(spans)
    assert all(not text[b1:a2].strip() for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))


def test_our_rules_fix_what_the_library_misses() -> None:
    # The library alone cuts URLs, e-mails and emoticons, and leaves hyphens alone.
    assert library_tokenize("see http://x.org/a?b=1 :)") != tokenize("see http://x.org/a?b=1 :)")
    pairs = [
        ("I don't know.", ["I", "do", "n't", "know", "."]),
        ("Write to joe@x.com :)", ["Write", "to", "joe@x.com", ":)"]),
        ("an opt-out clause", ["an", "opt", "-", "out", "clause"]),
        ("Argghhh!", ["Argghhh!"]),  # a name EWT keeps whole: wrong for both
    ]
    a = measure_agreement(pairs)
    assert (a.sentences, a.library, a.seqtag) == (4, 0.25, 0.75)
    assert a.library_name.startswith("NLTK ") and a.examples == (("Argghhh!", ("Argghhh!",), ("Argghhh", "!")),)


@pytest.mark.bad_input
def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        tokenize(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no sentence to measure"):
        measure_agreement([])


@pytest.mark.skipif(not HAVE_EWT, reason="UD English EWT not available here")
def test_agreement_with_ewt_test_beats_the_library_alone() -> None:
    a = measure_agreement(data_dir=SHARED)
    assert a.sentences == 2077
    assert 0.75 < a.library < a.seqtag  # the rules must help, on the treebank's own text
    assert a.seqtag > 0.9


@pytest.mark.bad_input
def test_without_nltk_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from seqtag import tokenize as module

    monkeypatch.setitem(sys.modules, "nltk.tokenize", None)  # makes the import fail
    module._library.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'seqtag\[tokenize\]'"):
            tokenize("I don't know.")
    finally:
        module._library.cache_clear()


def test_the_docstring_examples_hold() -> None:
    import doctest

    import seqtag.tokenize

    assert doctest.testmod(seqtag.tokenize).failed == 0
