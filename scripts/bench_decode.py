"""Decoding speed and BLEU: our decoder (float32, int8, bf16) vs CTranslate2 (float32, int8) on the same weights.

One run, one checkpoint, the same sentences (a corpus split given at once to each engine's own batch API), greedy
and beam 5: output tokens per second (EOS counted, best of --repeats), sacreBLEU, and the ratio of ours to
CTranslate2 int8 in its best layout (one single-threaded translator per core; the batch size that suits it best,
chosen from a small sweep). Our engine runs in its default layout (`Translator.load`'s defaults). The recurrent
runs given with --recurrent are measured with our engine only (CTranslate2 has no recurrent models), next to the
figures measured before the decoder was rewritten (--before, a JSON file written by an earlier version).

    .venv/bin/python scripts/bench_decode.py --run runs/transformer-de-en \\
        --recurrent runs/lstm-de-en runs/lstm-attn-de-en
Run it alone: two cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int):
    """Best wall time of `repeats` calls (after one warm-up call), and the last result."""
    fn()
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


class Ours:
    """Our engine in its default layout (`Translator.load`'s defaults) at one precision."""

    def __init__(self, run: Path, quantize: str, sources: list[str]):
        from translate import Translator

        self.translator = Translator.load(run, device="cpu", quantize=quantize)
        self.sources, self.layout = sources, self.translator.engine.layout

    def __call__(self, beam: int) -> tuple[int, list[str]]:
        out = self.translator.translate(self.sources, beam_size=beam)
        return sum(len(t.tgt_tokens) + 1 for t in out), [t.text for t in out]


class CTranslate2:
    """CTranslate2's translate_batch on pre-tokenized pieces, one single-threaded translator per core, at the batch
    size (from a small sweep) that suits it best for each beam."""

    BATCHES = (16, 32, 64, 128)

    def __init__(self, folder: Path, tokenizers, sources: list[str]):
        import ctranslate2

        from translate.tokenizer import EOS_PIECE

        self.workers = len(os.sched_getaffinity(0))
        self.translator = ctranslate2.Translator(str(folder), device="cpu", inter_threads=self.workers, intra_threads=1)
        # Each source ends with EOS, as our exports expect (translate/ct2.py).
        self.tokenizers = tokenizers
        self.pieces = [tokenizers.src.pieces(i) + [EOS_PIECE] for i in tokenizers.src.encode(sources)]
        self.batch: dict[int, int] = {}

    @property
    def layout(self) -> str:
        return f"{self.workers}x1 thread, b{self.batch.get(1)}/{self.batch.get(5)}"

    def tune(self, beam: int) -> None:
        speed = {b: self._run(beam, b)[0] / timed(lambda b=b: self._run(beam, b), 1)[0] for b in self.BATCHES}
        self.batch[beam] = max(speed, key=speed.get)

    def _run(self, beam: int, batch: int) -> tuple[int, list[str]]:
        results = self.translator.translate_batch(
            self.pieces, beam_size=beam, max_batch_size=batch, batch_type="examples", max_decoding_length=256
        )
        tgt = self.tokenizers.tgt
        texts = [tgt.decode([tgt.piece_to_id(p) for p in r.hypotheses[0]]) for r in results]
        return sum(len(r.hypotheses[0]) + 1 for r in results), texts

    def __call__(self, beam: int) -> tuple[int, list[str]]:
        return self._run(beam, self.batch[beam])


def transformer_table(args, sources, refs) -> None:
    from translate import score
    from translate.checkpoint import load_checkpoint
    from translate.ct2 import export_ctranslate2
    from translate.runfolder import resolve_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(args.run))
    tmp = tempfile.TemporaryDirectory()
    engines = {f"ours {'float32' if q == 'none' else q}": Ours(args.run, q, sources) for q in ("none", "int8", "bf16")}
    for quantization in ("float32", "int8"):
        folder = export_ctranslate2(ckpt, Path(tmp.name) / quantization, quantization)
        engines[f"CTranslate2 {quantization}"] = CTranslate2(folder, ckpt.tokenizers, sources)
    rows: dict[str, dict[int, dict]] = {name: {} for name in engines}
    for beam in (1, 5):
        for engine in engines.values():
            if isinstance(engine, CTranslate2):
                engine.tune(beam)
        # Rounds over all engines, best time each: drift on a shared machine hits every engine alike.
        best = {name: float("inf") for name in engines}
        for _ in range(args.repeats):
            for name, engine in engines.items():
                seconds, (tokens, texts) = timed(lambda e=engine: e(beam), 1)
                if seconds < best[name]:
                    best[name] = seconds
                    rows[name][beam] = {"tok_s": tokens / seconds, "bleu": score(texts, refs).bleu}
        print(f"measured beam {beam}", flush=True)
    peer = rows["CTranslate2 int8"]
    print(f"\n{args.run}: {len(sources)} sentences of {args.split}, output tokens/s (best of {args.repeats} rounds), "
          f"{len(os.sched_getaffinity(0))} cores ({cpu_features()})")
    print(f"{'engine':22s} {'layout':>18s} {'greedy tok/s':>13s} {'BLEU':>6s} {'vs ct2 int8':>11s} "
          f"{'beam5 tok/s':>12s} {'BLEU':>6s} {'vs ct2 int8':>11s}")
    for name, r in rows.items():
        print(f"{name:22s} {engines[name].layout:>18s} {r[1]['tok_s']:13,.0f} {r[1]['bleu']:6.2f} "
              f"{r[1]['tok_s'] / peer[1]['tok_s']:10.2f}x {r[5]['tok_s']:12,.0f} {r[5]['bleu']:6.2f} "
              f"{r[5]['tok_s'] / peer[5]['tok_s']:10.2f}x")
    tmp.cleanup()


