"""The Seq2Seq interface, checked once for every registered architecture and its variants."""

import pytest
import torch

from tests.unit.seeded import VARIANTS, small_model
from translate.data import make_batch
from translate.errors import ConfigError
from translate.models import ARCHS, build_model, count_parameters, make_config
from translate.models.attention import MultiHeadAttention, scaled_dot_product_attention


@pytest.fixture
def batch():
    return make_batch([([5, 6, 7, 8, 9], [10, 11, 12]), ([13, 14], [15, 16, 17, 18, 19, 20])])


def test_every_architecture_is_covered():
    assert set(ARCHS) == {arch for arch, _ in VARIANTS}


@pytest.mark.parametrize("arch,settings", VARIANTS)
def test_forward_shapes_and_attention(arch, settings, batch):
    model = small_model(arch, settings)
    logits = model(batch.src, batch.src_mask, batch.tgt_in)
    assert logits.shape == (2, batch.tgt_in.size(1), 60)
    out = model.decode(batch.tgt_in, model.encode(batch.src, batch.src_mask), need_attention=True)
    if arch == "lstm":
        assert out.attention is None
    else:
        att = out.attention  # (B, T, S): a distribution over real source positions only
        assert att.shape == (2, batch.tgt_in.size(1), batch.src.size(1))
        torch.testing.assert_close(att.sum(-1), torch.ones(2, batch.tgt_in.size(1)))
        assert att[1, :, 3:].abs().max() == 0  # padding of sentence 2 gets no attention
    assert count_parameters(model) > 0


@pytest.mark.parametrize("arch,settings", VARIANTS)
def test_incremental_decoding_equals_full_prefix(arch, settings, batch):
    model = small_model(arch, settings)
    full = model.decode(batch.tgt_in, model.encode(batch.src, batch.src_mask), need_attention=True)
    state = model.encode(batch.src, batch.src_mask)
    steps, attn = [], []
    for t in range(batch.tgt_in.size(1)):
        out = model.decode(batch.tgt_in[:, t : t + 1], state, need_attention=True)
        state = out.state
        steps.append(out.logits)
        attn.append(out.attention)
    torch.testing.assert_close(torch.cat(steps, 1), full.logits, atol=1e-5, rtol=1e-4)
    if full.attention is not None:
        torch.testing.assert_close(torch.cat(attn, 1), full.attention, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch,settings", VARIANTS)
def test_reorder_state_selects_rows(arch, settings, batch):
    model = small_model(arch, settings)
    state = model.encode(batch.src, batch.src_mask)
    swapped = model.reorder_state(state, torch.tensor([1, 0, 1]))
    first = model.decode(batch.tgt_in[:, :1], state).logits
    again = model.decode(batch.tgt_in[[1, 0, 1], :1], swapped).logits
    torch.testing.assert_close(again, first[[1, 0, 1]])


@pytest.mark.parametrize("arch,settings", VARIANTS)
def test_padding_does_not_change_a_sentence(arch, settings):
    model = small_model(arch, settings)
    alone = make_batch([([13, 14], [15, 16])])
    padded = make_batch([([13, 14], [15, 16]), ([5, 6, 7, 8, 9, 10, 11], [12])])
    a = model(alone.src, alone.src_mask, alone.tgt_in)[0]
    b = model(padded.src, padded.src_mask, padded.tgt_in)[0, : alone.tgt_in.size(1)]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_handwritten_attention_matches_torch():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8)
    mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 4:] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert weights[1, ..., 4:].abs().max() == 0
    mha = MultiHeadAttention(32, 4).eval()
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    with_weights, w = mha(x, mem, mask, need_weights=True)
    fused, none = mha(x, mem, mask, need_weights=False)
    torch.testing.assert_close(with_weights, fused)
    assert w.shape == (2, 4, 5, 7) and none is None


@pytest.mark.parametrize(
    "arch,settings,message",
    [
        ("lstm", {"heads": 2}, "heads must be 0"),
        ("lstm-attn", {"heads": 0}, "needs heads >= 1"),
        ("lstm", {"cell": "tcn"}, "cell must be one of"),
        ("transformer", {"heads": 5}, "divide d_model"),
        ("transformer", {"hiden": 3}, "unknown transformer model setting"),
        ("transformer", {"d_model": "big"}, "must be int"),
        ("lstm", {"emb_dim": 64, "hidden": 32}, "tie_embeddings"),
        ("cnn", {}, "unknown architecture"),
    ],
)
def test_invalid_configs_are_rejected_clearly(arch, settings, message):
    with pytest.raises(ConfigError, match=message):
        make_config(arch, settings)


