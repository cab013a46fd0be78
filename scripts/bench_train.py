"""Training speed of our Transformer vs. a plain PyTorch one (`torch.nn.Transformer`) of the same size.

Both train on the same real Multi30k batches (8k joint SentencePiece vocabulary, 4k-token length-bucketed
batches): forward, label-smoothed loss, backward, clipping, AdamW. Prints target tokens/s of each, measured in
this run, after warm-up steps.

    .venv/bin/python scripts/bench_train.py --steps 30
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from translate.data import EncodedCorpus, read_parallel
from translate.models import build_model, count_parameters, make_config
from translate.tokenizer import PAD_ID, train_tokenizers
from translate.training import train_step

ROOT = Path(__file__).resolve().parents[1]


class PlainTransformer(nn.Module):
    """The peer: torch.nn.Transformer with the same sizes, tied embeddings and sinusoidal positions."""

    def __init__(self, vocab: int, d: int = 256, heads: int = 4, ffn: int = 1024, layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self.d = d
        self.embedding = nn.Embedding(vocab, d, padding_idx=PAD_ID)
        self.core = nn.Transformer(d, heads, layers, layers, ffn, dropout, batch_first=True, norm_first=True)
        self.core.encoder.enable_nested_tensor = False  # padding masks vary per batch; keep dense tensors
        self.out = nn.Linear(d, vocab, bias=False)
        self.out.weight = self.embedding.weight
        self.drop = nn.Dropout(dropout)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        T = ids.size(1)
        pos = torch.arange(T, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, self.d, 2, dtype=torch.float32) * (-math.log(10000.0) / self.d))
        pe = torch.zeros(T, self.d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return self.drop(self.embedding(ids) * math.sqrt(self.d) + pe)

    def forward(self, src, src_mask, tgt_in):
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1), dtype=torch.bool)
        h = self.core(
            self.embed(src), self.embed(tgt_in), tgt_mask=causal, src_key_padding_mask=~src_mask,
            memory_key_padding_mask=~src_mask, tgt_is_causal=True,
        )
        return self.out(h)


def tokens_per_second(model: nn.Module, batches, steps: int, warmup: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98))
    model.train()
    tokens, seconds = 0, 0.0
    for i, batch in enumerate(batches[: warmup + steps]):
        t0 = time.perf_counter()
        train_step(model, opt, batch, label_smoothing=0.1, clip_norm=1.0)
        if i >= warmup:
            seconds += time.perf_counter() - t0
            tokens += batch.n_tgt_tokens
    return tokens / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--steps", type=int, default=30, help="timed steps per model (default: 30)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=4096)
    args = p.parse_args()

    torch.manual_seed(0)
    pairs = read_parallel(args.data, "de", "en", "train")
    tok = train_tokenizers(pairs, vocab_size=8000)
    corpus = EncodedCorpus.from_pairs(pairs, tok)
    batches = list(corpus.batches(args.max_tokens, seed=1, epoch=0))
    ours = build_model("transformer", make_config("transformer", {"src_vocab": tok.src.vocab_size, "tgt_vocab": tok.tgt.vocab_size}))
    peer = PlainTransformer(tok.tgt.vocab_size)
    print(f"{torch.get_num_threads()} threads, {args.steps} steps of {args.max_tokens}-token batches after {args.warmup} warm-up")
    results = {}
    for name, model in [("translate transformer", ours), ("torch.nn.Transformer", peer)]:
        results[name] = tokens_per_second(model, batches, args.steps, args.warmup)
        print(f"{name:24s} {count_parameters(model):>10,} params  {results[name]:8.0f} target tokens/s", flush=True)
    a, b = results.values()
    print(f"ours / peer: {a / b:.2f}x")


if __name__ == "__main__":
    main()
