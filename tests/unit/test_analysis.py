"""Gradient flow with a known answer, and the vanishing-gradient picture on a real (tiny) recurrent model."""

import math

import torch
from torch import nn

from translate.analysis import gradient_norms_by_distance
from translate.data import make_batch
from translate.models import build_model, make_config
from translate.models.base import DecoderOutput, Seq2Seq


class Probe(Seq2Seq):
    """memory = zeros; logits at every target step = sum_s 0.5**(distance of s from the end) * memory_s.

    With zero logits the softmax is uniform, so each target token puts gradient (p - onehot) * 0.5**d on h_s;
    with every target token the same id, the norms add: ||dL/dh_s|| = T * 0.5**d * sqrt((V - 1) / V).
    """

    V = 4

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(100, self.V)
        nn.init.zeros_(self.table.weight)

    def encode(self, src, src_mask):
        return {"memory": self.table(src), "src_mask": src_mask}

    def decode(self, tgt, state, need_attention=False):
        mask = state["src_mask"]
        lengths = mask.sum(1, keepdim=True)  # (B, 1)
        distance = lengths - 1 - torch.arange(mask.size(1))[None, :]  # (B, S)
        weights = torch.where(mask, 0.5 ** distance.clamp(min=0).float(), torch.zeros(()))  # (B, S)
        pooled = (weights[:, :, None] * state["memory"]).sum(1)  # (B, V)
        return DecoderOutput(pooled[:, None, :].expand(-1, tgt.size(1), -1), state, None)


def test_known_answer():
    # Two sentences of different lengths; targets: 3 tokens of id 1 (+ EOS id 3 appended by make_batch).
    batch = make_batch([([5, 6, 7, 8], [1, 1, 1]), ([9, 10], [1, 1, 1])])
    norms = gradient_norms_by_distance(Probe(), [batch], max_distance=6)
    # T = 4 targets (3 + EOS), but EOS is a different class: sum of (p - y_t) over t is not T*(p - y).
    p = torch.full((Probe.V,), 1 / Probe.V)
    total = sum(p - nn.functional.one_hot(torch.tensor(y), Probe.V).float() for y in [1, 1, 1, 3])
    expected = [float(total.norm()) * 0.5**d for d in range(7)]
    # distances 0..2 occur in both sentences (lengths 5 and 3 with EOS), 3..4 only in the first
    assert norms[:5] == [pytest_approx(e) for e in expected[:5]]
    assert norms[5:] == [None, None]


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-6)


def test_recurrent_encoder_without_attention_vanishes_more_than_with():
    torch.manual_seed(0)
    src = [list(range(5, 5 + n)) for n in (20, 18, 22, 19)]
    batch = make_batch([(s, [7, 8, 9, 10]) for s in src])
    small = {"emb_dim": 32, "hidden": 32, "layers": 1, "dropout": 0.0, "src_vocab": 64, "tgt_vocab": 64}
    plain = build_model("lstm", make_config("lstm", {**small, "cell": "rnn"}))
    attn = build_model("lstm-attn", make_config("lstm-attn", {**small, "heads": 1, "cell": "rnn", "bidirectional": False}))
    g_plain = gradient_norms_by_distance(plain, [batch], max_distance=17)
    g_attn = gradient_norms_by_distance(attn, [batch], max_distance=17)
    assert all(v is not None and math.isfinite(v) for v in g_plain + g_attn)
    # Without attention, early positions get far less gradient than the last one; attention keeps them reachable.
    assert g_plain[17] / g_plain[0] < g_attn[17] / g_attn[0]
    assert plain.training  # the measurement restores the module's mode
