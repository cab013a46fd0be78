"""Data-free test material: seeded, untrained tiny models of every registered variant, and a SentencePiece model
trained on generated sentences. Nothing here reads a corpus."""

from __future__ import annotations

import random

import torch

from translate.models import build_model, make_config
from translate.tokenizer import TokenizerPair, train_tokenizers

VARIANTS = [
    ("lstm", {}),
    ("lstm", {"bidirectional": True, "cell": "gru"}),
    ("lstm", {"bidirectional": True, "cell": "rnn"}),
    ("lstm-attn", {"heads": 1}),
    ("lstm-attn", {"heads": 4, "cell": "gru", "bidirectional": False}),
    ("transformer", {}),
    ("transformer", {"joint_vocab": False, "tie_embeddings": False}),
]
SMALL = {"lstm": {"emb_dim": 32, "hidden": 32}, "lstm-attn": {"emb_dim": 32, "hidden": 32},
         "transformer": {"d_model": 32, "ffn": 64, "heads": 4}}
VARIANT_IDS = [f"{arch}-{'-'.join(f'{k}={v}' for k, v in s.items()) or 'default'}" for arch, s in VARIANTS]

WORDS = {
    "de": ["ein", "der", "die", "hund", "katze", "mann", "frau", "kind", "läuft", "spielt", "sitzt", "auf", "im",
           "park", "garten", "wiese", "schnell", "rot", "blau", "groß"],
    "en": ["a", "the", "dog", "cat", "man", "woman", "child", "runs", "plays", "sits", "on", "in", "park",
           "garden", "meadow", "quickly", "red", "blue", "big", "small"],
}


def small_model(arch: str, settings: dict, seed: int = 0, src_vocab: int = 50, tgt_vocab: int = 60):
    """An untrained model, seeded, in eval mode."""
    torch.manual_seed(seed)
    cfg = make_config(arch, {**SMALL[arch], "src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "joint_vocab": False, **settings})
    return build_model(arch, cfg).eval()


def sentences(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Generated (de, en) pairs of 3-12 words: enough text for a small SentencePiece model."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(3, 12)
        idx = [rng.randrange(len(WORDS["de"])) for _ in range(length)]
        out.append((" ".join(WORDS["de"][i] for i in idx).capitalize() + ".",
                    " ".join(WORDS["en"][i] for i in idx).capitalize() + "."))
    return out


def tokenizers(vocab_size: int = 400) -> TokenizerPair:
    return train_tokenizers(sentences(400), vocab_size=vocab_size)
