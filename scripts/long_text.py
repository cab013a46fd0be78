"""Long text: which sentence splitter, and does splitting keep the quality of sentence-by-sentence translation?

1. Splitters: real German test sentences (Multi30k test_2016_flickr, Tatoeba test) joined into paragraphs of 15,
   with a paragraph break after every fifth; each splitter must give the 15 sentences back. Prints, per splitter
   and corpus, the paragraphs split exactly right, boundary precision and recall, and the time.
2. With --run: the paragraphs translated whole (split, translated in shared batches, rejoined) vs. their sentences
   one by one; BLEU of both against the joined references, and how many paragraphs come back with 15 sentences.

    .venv/bin/python scripts/long_text.py --run runs/transformer-de-en

One run on this machine (2 cores), --run runs/transformer-de-en (the Multi30k Transformer):

| splitter | corpus | paragraphs exactly right | boundary precision | boundary recall | ms / paragraph |
|---|---|---:|---:|---:|---:|
| sentencex | multi30k | 48/66 | 1.000 | 0.978 | 0.06 |
| sentencex | tatoeba | 194/232 | 0.983 | 0.990 | 0.02 |
| pysbd | multi30k | 50/66 | 1.000 | 0.982 | 5.02 |
| pysbd | tatoeba | 202/232 | 0.991 | 0.998 | 2.83 |

| corpus | paragraphs | chars (mean) | BLEU whole | BLEU one by one | paragraphs with 15 sentences out |
|---|---:|---:|---:|---:|---:|
| multi30k | 66 | 1044 | 31.52 | 32.03 | 46/66 |
| tatoeba | 232 | 585 | 2.18 | 2.19 | 170/232 |

one 1897-character paragraph of the 15 longest Multi30k test sentences: 15 sentences out; identical to its
sentences translated one by one

Both splitters miss the same boundaries on Multi30k: captions without a final full stop, which no splitter can
see; pysbd is a little more accurate on Tatoeba but 80-150x slower, unreleased since 2021 and without Czech, so
sentencex splits (translate/segmenting.py). Whole paragraphs score within 0.5 BLEU of their sentences translated
one by one (the Multi30k model knows little of Tatoeba's everyday sentences: hence its low BLEU there).
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUP, BREAK_EVERY = 15, 5


def read_pairs(folder: Path, split: str) -> tuple[list[str], list[str]]:
    """German and English lines of a split, both sides non-empty."""
    de, en = ([line.strip() for line in gzip.open(folder / f"{split}.{lang}.gz", "rt", encoding="utf-8")] for lang in ("de", "en"))
    pairs = [(s, t) for s, t in zip(de, en) if s and t]
    return [s for s, _ in pairs], [t for _, t in pairs]


def paragraphs(sentences: list[str]) -> list[tuple[str, list[str]]]:
    """(text, its sentences): groups of 15, a blank line after every fifth sentence, single spaces otherwise."""
    out = []
    for i in range(0, len(sentences) - GROUP + 1, GROUP):
        group = sentences[i:i + GROUP]
        text = "".join(s + ("\n\n" if (k + 1) % BREAK_EVERY == 0 else " ") for k, s in enumerate(group)).strip()
        out.append((text, group))
    return out


def boundaries(sentences: list[str]) -> set[int]:
    ends, pos = set(), 0
    for s in sentences[:-1]:
        pos += len(s)
        ends.add(pos)
    return ends


def splitters(lang: str) -> dict:
    import pysbd
    from sentencex import segment

    seg = pysbd.Segmenter(language=lang, clean=False)
    return {
        "sentencex": lambda text: [s.strip() for s in segment(lang, text) if s.strip()],
        "pysbd": lambda text: [s.strip() for s in seg.segment(text) if s.strip()],
    }


def compare_splitters(corpora: dict[str, list[str]]) -> None:
    print("| splitter | corpus | paragraphs exactly right | boundary precision | boundary recall | ms / paragraph |")
    print("|---|---|---:|---:|---:|---:|")
    for name, split in splitters("de").items():
        for corpus, sentences in corpora.items():
            paras = paragraphs(sentences)
            exact = tp = fp = fn = 0
            start = time.perf_counter()
            found = [split(text) for text, _ in paras]
            ms = 1000 * (time.perf_counter() - start) / len(paras)
            for got, (_, want) in zip(found, paras):
                exact += got == want
                b_got, b_want = boundaries([s.replace(" ", "") for s in got]), boundaries([s.replace(" ", "") for s in want])
                tp, fp, fn = tp + len(b_got & b_want), fp + len(b_got - b_want), fn + len(b_want - b_got)
            print(f"| {name} | {corpus} | {exact}/{len(paras)} | {tp / max(tp + fp, 1):.3f} | {tp / max(tp + fn, 1):.3f} | {ms:.2f} |")


def compare_translation(run: str, corpora: dict[str, tuple[list[str], list[str]]], beam: int) -> None:
    import sacrebleu

    from translate import Translator
    from translate.segmenting import split_sentences

    translator = Translator.load(run)
    print(f"\n{run}, beam {beam}: paragraphs of {GROUP} sentences translated whole vs. sentence by sentence")
    print("| corpus | paragraphs | chars (mean) | BLEU whole | BLEU one by one | paragraphs with 15 sentences out |")
    print("|---|---:|---:|---:|---:|---:|")
    for corpus, (src, ref) in corpora.items():
        paras, refs = paragraphs(src), paragraphs(ref)
        whole = [t.text for t in translator.translate([text for text, _ in paras], beam_size=beam, split=True)]
        singles = [t.text for t in translator.translate(src[:len(paras) * GROUP], beam_size=beam)]
        joined = [" ".join(singles[i * GROUP:(i + 1) * GROUP]) for i in range(len(paras))]
        references = [" ".join(group) for _, group in refs]
        flat = [w.replace("\n\n", " ") for w in whole]
        b_whole = sacrebleu.corpus_bleu(flat, [references]).score
        b_single = sacrebleu.corpus_bleu(joined, [references]).score
        fifteen = sum(len([p for p in split_sentences(w, translator.tgt_lang) if p.text]) == GROUP for w in whole)
        chars = sum(len(text) for text, _ in paras) / len(paras)
        print(f"| {corpus} | {len(paras)} | {chars:.0f} | {b_whole:.2f} | {b_single:.2f} | {fifteen}/{len(paras)} |")


def longest_paragraph(src: list[str], ref: list[str], limit: int = 2000) -> tuple[list[str], list[str]]:
    """15 of the longest sentences (both sides ending like sentences) whose paragraph stays within `limit` chars."""
    pairs = sorted(((s, t) for s, t in zip(src, ref) if s[-1] in ".!?" and t[-1] in ".!?"), key=lambda p: -len(p[0]))
    per_sentence = (limit - 2 * (GROUP - 1)) // GROUP  # room for the separators
    chosen = [p for p in pairs if len(p[0]) <= per_sentence][:GROUP]
    return [s for s, _ in chosen], [t for _, t in chosen]


def long_paragraph(run: str, src: list[str], ref: list[str], beam: int) -> None:
    from translate import Translator
    from translate.segmenting import split_sentences

    translator = Translator.load(run)
    src, ref = longest_paragraph(src, ref)
    (text, _), = paragraphs(src)
    whole = translator.translate([text], beam_size=beam, split=True)[0].text
    singles = [t.text for t in translator.translate(src, beam_size=beam)]
    out = len([p for p in split_sentences(whole, translator.tgt_lang) if p.text])
    same = whole.replace("\n\n", " ") == " ".join(singles)
    print(f"\none {len(text)}-character paragraph of the {GROUP} longest Multi30k test sentences: {out} sentences "
          f"out; {'identical to' if same else 'different from'} its sentences translated one by one")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--multi30k", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--tatoeba", default=str(ROOT.parent / "shared" / "data" / "tatoeba-deu-eng"))
    p.add_argument("--run", help="also translate the paragraphs with this run (de->en)")
    p.add_argument("--beam", type=int, default=5)
    args = p.parse_args()
    splits = {"multi30k": (Path(args.multi30k), "test_2016_flickr"), "tatoeba": (Path(args.tatoeba), "test")}
    corpora = {name: read_pairs(folder, split) for name, (folder, split) in splits.items()
               if (folder / f"{split}.de.gz").exists()}
    compare_splitters({name: src for name, (src, _) in corpora.items()})
    if args.run:
        compare_translation(args.run, corpora, args.beam)
        if "multi30k" in corpora:
            long_paragraph(args.run, *corpora["multi30k"], args.beam)


if __name__ == "__main__":
    main()