def test_defaults_are_sized_as_documented():
    t = make_config("transformer")
    assert (t.d_model, t.enc_layers, t.dec_layers, t.heads, t.ffn) == (256, 3, 3, 4, 1024)
    r = make_config("lstm")
    assert (r.emb_dim, r.hidden, r.heads, r.bidirectional) == (256, 256, 0, False)
    a = make_config("lstm-attn")
    assert (a.hidden, a.heads, a.bidirectional) == (256, 4, True)
    assert count_parameters(build_model("transformer", t)) == 7_578_624  # 8k joint vocabulary, tied embeddings


@pytest.mark.parametrize("arch,settings", [v for v in VARIANTS if v[0] != "transformer"] + [("lstm", {"layers": 2, "bidirectional": True})])
def test_unrolled_recurrent_encoder_equals_the_fused_one(arch, settings, batch):
    from translate.models.lstm import encode_unrolled

    model = small_model(arch, settings)
    fused = model.encode(batch.src, batch.src_mask)
    unrolled, top = encode_unrolled(model, batch.src, batch.src_mask)
    assert fused.keys() == unrolled.keys()
    for k in fused:
        torch.testing.assert_close(unrolled[k].float(), fused[k].float(), atol=1e-5, rtol=1e-4, msg=k)
    assert len(top) == (2 if model.cfg.bidirectional else 1) and len(top[0]) == batch.src.size(1)


@pytest.mark.parametrize("arch,settings", VARIANTS)
def test_expanded_state_decodes_like_copied_rows(arch, settings, batch):
    """Beams that share their source's entries (source_keys) decode as rows that each hold a copy."""
    model = small_model(arch, settings)
    state = model.encode(batch.src, batch.src_mask)
    shared = model.expand_state(state, 3)
    copied = {k: v.repeat_interleave(3, dim=0) for k, v in state.items()}
    tgt = batch.tgt_in.repeat_interleave(3, dim=0)[:, :2]
    a = model.decode(tgt, shared, need_attention=True)
    b = model.decode(tgt, copied, need_attention=True)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-4)
    if b.attention is not None:
        torch.testing.assert_close(a.attention, b.attention, atol=1e-5, rtol=1e-4)
    # Keeping rows 3..5 (source 1) and then 0..2 (source 0) reorders the sources' own entries too.
    rows = torch.tensor([3, 4, 5, 0, 1, 2])
    again = model.decode(tgt[rows, -1:], model.reorder_state(a.state, rows)).logits
    torch.testing.assert_close(again, model.decode(tgt[:, -1:], b.state).logits[rows], atol=1e-5, rtol=1e-4)


def test_bidirectional_lstm_cell_states_get_their_own_unsquashed_bridge():
    """A bidirectional LSTM's final cell states reach the decoder through a linear bridge of their own ("own"); the
    earlier choice ("shared-tanh": the hidden state's bridge and tanh) stays loadable for older checkpoints."""
    from translate.models import saved_config

    torch.manual_seed(0)
    settings = {"src_vocab": 50, "tgt_vocab": 50, "emb_dim": 16, "hidden": 16, "layers": 1, "bidirectional": True}
    own = build_model("lstm", make_config("lstm", settings))
    final = torch.randn(2, 3, 16) * 20  # (L*dirs, B, H): cell states can grow beyond (-1, 1)
    with torch.no_grad():
        c = own._bridge(final, cell=True)
        assert torch.allclose(c, own.cell_bridge(final.view(1, 2, 3, 16).permute(2, 0, 1, 3).reshape(3, 1, 32)))
        assert c.abs().max() > 1 and own._bridge(final).abs().max() <= 1  # hidden states stay squashed
    old = make_config("lstm", saved_config("lstm", {**settings, "heads": 0}))  # a config saved before the setting
    assert old.cell_bridge == "shared-tanh"
    legacy = build_model("lstm", old)
    assert legacy.cell_bridge is None and set(own.state_dict()) - set(legacy.state_dict()) == {
        "cell_bridge.weight", "cell_bridge.bias"}
    with torch.no_grad():
        assert torch.equal(legacy._bridge(final, cell=True), legacy._bridge(final))  # the old rule, unchanged
    gru = build_model("lstm", make_config("lstm", {**settings, "cell": "gru"}))
    assert gru.cell_bridge is None  # no cell state, nothing to bridge
