"""Where decoding time goes: torch.profiler's operator table for one single-threaded worker's search.

    .venv/bin/python scripts/profile_decode.py runs/transformer-de-en --quantize int8 --beam 5 --sentences 500

Our engine in one process with one thread (what each worker of the default layout runs), the first N sentences
of a Multi30k split given at once; prints output tokens/s without the profiler, then the operators by self time.
Run it alone: two cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run folder or checkpoint")
    p.add_argument("--quantize", default="none", choices=("none", "int8", "bf16"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--sentences", type=int, default=500)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--rows", type=int, default=30, help="operators to list")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from translate import Translator, read_parallel
    from translate.decoding import SearchConfig

    torch.set_num_threads(1)
    translator = Translator.load(args.run, device="cpu", quantize=args.quantize, workers=1)
    sources = [s for s, _ in read_parallel(args.data, args.src, args.tgt, args.split)][: args.sentences]
    ids = translator.tokenizers.src.encode(sources)
    cfg, engine = SearchConfig(beam_size=args.beam), translator.engine
    engine.search(ids[:50], cfg, False)  # warm-up
    start = time.perf_counter()
    out = engine.search(ids, cfg, False)
    seconds = time.perf_counter() - start
    tokens = sum(len(h[0].tokens) + 1 for h in out)
    print(f"{args.run} {args.quantize} beam {args.beam}, {len(ids)} sentences, 1 thread: {tokens / seconds:,.0f} tok/s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine.search(ids, cfg, False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
