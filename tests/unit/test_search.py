"""Greedy and beam search on seeded, untrained tiny models: exactness properties and agreement with the slow
reference search (tests/unit/reference_search.py), no corpus needed."""

import pytest
import torch

from tests.unit import reference_search as reference
from tests.unit.seeded import VARIANT_IDS, VARIANTS, small_model
from translate.data import make_src
from translate.decoding import SearchConfig, beam_search, greedy_search, max_output_lengths, search
from translate.inference import prepare_for_inference

SOURCES = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16, 17, 18, 19, 20, 21], [22], [23, 24, 25, 26]]


@pytest.fixture(scope="module")
def src():
    src = make_src(SOURCES)
    return src, src != 0


def best(nbest_lists):
    return [hyps[0] for hyps in nbest_lists]


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
def test_beam_one_is_greedy(arch, settings, src):
    model = small_model(arch, settings)
    greedy = best(greedy_search(model, *src, SearchConfig(beam_size=1), need_attention=True))
    beam = best(beam_search(model, *src, SearchConfig(beam_size=1), need_attention=True))
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    for b, g in zip(beam, greedy):
        assert b.score == pytest.approx(g.score, abs=1e-4)
        if g.attention is not None:
            torch.testing.assert_close(b.attention, g.attention)
    assert (greedy[0].attention is None) == (arch == "lstm")


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("beam", [1, 3])
def test_cache_equals_recompute(arch, settings, beam, src):
    model = small_model(arch, settings)
    cached = best(search(model, *src, SearchConfig(beam_size=beam), use_cache=True))
    recomputed = best(search(model, *src, SearchConfig(beam_size=beam), use_cache=False))
    assert [h.tokens for h in cached] == [h.tokens for h in recomputed]
    assert [h.score for h in cached] == pytest.approx([h.score for h in recomputed], abs=1e-4)


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("beam,lp", [(1, 1.0), (4, 0.0), (4, 1.0), (5, 1.5)])
def test_same_hypotheses_as_the_reference_search(arch, settings, beam, lp, src):
    """The tensor bookkeeping finds what the per-sentence Python loop found: same tokens and score, attention too."""
    model = small_model(arch, settings, seed=1)
    cfg = SearchConfig(beam_size=beam, length_penalty=lp)
    fast = best(search(model, *src, cfg, need_attention=True))
    slow = reference.search(model, *src, reference.SearchConfig(beam_size=beam, length_penalty=lp), need_attention=True)
    assert [h.tokens for h in fast] == [h.tokens for h in slow]
    assert [h.score for h in fast] == pytest.approx([h.score for h in slow], abs=1e-4)
    for f, s in zip(fast, slow):
        if s.attention is not None:
            torch.testing.assert_close(f.attention, s.attention, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
def test_batching_changes_nothing_and_scores_are_log_probabilities(arch, settings, src):
    model = small_model(arch, settings)
    cfg = SearchConfig(beam_size=4, length_penalty=0.0)
    batched = best(search(model, *src, cfg))
    for i, ids in enumerate(SOURCES):
        alone = make_src([ids])
        (hyp,) = best(search(model, alone, alone != 0, cfg))
        assert hyp.tokens == batched[i].tokens
        assert hyp.score == pytest.approx(batched[i].score, abs=1e-4)
    assert all(h.score <= 0 for h in batched)


def test_n_best_lists_are_distinct_and_ranked(src):
    model = small_model("transformer", {}, seed=3)
    cfg = SearchConfig(beam_size=5, length_penalty=1.0, n_best=3)
    for hyps in search(model, *src, cfg, need_attention=True):
        assert len(hyps) == 3
        norms = [h.score / (len(h.tokens) + 1) for h in hyps]  # every one ended with EOS here
        assert norms == sorted(norms, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 3
        assert all(h.attention.shape[0] == len(h.tokens) for h in hyps)
    with pytest.raises(ValueError, match="n_best"):
        SearchConfig(beam_size=2, n_best=3)


def test_output_length_is_bounded(src):
    model = small_model("lstm", {})
    cfg = SearchConfig(beam_size=3, max_len_ratio=0.0, max_len_extra=2)
    assert max_output_lengths(src[1], cfg).tolist() == [2] * len(SOURCES)
    for beam in (1, 3):
        for hyp in best(search(model, *src, SearchConfig(beam_size=beam, max_len_ratio=0.0, max_len_extra=2))):
            assert len(hyp.tokens) <= 2


@pytest.mark.parametrize("beam,tokens,scores", [
    (1, [[26, 26, 26, 26], [26, 26, 26, 26], [39, 39, 39, 39], [57, 57, 57, 57], [39, 39, 39, 39]],
     [-4.494, -4.875, -5.525, -7.975, -5.384]),
    (5, [[26, 26, 26, 26], [26, 26, 26, 26], [39, 39, 39, 39], [47, 47, 47, 47], [26, 26, 26, 26]],
     [-4.494, -4.875, -5.525, -5.392, -4.629]),
])
def test_pinned_outputs_of_a_seeded_transformer(beam, tokens, scores, src):
    """Expected ids and scores of one seeded untrained model (torch 2.13, CPU float32): beam 5 finds the more
    likely outputs that greedy search misses on the last two sources."""
    model = small_model("transformer", {}, seed=3)
    hyps = best(search(model, *src, SearchConfig(beam_size=beam, max_len_ratio=0.0, max_len_extra=4)))
    assert [h.tokens for h in hyps] == tokens
    assert [h.score for h in hyps] == pytest.approx(scores, abs=2e-3)


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
def test_packed_projections_change_nothing(arch, settings, src):
    plain = small_model(arch, settings, seed=2)
    packed = prepare_for_inference(small_model(arch, settings, seed=2))
    cfg = SearchConfig(beam_size=3)
    a, b = best(search(plain, *src, cfg)), best(search(packed, *src, cfg))
    assert [h.tokens for h in a] == [h.tokens for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
def test_int8_model_scores_like_float(arch, settings, src):
    """int8 replaces every linear layer and every LSTM/GRU layer, and the next-token log-probabilities stay close."""
    from torch import nn

    plain = small_model(arch, settings, seed=3)
    quantized = prepare_for_inference(small_model(arch, settings, seed=3), "int8")
    float_layers = [type(m).__name__ for m in quantized.modules() if type(m) in (nn.Linear, nn.LSTM, nn.GRU)]
    assert float_layers == []
    tgt = torch.tensor([[1, 7, 9, 11]] * src[0].size(0))
    with torch.no_grad():
        expected = plain.decode(tgt, plain.encode(*src)).logits.log_softmax(-1)
        got = quantized.decode(tgt, quantized.encode(*src)).logits.log_softmax(-1)
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.9


@pytest.mark.parametrize("shape,k", [((7, 8000), 10), ((3, 8000), 1), ((5, 8192), 6), ((4, 300), 3), ((2, 64 * 40), 10)])
def test_block_top_k_is_torch_topk(shape, k):
    from translate.decoding import top_k

    torch.manual_seed(0)
    x = torch.randn(shape)
    x[0, 100:200] = 5.0  # ties inside one block and across blocks: values must still agree
    values, index = top_k(x, k)
    expected = x.topk(k, dim=-1)
    torch.testing.assert_close(values, expected.values)
    torch.testing.assert_close(x.gather(1, index), expected.values)


def test_int8_linear_is_close_to_float():
    from torch import nn

    from translate.inference import Int8Linear

    torch.manual_seed(0)
    linear = nn.Linear(64, 300)
    x = torch.randn(7, 5, 64)
    q = Int8Linear(linear)
    with torch.no_grad():
        expected, got = linear(x), q(x)
    assert got.shape == expected.shape == (7, 5, 300)
    assert (got - expected).abs().max() < 0.02 * expected.abs().max()


def test_a_failed_search_leaves_the_workers_ready_for_the_next():
    """A batch that fails in a worker raises in the caller; the next search gets its own results, not stale ones."""
    from translate.engine import TorchEngine

    model = small_model("transformer", {}, seed=4)
    cfg = SearchConfig(beam_size=2)
    good = [[5, 6, 7, 8]] * 30 + [[9, 10]] * 30 + [[11, 12, 13, 14, 15, 16]] * 30
    engine = TorchEngine(model, torch.device("cpu"), workers=2)
    with pytest.raises((IndexError, RuntimeError)):
        engine.search(good + [[10_000] * 12], cfg, False, max_tokens=64)  # beyond the vocabulary: the first batch fails
    expected = TorchEngine(model, torch.device("cpu"), workers=1).search(good, cfg, False, max_tokens=64)
    got = engine.search(good, cfg, False, max_tokens=64)
    assert [h[0].tokens for h in got] == [h[0].tokens for h in expected]


def test_bf16_on_a_cpu_without_bfloat16_instructions_says_it_is_slow(monkeypatch, caplog):
    """Without AVX-512 BF16 or AMX, torch emulates bfloat16: measured several times slower than float32, which is the
    opposite of what the option is for, so preparing such a model warns (and still works)."""
    import logging

    from translate import inference

    src = make_src(SOURCES[:2])
    for native, warned in ((False, True), (True, False)):
        monkeypatch.setattr(inference, "native_bf16", lambda: native)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="translate.inference"):
            model = prepare_for_inference(small_model("transformer", {}, seed=2), "bf16")
        assert any("no bfloat16 instructions" in r.getMessage() for r in caplog.records) == warned
        assert len(search(model, src, src != 0, SearchConfig(beam_size=2))) == 2
    monkeypatch.undo()
    assert isinstance(inference.native_bf16(), bool)
