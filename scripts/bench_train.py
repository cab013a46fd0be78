"""Training speed of our Transformer vs. a plain PyTorch one (`torch.nn.Transformer`) of the same size.

Both train on the same real Multi30k batches (8k joint SentencePiece vocabulary, 4k-token length-bucketed
batches): forward, label-smoothed loss, backward, clipping, AdamW, their steps interleaved batch by batch (who goes
first alternates), with the heap setting `translate train` uses for both. Prints target tokens/s of each,
measured in this run, after warm-up steps.

    .venv/bin/python scripts/bench_train.py --steps 30
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from translate.data import read_parallel
from translate.encoded import EncodedCorpus
from translate.memory import keep_freed_memory
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


def tokens_per_second(models: dict[str, nn.Module], batches, steps: int, warmup: int) -> dict[str, float]:
    """Target tokens/s of each model, their steps interleaved on the same batches: whatever else the machine does
    meanwhile slows both alike, and neither always runs on a cold (or warm) allocator."""
    opts = {name: torch.optim.AdamW(m.parameters(), lr=5e-4, betas=(0.9, 0.98)) for name, m in models.items()}
    tokens, seconds = 0, dict.fromkeys(models, 0.0)
    for i, batch in enumerate(batches[: warmup + steps]):
        for name, model in models.items() if i % 2 else reversed(models.items()):  # alternate who goes first
            model.train()
            t0 = time.perf_counter()
            train_step(model, opts[name], batch, label_smoothing=0.1, clip_norm=1.0)
            if i >= warmup:
                seconds[name] += time.perf_counter() - t0
        if i >= warmup:
            tokens += batch.n_tgt_tokens
    return {name: tokens / s for name, s in seconds.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--steps", type=int, default=30, help="timed steps per model (default: 30)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--allocator", choices=("keep", "default"), default="keep",
                   help="keep: the heap setting `translate train` uses (translate/memory.py), for both models; "
                        "default: the C library's")
    args = p.parse_args()
    if args.allocator == "keep":
        keep_freed_memory()

    torch.manual_seed(0)
    pairs = read_parallel(args.data, "de", "en", "train")
    tok = train_tokenizers(pairs, vocab_size=8000)
    corpus = EncodedCorpus.from_pairs(pairs, tok)
    batches = list(corpus.batches(args.max_tokens, seed=1, epoch=0))
    ours = build_model("transformer", make_config("transformer", {"src_vocab": tok.src.vocab_size, "tgt_vocab": tok.tgt.vocab_size}))
    peer = PlainTransformer(tok.tgt.vocab_size)
    print(f"{torch.get_num_threads()} threads, {args.steps} steps of {args.max_tokens}-token batches after {args.warmup} "
          f"warm-up, steps interleaved, {args.allocator} allocator")
    models = {"translate transformer": ours, "torch.nn.Transformer": peer}
    results = tokens_per_second(models, batches, args.steps, args.warmup)
    for name, model in models.items():
        print(f"{name:24s} {count_parameters(model):>10,} params  {results[name]:8.0f} target tokens/s", flush=True)
    a, b = results.values()
    print(f"ours / peer: {a / b:.2f}x")


if __name__ == "__main__":
    main()
