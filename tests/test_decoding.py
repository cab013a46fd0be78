"""Greedy and beam search through the Seq2Seq interface, on tiny models trained on real Multi30k pairs."""

import pytest
import torch

from tests.tiny import TINY, read_lines
from translate.data import make_src
from translate.decoding import SearchConfig, beam_search, greedy_search, max_output_lengths, search
from translate.translator import Translator


@pytest.fixture(scope="module")
def sources(multi30k):
    # Unseen validation sentences: the memorising models give varied, imperfect outputs on them.
    return read_lines(multi30k / "val.de.gz")[:24]


def encode(translator, texts):
    src = make_src(translator.tokenizers.src.encode(texts))
    return src, src != 0


@pytest.mark.parametrize("arch", list(TINY))
def test_beam_one_is_greedy(arch, trained_runs, sources):
    tr = Translator.load(trained_runs[arch][0], device="cpu")
    src, mask = encode(tr, sources)
    greedy = greedy_search(tr.model, src, mask, SearchConfig(beam_size=1), need_attention=True)
    beam = beam_search(tr.model, src, mask, SearchConfig(beam_size=1), need_attention=True)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    for b, g in zip(beam, greedy):
        assert b.score == pytest.approx(g.score, abs=1e-4)
        if g.attention is not None:
            torch.testing.assert_close(b.attention, g.attention)


@pytest.mark.parametrize("arch", list(TINY))
@pytest.mark.parametrize("beam", [1, 4])
def test_cached_decoding_equals_recomputing_the_prefix(arch, beam, trained_runs, sources):
    tr = Translator.load(trained_runs[arch][0], device="cpu")
    src, mask = encode(tr, sources)
    cfg = SearchConfig(beam_size=beam)
    cached = search(tr.model, src, mask, cfg, use_cache=True)
    recomputed = search(tr.model, src, mask, cfg, use_cache=False)
    assert [h.tokens for h in cached] == [h.tokens for h in recomputed]
    assert [h.score for h in cached] == pytest.approx([h.score for h in recomputed], abs=1e-3)


@pytest.mark.parametrize("arch", list(TINY))
def test_beam_finds_at_least_as_likely_outputs_and_batching_changes_nothing(arch, trained_runs, sources):
    tr = Translator.load(trained_runs[arch][0], device="cpu")
    src, mask = encode(tr, sources)
    greedy = search(tr.model, src, mask, SearchConfig(beam_size=1))
    beam = search(tr.model, src, mask, SearchConfig(beam_size=5, length_penalty=0.0))  # raw log-prob ranking
    # Beam search is not guaranteed to beat greedy on every sentence (the greedy path can fall out of the beam),
    # but it must find more likely outputs overall.
    assert sum(b.score >= g.score - 1e-4 for b, g in zip(beam, greedy)) >= 0.8 * len(sources)
    assert sum(b.score for b in beam) > sum(g.score for g in greedy)
    one_by_one = [search(tr.model, *encode(tr, [s]), SearchConfig(beam_size=5, length_penalty=0.0))[0] for s in sources[:6]]
    assert [h.tokens for h in one_by_one] == [h.tokens for h in beam[:6]]


def test_output_length_is_bounded(trained_runs):
    tr = Translator.load(trained_runs["lstm"][0], device="cpu")
    src, mask = encode(tr, ["Hund"])
    cfg = SearchConfig(beam_size=3, max_len_ratio=0.0, max_len_extra=2)
    assert max_output_lengths(mask, cfg) == [2]
    for beam in (1, 3):
        (hyp,) = search(tr.model, src, mask, SearchConfig(beam_size=beam, max_len_ratio=0.0, max_len_extra=2))
        assert len(hyp.tokens) <= 2


def test_attention_rows_match_output_tokens(trained_runs, sources):
    tr = Translator.load(trained_runs["lstm-attn"][0], device="cpu")
    for beam in (1, 3):
        for t in tr.translate(sources[:5], beam_size=beam, return_attention=True):
            assert len(t.attention) == len(t.tgt_tokens)
            assert all(len(row) == len(t.src_tokens) for row in t.attention)
            assert all(abs(sum(row) - 1) < 1e-4 for row in t.attention)
            assert t.src_tokens[-1] == "</s>"
