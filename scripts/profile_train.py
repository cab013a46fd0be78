"""Where a training step's time goes on a GPU: the default Transformer on real Multi30k batches, as `translate train`
runs it (bf16 autocast, fused AdamW, asynchronous batch copies, optionally torch.compile).

Prints the wall time of a step (the host queueing work and waiting for none of it), the GPU's busy time per step,
the target tokens/s both give, and the kernels that take the most GPU time.

    python scripts/profile_train.py --data DATA --max-tokens 16384 [--compile]
(from the repository root with `PYTHONPATH=.` where the package is not installed, e.g. on a bare GPU machine)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from translate.data import read_parallel
from translate.encoded import EncodedCorpus
from translate.models import build_model, make_config
from translate.tokenizer import train_tokenizers
from translate.training import train_step

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--max-tokens", type=int, default=16384)
    p.add_argument("--steps", type=int, default=20, help="profiled steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model settings, e.g. d_model=512")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this profile is of a GPU step: no CUDA device here")
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True

    torch.manual_seed(0)
    pairs = read_parallel(args.data, "de", "en", "train")
    tok = train_tokenizers(pairs, vocab_size=8000)
    batches = list(EncodedCorpus.from_pairs(pairs, tok).batches(args.max_tokens, seed=1, epoch=0))
    settings = dict(kv.split("=", 1) for kv in args.set)
    model = build_model("transformer", make_config("transformer", {
        "src_vocab": tok.src.vocab_size, "tgt_vocab": tok.tgt.vocab_size, **settings}),
    ).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, fused=True)
    trained = torch.compile(model, dynamic=True) if args.compile else model
    amp = torch.autocast("cuda", dtype=torch.bfloat16)

    def run(batch_list) -> None:
        for batch in batch_list:
            train_step(trained, opt, batch.to(device), 0.1, 1.0, amp)

    batches = batches * (1 + (args.warmup + 2 * args.steps) // len(batches))
    warm, timed, profiled = (batches[: args.warmup], batches[args.warmup: args.warmup + args.steps],
                             batches[args.warmup + args.steps: args.warmup + 2 * args.steps])
    t0 = time.perf_counter()
    run(warm)
    torch.cuda.synchronize()
    print(f"warm-up: {args.warmup} steps in {time.perf_counter() - t0:.1f} s (compilation included)")

    t0 = time.perf_counter()
    run(timed)
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / args.steps
    tokens = sum(b.n_tgt_tokens for b in timed) / args.steps

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(profiled)
        torch.cuda.synchronize()
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    gpu = gpu_us / 1e6 / args.steps
    print(f"{args.max_tokens}-token batches ({tokens:,.0f} target tokens a step), compile={args.compile}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"step wall time {wall * 1e3:.1f} ms -> {tokens / wall:,.0f} target tokens/s; "
          f"GPU busy {gpu * 1e3:.1f} ms a step ({gpu / wall:.0%} of the wall time)")
    print(events.table(sort_by="self_cuda_time_total", row_limit=15, max_name_column_width=60))


if __name__ == "__main__":
    main()
