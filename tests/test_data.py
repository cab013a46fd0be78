import gzip
import json

import pytest

from tests.tiny import read_lines
from translate.data import fetch_multi30k, has_split, make_batch, read_parallel, token_batches
from translate.encoded import EncodedCorpus, clean
from translate.errors import CorpusError
from translate.tokenizer import BOS_ID, EOS_ID, PAD_ID


def test_multi30k_folder(multi30k):
    pairs = read_parallel(multi30k, "de", "en", "train")
    assert len(pairs) == 29000
    assert pairs[0] == (read_lines(multi30k / "train.de.gz")[0].strip(), read_lines(multi30k / "train.en.gz")[0].strip())
    assert len(read_parallel(multi30k, "en", "fr", "val")) == 1014
    assert len(read_parallel(multi30k, "cs", "en", "test_2016_flickr")) == 1000


def test_plain_and_gz_files(tmp_path):
    (tmp_path / "train.de").write_text("Hallo\nWelt\n", encoding="utf-8")
    with gzip.open(tmp_path / "train.en.gz", "wt", encoding="utf-8") as f:
        f.write("Hello\nWorld\n")
    assert read_parallel(tmp_path, "de", "en", "train") == [("Hallo", "Hello"), ("Welt", "World")]


def test_tsv_with_header_without_header_and_quotes(tmp_path):
    with_header = tmp_path / "a.tsv"
    with_header.write_text('en\tde\nA "quoted" dog.\tEin "Hund".\nNA\tnan\n', encoding="utf-8")
    assert read_parallel(with_header, "de", "en", "train") == [('Ein "Hund".', 'A "quoted" dog.'), ("nan", "NA")]
    plain = tmp_path / "b.tsv"
    plain.write_text("Ein Hund.\tA dog.\nZwei Katzen.\tTwo cats.\n", encoding="utf-8")
    assert read_parallel(plain, "de", "en", "test") == [("Ein Hund.", "A dog."), ("Zwei Katzen.", "Two cats.")]


def test_jsonl_nested_and_flat(tmp_path):
    nested = tmp_path / "n.jsonl"
    nested.write_text("\n".join(json.dumps({"translation": {"de": d, "en": e}}) for d, e in [("Ja", "Yes"), ("Nein", "No")]))
    assert read_parallel(nested, "de", "en", "train") == [("Ja", "Yes"), ("Nein", "No")]
    flat = tmp_path / "f.jsonl"
    flat.write_text(json.dumps({"de": "Ja", "en": "Yes"}) + "\n")
    assert read_parallel(flat, "de", "en", "train") == [("Ja", "Yes")]
    with pytest.raises(CorpusError, match="language 'fr' not in"):
        read_parallel(nested, "de", "fr", "train")


def test_split_placeholder(tmp_path):
    for split in ("train", "val"):
        (tmp_path / f"{split}.tsv").write_text(f"de\ten\n{split}-de\t{split}-en\n", encoding="utf-8")
    spec = str(tmp_path / "{split}.tsv")
    assert read_parallel(spec, "de", "en", "val") == [("val-de", "val-en")]
    assert has_split(spec, "val") and not has_split(tmp_path / "train.tsv", "val")


