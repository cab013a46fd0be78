"""Decoding steps replayed from traces (translate/replay.py) give exactly what eager steps give, on seeded tiny models
of every variant, across batches of different shapes, and past the Transformer's position table."""

import copy

import pytest
import torch

from tests.unit.seeded import VARIANT_IDS, VARIANTS, small_model
from translate.data import make_src
from translate.decoding import SearchConfig, search
from translate.engine import TorchEngine
from translate.inference import prepare_for_inference

BATCHES = [  # different rows, source lengths and output lengths: one trace per kind of step serves them all
    [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16, 17, 18, 19, 20, 21], [22], [23, 24, 25, 26]],
    [[30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43], [44, 45, 46]],
    [[7]],
]


def _search_all(model, beam: int):
    out = []
    for sources in BATCHES:
        src = make_src(sources)
        out += [(h[0].tokens, h[0].score) for h in search(model, src, src != 0, SearchConfig(beam_size=beam))]
    return out


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("quantize", ["none", "int8", "bf16"])
def test_replayed_search_equals_eager_search(arch, settings, quantize):
    model = prepare_for_inference(small_model(arch, settings, seed=4), quantize)
    replay = model.step_replay
    replayed = {beam: _search_all(model, beam) for beam in (1, 3)}
    model.step_replay = None
    eager = {beam: _search_all(model, beam) for beam in (1, 3)}
    for beam in (1, 3):
        assert [tokens for tokens, _ in replayed[beam]] == [tokens for tokens, _ in eager[beam]]
        assert [score for _, score in replayed[beam]] == [score for _, score in eager[beam]]  # the same operations
    # Nearly every step was replayed, from a trace per kind of step, not per shape: greedy and beam search each have
    # a first step and later ones (a recurrent model's first step is like its others).
    steps = sum(len(sources) for sources in BATCHES)  # at least one step per sentence, twice
    assert replay.replayed >= steps
    assert 1 <= replay.kinds <= 4


@pytest.mark.parametrize("arch,settings", [VARIANTS[3], VARIANTS[5]], ids=[VARIANT_IDS[3], VARIANT_IDS[5]])
def test_beams_beyond_the_short_query_path_get_their_own_trace(arch, settings):
    """Beams of one source attend together as that many queries: past SHORT_QUERIES of them attention takes torch's
    fused kernel instead of the written-out form, a different path, so a trace recorded at beam 3 must not serve
    beam 20 (bf16, where the two forms round differently enough to change scores)."""
    model = prepare_for_inference(small_model(arch, settings, seed=4), "bf16")
    replayed = {beam: _search_all(model, beam) for beam in (3, 20)}
    model.step_replay = None
    for beam in (3, 20):
        assert replayed[beam] == _search_all(model, beam)


def test_transformer_replays_past_its_position_table():
    """The position table a trace holds is a constant: a step beyond it runs eagerly (growing the table), and later
    steps are replayed from a new trace with the new table."""
    model = prepare_for_inference(small_model("transformer", {}, seed=5))
    src = make_src([[5, 6, 7], [8, 9]])
    tgt = torch.tensor([[1], [1]])
    with torch.no_grad():
        state = eager_state = model.encode(src, src != 0)
        for t in range(300):
            out = model.step_replay.decode(tgt, state)
            expected = model.decode(tgt, eager_state)
            torch.testing.assert_close(out.logits, expected.logits, rtol=0, atol=1e-5)
            state, eager_state, tgt = out.state, expected.state, torch.tensor([[7 + t % 20], [9]])
    assert state["self_k0"].size(2) == 300
    assert model.step_replay.kinds == 3  # the first step and later ones with the 256-row table, later ones with 512


def test_a_prepared_model_copies_and_its_copy_replays(tmp_path):
    model = prepare_for_inference(small_model("lstm-attn", {"heads": 2}, seed=6))
    before = _search_all(model, 3)
    clone = copy.deepcopy(model)
    assert clone.step_replay.model is clone and clone.step_replay.kinds == 0
    assert _search_all(clone, 3) == before
    assert clone.step_replay.kinds >= 1


def test_no_replay_when_asked_or_when_gradients_are_on():
    model = prepare_for_inference(small_model("transformer", {}, seed=7), replay=False)
    assert model.step_replay is None
    model = prepare_for_inference(small_model("transformer", {}, seed=7))
    src = make_src([[5, 6, 7]])
    state = model.encode(src, src != 0)  # gradients on: steps run eagerly, a trace would drop the graph
    out = model.step_replay.decode(torch.tensor([[1]]), state)
    assert out.logits.requires_grad and model.step_replay.kinds == model.step_replay.replayed == 0


def test_an_inference_only_engine_finds_the_same_hypotheses():
    """`TorchEngine(inference_only=True)` (a Translator's) searches in torch's inference mode."""
    model = prepare_for_inference(small_model("transformer", {}, seed=8))
    cfg = SearchConfig(beam_size=3)
    sources = BATCHES[0] + BATCHES[1]
    plain = TorchEngine(model, torch.device("cpu")).search(sources, cfg, need_attention=True)
    inference = TorchEngine(model, torch.device("cpu"), inference_only=True).search(sources, cfg, need_attention=True)
    for a, b in zip(plain, inference):
        assert (a[0].tokens, a[0].score) == (b[0].tokens, b[0].score)
        torch.testing.assert_close(a[0].attention, b[0].attention)
    assert inference[0][0].attention.is_inference() and not plain[0][0].attention.is_inference()
