"""Where decoding time goes: torch.profiler's operator table for one single-threaded worker's search.

    .venv/bin/python scripts/profile_decode.py runs/transformer-de-en --quantize int8 --beam 5 --sentences 500
    .venv/bin/python scripts/profile_decode.py runs/transformer-de-en --quantize int8 --steps

Our engine in one process with one thread (what each worker of the default layout runs), the first N sentences
of a Multi30k split given at once; prints output tokens/s without the profiler, then the operators by self time.
`--steps` instead times what batching can and cannot amortise: one decoding step (replayed, 15 cached positions) at
5 to 160 rows, and the search of a lone sentence against that of a batch of 8, as the service runs them.
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
    p.add_argument("--steps", action="store_true", help="time decoding steps by rows, and lone sentences vs batches")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from translate import Translator, read_parallel
    from translate.decoding import SearchConfig

    torch.set_num_threads(1)
    translator = Translator.load(args.run, device="cpu", quantize=args.quantize, workers=1)
    sources = [s for s, _ in read_parallel(args.data, args.src, args.tgt, args.split)][: args.sentences]
    ids = translator.tokenizers.src.encode(sources)
    if args.steps:
        step_costs(translator, ids, args.beam)
        return
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


def step_costs(translator, ids: list[list[int]], beam: int) -> None:
    import torch

    from translate.data import make_src
    from translate.decoding import SearchConfig, search
    from translate.tokenizer import BOS_ID

    from bench_decode import timed

    model = translator.model
    decode = model.step_decoder()

    def best_ms(fn, calls: int) -> float:
        return timed(fn, 3)[0] / calls * 1000

    with torch.inference_mode():
        for sentences in (1, 2, 4, 8, 16, 32):
            src = make_src(ids[:sentences])
            state = model.expand_state(model.encode(src, src != 0), beam)
            tgt = torch.full((sentences * beam, 1), BOS_ID)
            for _ in range(15):  # a cache of 15 positions
                state = decode(tgt, state).state
            ms = best_ms(lambda: [decode(tgt, state) for _ in range(30)], 30)
            rows = sentences * beam
            print(f"one step at {rows:3d} rows: {ms:6.2f} ms, {1000 * ms / rows:4.0f} us a row")
        cfg = SearchConfig(beam_size=beam)
        for width in (1, 8):
            batches = [make_src(ids[i : i + width]) for i in range(0, 30 * width, width)]
            ms = best_ms(lambda: [search(model, b, b != 0, cfg) for b in batches], len(batches))
            print(f"search of {width} sentence(s) at beam {beam}: {ms:6.1f} ms ({ms / width:5.1f} ms a sentence)")


if __name__ == "__main__":
    main()