def cpu_features() -> str:
    """What this CPU gives int8 and bf16, which decides their speed: torch's vector level, VNNI, native bfloat16."""
    import torch

    from translate.inference import native_bf16

    vnni = getattr(torch.cpu, "_is_vnni_supported", lambda: None)()
    return (f"{torch.backends.cpu.get_cpu_capability()}, VNNI {'?' if vnni is None else 'yes' if vnni else 'no'}, "
            f"bfloat16 {'native' if native_bf16() else 'emulated'}")


def ours(run: Path, quantize: str, sources: list[str], refs: list[str], beam: int, repeats: int) -> dict:
    from translate import score

    engine = Ours(run, quantize, sources)
    seconds, (tokens, texts) = timed(lambda: engine(beam), repeats)
    return {"tok_s": tokens / seconds, "bleu": score(texts, refs).bleu}


def recurrent_table(args, sources, refs) -> None:
    before = json.loads(Path(args.before).read_text()) if args.before and Path(args.before).exists() else {}
    print(f"\nrecurrent models, ours, output tokens/s (before: {args.before or 'not given'})")
    print(f"{'run':22s} {'precision':>9s} {'greedy':>9s} {'before':>8s} {'BLEU':>6s} {'beam 5':>9s} {'before':>8s} "
          f"{'speed-up':>8s} {'BLEU':>6s}")
    for run in args.recurrent:
        name = Path(run).name
        for quantize in ("none", "int8"):
            r = {beam: ours(Path(run), quantize, sources, refs, beam, args.repeats) for beam in (1, 5)}
            b = before.get(name, {})  # before the rewrite there was float32 only: both precisions compare with it
            g0, b0 = b.get("greedy_tok_s"), b.get("beam5_tok_s")
            print(f"{name:22s} {'float32' if quantize == 'none' else quantize:>9s} {r[1]['tok_s']:9,.0f} "
                  f"{g0 or 0:8,.0f} {r[1]['bleu']:6.2f} {r[5]['tok_s']:9,.0f} {b0 or 0:8,.0f} "
                  f"{(r[5]['tok_s'] / b0 if b0 else float('nan')):7.2f}x {r[5]['bleu']:6.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a Transformer run (or checkpoint)")
    p.add_argument("--recurrent", nargs="*", default=[], help="recurrent runs to measure with our engine")
    p.add_argument("--before", default=str(ROOT / "scripts" / "bench_decode_before.json"),
                   help="tokens/s of the recurrent runs before the rewrite (JSON: run name -> figures)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--repeats", type=int, default=3, help="rounds over all engines; the best of each counts")
    args = p.parse_args()

    import tqdm

    from translate.data import read_parallel

    tqdm.tqdm.monitor_interval = 0  # no tqdm monitor thread: our engine forks its workers from a thread-free process
    pairs = read_parallel(args.data, args.src, args.tgt, args.split)
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    transformer_table(args, sources, refs)
    if args.recurrent:
        recurrent_table(args, sources, refs)


if __name__ == "__main__":
    main()
