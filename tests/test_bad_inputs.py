"""Bad input to the tagger and the batching code gets a clear error (or works), never a crash deep in torch."""

from __future__ import annotations

import pytest
import torch

from seqtag.batching import TaggingDataset, check_lengths, collate, lengths_to_mask, pad_batch
from seqtag.models import Tagger, TaggerConfig, run_packed
from seqtag.vocab import Vocab

pytestmark = pytest.mark.bad_input


@pytest.fixture
def tagger() -> Tagger:
    torch.manual_seed(0)
    return Tagger(TaggerConfig(vocab_size=12, num_tags=4, embedding_dim=8, hidden_size=6)).eval()


def test_zero_length_sentence_names_it():
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        pad_batch([[1, 2], []])
    with pytest.raises(ValueError, match="sentence 1 has length 0"):
        check_lengths([3, 0])
    with pytest.raises(ValueError, match="sentence 0 is empty"):
        TaggingDataset([[]], None, Vocab(["a"]))


def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([])
    with pytest.raises(ValueError, match="empty batch"):
        collate([])
    with pytest.raises(ValueError, match="empty batch"):
        check_lengths(torch.tensor([], dtype=torch.long))


def test_float_lengths_are_refused_with_the_fix(tagger):
    words, _, _ = pad_batch([[2, 3], [4]])
    with pytest.raises(ValueError, match=r"use lengths.long\(\)"):
        tagger(words, torch.tensor([2.0, 1.0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to make a CUDA tensor")
def test_cuda_lengths_are_moved_to_the_cpu():
    assert check_lengths(torch.tensor([2, 1], device="cuda")).device.type == "cpu"


def test_lengths_on_another_device_type_are_brought_to_the_cpu():
    lens = check_lengths(torch.tensor([2, 1], dtype=torch.int32))
    assert lens.dtype == torch.int64 and lens.device.type == "cpu"


def test_unsorted_batch_gives_the_same_result_as_sorted(tagger):
    sents = [[2, 3], [4, 5, 6, 7], [8]]
    words, lengths, mask = pad_batch(sents)
    out = tagger(words, lengths)
    order = torch.argsort(lengths, descending=True)
    sorted_out = tagger(words[order], lengths[order])
    torch.testing.assert_close(out[order][mask[order]], sorted_out[mask[order]])


def test_lengths_that_do_not_match_the_padded_tensor(tagger):
    words, _, _ = pad_batch([[2, 3], [4]])
    with pytest.raises(ValueError, match="lengths do not match the padded batch"):
        tagger(words, torch.tensor([5, 1]))
    with pytest.raises(ValueError, match=r"1-D \(B,\)"):
        tagger(words, torch.tensor([[2, 1]]))
    with pytest.raises(ValueError, match="only 3 time steps"):
        lengths_to_mask([4], max_len=3)


def test_label_and_word_counts_must_match():
    words, tags = Vocab(["a", "b"]), Vocab(["X"], unk=False)
    with pytest.raises(ValueError, match="sentence 0: 2 words but 1 tags"):
        TaggingDataset([["a", "b"]], [["X"]], words, tags)
    with pytest.raises(ValueError, match="1 sentences but 2 tag sequences"):
        TaggingDataset([["a"]], [["X"], ["X"]], words, tags)
    with pytest.raises(ValueError, match="sentence 0: unknown token 'Y'"):
        TaggingDataset([["a"]], [["Y"]], words, tags)


def test_a_5000_token_sentence_runs(tagger):
    words = torch.randint(2, 12, (1, 5000))
    out = tagger(words, torch.tensor([5000]))
    assert out.shape == (1, 5000, 4) and torch.isfinite(out).all()


def test_unknown_words_and_characters_map_to_unk():
    words, chars = Vocab(["is"]), Vocab(list("isa"))
    ds = TaggingDataset([["is", "Ünïcödé", "🙂"]], None, words, chars=chars)
    item = ds[0]
    assert item["words"].tolist() == [2, 1, 1]
    assert item["chars"][2].tolist()[0] == 1 and item["chars"].shape == (3, 7)
    cfg = TaggerConfig(vocab_size=len(words), num_tags=3, char_vocab_size=len(chars), embedding_dim=4, hidden_size=4)
    batch = collate([item])
    assert Tagger(cfg)(batch.words, batch.lengths, batch.chars).shape == (1, 3, 3)


def test_float_ids_are_refused(tagger):
    with pytest.raises(ValueError, match="integer ids"):
        tagger(torch.ones(2, 3), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="holds floats"):
        pad_batch([torch.ones(3)])


def test_missing_chars_for_a_char_model():
    model = Tagger(TaggerConfig(vocab_size=5, num_tags=3, char_vocab_size=4))
    with pytest.raises(ValueError, match="pass chars"):
        model(torch.tensor([[2]]), torch.tensor([1]))


def test_run_packed_rejects_a_wrong_rnn_input_width():
    rnn = torch.nn.LSTM(4, 3, batch_first=True)
    # A packed input of the wrong width fails deep in a matmul ("mat1 and mat2 shapes...");
    # run_packed names the expected shape instead.
    with pytest.raises(ValueError, match=r"x must be \(B, T, 4\)"):
        run_packed(rnn, torch.randn(2, 3, 5), torch.tensor([3, 2]))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [(dict(vocab_size=1, num_tags=3), "vocab_size and num_tags must count <pad>"),
     (dict(vocab_size=5, num_tags=3, rnn="transformer"), "rnn must be 'lstm' or 'gru', got 'transformer'"),
     (dict(vocab_size=5, num_tags=3, hidden_size=0), "hidden_size must be >= 1, got 0"),
     (dict(vocab_size=5, num_tags=3, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
     (dict(vocab_size=5, num_tags=3, char_filters=0), "char_filters must be >= 1, got 0")],
)
def test_bad_configs_name_the_field(cfg, message):
    with pytest.raises(ValueError, match=message):
        TaggerConfig(**cfg)