def test_mismatched_line_counts_are_an_error_with_counts(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\nc\n")
    (tmp_path / "train.en").write_text("a\nb\n")
    with pytest.raises(CorpusError, match="train.de has 3 lines, train.en has 2"):
        read_parallel(tmp_path, "de", "en", "train")


def test_missing_language_split_and_corpus(multi30k, tmp_path):
    with pytest.raises(CorpusError, match=r"language 'xx' not in .* \(found: cs, de, en, fr\)"):
        read_parallel(multi30k, "de", "xx", "train")
    with pytest.raises(CorpusError, match="split 'dev' not in"):
        read_parallel(multi30k, "de", "en", "dev")
    with pytest.raises(CorpusError, match="corpus not found"):
        read_parallel(tmp_path / "nope", "de", "en", "train")
    with pytest.raises(CorpusError, match="corpus not found"):  # a '*' without a weight is part of the path
        read_parallel(tmp_path / "*.tsv", "de", "en", "train")
    with pytest.raises(CorpusError, match="both 'de'"):
        read_parallel(multi30k, "de", "de", "train")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        read_parallel(tmp_path / "x.csv", "de", "en", "train")


def test_hub_offline_fails_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(CorpusError, match="hub corpora need the network"):
        read_parallel("hub:bentrevett/multi30k", "de", "en", "train")


def test_clean_reports_what_it_drops():
    encoded = [([5], [6]), ([], [6]), ([5], []), ([5] * 11, [6]), ([7], [8])]
    kept, report = clean(EncodedCorpus.from_examples(encoded), max_len=10)
    assert kept.rows.tolist() == [0, 4]
    assert (report.kept, report.empty, report.too_long) == (2, 2, 1)
    assert "dropped 2 with an empty side and 1 over-long" in str(report)


def test_token_batches_respect_budget_cover_everything_and_are_seeded():
    lengths = [(i * 7) % 23 + 1 for i in range(500)]
    batches = token_batches(lengths, max_tokens=64, seed=3, epoch=0)
    assert sorted(int(i) for b in batches for i in b) == list(range(500))
    assert all(max(lengths[i] for i in b) * len(b) <= 64 for b in batches)
    same, other = token_batches(lengths, 64, seed=3, epoch=0), token_batches(lengths, 64, seed=3, epoch=1)
    assert [b.tolist() for b in batches] == [b.tolist() for b in same]
    assert [b.tolist() for b in batches] != [b.tolist() for b in other]
    # length bucketing: padding stays small
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded < 1.3 * sum(lengths)


def test_batch_layout():
    batch = make_batch([([5, 6, 7], [8, 9]), ([10], [11, 12, 13])])
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [10, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, 9, PAD_ID], [BOS_ID, 11, 12, 13]]
    assert batch.tgt_out.tolist() == [[8, 9, EOS_ID, PAD_ID], [11, 12, 13, EOS_ID]]
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert batch.n_tgt_tokens == 7
    assert sum(len(b.src) for b in EncodedCorpus.from_examples([([1], [2])] * 10).batches(8, 0, 0)) == 10


def test_fetch_multi30k_from_local_copy(multi30k, tmp_path):
    import shutil

    from translate.data import available_test_splits, multi30k_files

    core, later = multi30k_files()
    assert len(core) == 12 and len(later) == 10  # 2017 flickr and mscoco in en/de/fr, 2018 flickr also in cs
    files, missing = fetch_multi30k(tmp_path / "m30k", multi30k)  # the shared copy holds the 2016 task only
    assert len(files) == 12 and sorted(missing) == sorted(later)
    assert len(read_parallel(tmp_path / "m30k", "de", "en", "val")) == 1014
    assert available_test_splits(tmp_path / "m30k") == ["test_2016_flickr"]
    # A copy that has a later test set gives it too, and the report then finds it.
    source = tmp_path / "with-2017"
    shutil.copytree(tmp_path / "m30k", source)
    for lang in ("en", "de", "fr"):
        shutil.copyfile(source / f"test_2016_flickr.{lang}.gz", source / f"test_2017_mscoco.{lang}.gz")
    files, missing = fetch_multi30k(tmp_path / "m30k-2", source)
    assert len(files) == 15 and not any(name.startswith("test_2017_mscoco") for name in missing)
    assert available_test_splits(tmp_path / "m30k-2") == ["test_2016_flickr", "test_2017_mscoco"]
    with pytest.raises(CorpusError, match="not found"):
        fetch_multi30k(tmp_path / "other", tmp_path / "empty")


def test_mixed_corpora_with_weights(multi30k, tiny_corpus):
    from translate.data import corpora, has_split, read_mixed, read_parallel

    spec = f"{tiny_corpus}*3, {multi30k}"
    assert corpora(spec) == [(str(tiny_corpus), 3), (str(multi30k), 1)]
    pairs, counts = read_mixed(spec, "de", "en", "val", weighted=True)
    assert counts == {str(tiny_corpus): 3 * 64, str(multi30k): 1014} and len(pairs) == 3 * 64 + 1014
    assert pairs[:64] == pairs[64:128] == read_parallel(tiny_corpus, "de", "en", "val")
    assert len(read_parallel(spec, "de", "en", "val")) == 64 + 1014  # weights only repeat training data
    assert has_split(spec, "val") and not has_split(spec, "test_2016_flickr")  # the tiny corpus has no such split
