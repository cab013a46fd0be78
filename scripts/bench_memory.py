"""Training speed with glibc's default allocator settings vs. `translate.memory.keep_freed_memory()`.

Each (architecture, setting) pair trains in its own fresh process on the same real Multi30k batches (8k joint
SentencePiece vocabulary, 4k-token length-bucketed batches; forward, label-smoothed loss, backward, clipping,
AdamW) and reports target tokens/s after warm-up steps, plus the share of CPU time spent in the kernel. The peer
is the same code with the C library's defaults, which unmap every freed buffer over 32 MB.

    .venv/bin/python scripts/bench_memory.py --steps 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # the comparison's architectures, at their default sizes
    "transformer": ("transformer", {}),
    "lstm-attn-4h": ("lstm-attn", {"heads": 4, "bidirectional": True}),
    "gru": ("lstm", {"cell": "gru"}),
}


def child(args: argparse.Namespace) -> None:
    """Train `args.model` for warm-up + timed steps in this process; print one JSON line."""
    if args.keep:
        from translate.memory import keep_freed_memory

        assert keep_freed_memory(), "mallopt failed: not glibc?"
    import torch

    from translate.data import read_parallel
    from translate.encoded import EncodedCorpus
    from translate.models import build_model, make_config
    from translate.tokenizer import train_tokenizers
    from translate.training import train_step

    torch.manual_seed(0)
    pairs = read_parallel(args.data, "de", "en", "train")
    tok = train_tokenizers(pairs, vocab_size=8000)
    corpus = EncodedCorpus.from_pairs(pairs, tok)
    batches = list(corpus.batches(args.max_tokens, seed=1, epoch=0))[: args.warmup + args.steps]
    arch, overrides = MODELS[args.model]
    vocab = {"src_vocab": tok.src.vocab_size, "tgt_vocab": tok.tgt.vocab_size}
    model = build_model(arch, make_config(arch, {**vocab, **overrides}))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model.train()
    tokens, seconds, cpu = 0, 0.0, {"user": 0.0, "system": 0.0}
    for i, batch in enumerate(batches):
        t0, times0 = time.perf_counter(), os.times()
        train_step(model, opt, batch, label_smoothing=0.1, clip_norm=1.0)
        if i >= args.warmup:
            times1 = os.times()
            seconds += time.perf_counter() - t0
            tokens += batch.n_tgt_tokens
            cpu["user"] += times1.user - times0.user
            cpu["system"] += times1.system - times0.system
    print(json.dumps({"tok_s": tokens / seconds, "system_share": cpu["system"] / max(sum(cpu.values()), 1e-9)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=15, help="timed steps per run (default: 15)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--child", metavar="MODEL", dest="model", help=argparse.SUPPRESS)
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.model:
        return child(args)

    common = ["--data", args.data, "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--max-tokens", str(args.max_tokens)]
    print(f"{args.steps} steps of {args.max_tokens}-token batches after {args.warmup} warm-up, one process each")
    print(f"{'model':14s} {'glibc default':>22s} {'keep_freed_memory':>22s} {'speed-up':>9s}")
    for name in args.models:
        results = []
        for keep in (False, True):
            cmd = [sys.executable, __file__, "--child", name, *common] + (["--keep"] if keep else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        cells = [f"{r['tok_s']:7.0f} tok/s ({r['system_share']:4.0%} sys)" for r in results]
        print(f"{name:14s} {cells[0]:>22s} {cells[1]:>22s} {results[1]['tok_s'] / results[0]['tok_s']:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
