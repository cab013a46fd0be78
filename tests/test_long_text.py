"""Long text on real models: a paragraph of 15 real Multi30k sentences is split, translated in shared batches and
rejoined with its own breaks; it comes back as the 15 sentence translations, not a run-on."""

from __future__ import annotations

import pytest

from tests.tiny import N_PAIRS, read_lines
from translate import Translator
from translate.segmenting import split_sentences


@pytest.fixture(scope="module")
def sentences(multi30k) -> list[str]:
    """15 of the tiny models' training sentences whose German and English both end like sentences."""
    de, en = (read_lines(multi30k / f"train.{lang}.gz")[:N_PAIRS] for lang in ("de", "en"))
    return [s for s, t in zip(de, en) if s[-1] in ".!?" and t[-1] in ".!?"][:15]


@pytest.mark.parametrize("arch", ["transformer", "lstm-attn"])
def test_a_paragraph_of_15_sentences_comes_back_as_15(trained_runs, sentences, arch):
    translator = Translator.load(trained_runs[arch][0], device="cpu", workers=1)
    paragraph = "\n\n".join(" ".join(sentences[i:i + 5]) for i in range(0, 15, 5))
    whole = translator.translate([paragraph], beam_size=3, return_attention=True, split=True)[0]
    singles = translator.translate(sentences, beam_size=3)
    expected = "\n\n".join(" ".join(t.text for t in singles[i:i + 5]) for i in range(0, 15, 5))
    assert whole.text == expected  # the same translations, the same breaks: BLEU of both is the same
    assert len([p for p in split_sentences(whole.text, "en") if p.text]) == 15
    assert whole.tgt_tokens == [tok for t in singles for tok in t.tgt_tokens]
    # Attention is block-diagonal: each output piece attends within its own sentence only.
    col = row = 0
    for t in singles:
        for r in whole.attention[row:row + len(t.tgt_tokens)]:
            inside = sum(r[col:col + len(t.src_tokens)])
            assert inside == pytest.approx(1.0, abs=1e-3) and sum(r) == pytest.approx(inside)
        row, col = row + len(t.tgt_tokens), col + len(t.src_tokens)
    assert row == len(whole.tgt_tokens) and col == len(whole.src_tokens)


def test_splitting_is_off_unless_asked_and_one_sentence_is_unchanged(trained_runs, sentences):
    translator = Translator.load(trained_runs["transformer"][0], device="cpu", workers=1)
    one = translator.translate([sentences[0]], beam_size=2, n_best=2)[0]
    split = translator.translate([sentences[0]], beam_size=2, n_best=2, split=True)[0]
    assert split == one and len(split.alternatives) == 1
    assert translator.translate(["   "], split=True)[0].text == ""
