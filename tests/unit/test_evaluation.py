import pytest

from translate.evaluation import bleu_by_length, score


def test_score_matches_known_values_and_signatures():
    refs = ["The cat sat on the mat .", "A dog runs ."]
    perfect = score(refs, refs)
    assert perfect.bleu == 100.0 and perfect.chrf == 100.0 and perfect.n_sentences == 2
    assert perfect.bleu_signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert perfect.chrf_signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")
    assert score(["xyz qqq", "zzz"], refs).bleu == 0.0
    # sacreBLEU's own documented example value
    hyp = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    ref = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]
    assert score(hyp, ref).bleu == pytest.approx(45.07, abs=0.01)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        score(["a", "b"], ["a"])


def test_bleu_by_length_buckets():
    sources = ["w " * 3, "w " * 8, "w " * 9, "w " * 14, "w " * 25]
    refs = ["a b c d", "e f g h", "i j k l", "m n o p", "q r s t"]
    hyps = ["a b c d", "e f g h", "x y z w", "m n o p", "x x x x"]
    rows = bleu_by_length(sources, hyps, refs)
    assert [r.bucket for r in rows] == ["<=8", "9-12", "13-16", "17-20", "21+"]
    assert [r.n for r in rows] == [2, 1, 1, 0, 1]
    assert [r.bleu for r in rows] == [100.0, 0.0, 100.0, None, 0.0]


def test_a_length_penalty_sweep_does_not_overwrite_the_default_result():
    from translate.runfolder import eval_stem

    assert eval_stem("val", 5) == eval_stem("val", 5, 1.0) == "val.beam5"
    assert eval_stem("val", 5, 1.5) == "val.beam5.lp1.5" and eval_stem("val", 5, 2) == "val.beam5.lp2"
