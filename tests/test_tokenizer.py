import pytest

from tests.tiny import read_lines
from translate.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, TokenizerPair, train_tokenizers


@pytest.fixture(scope="module")
def corpus(multi30k):
    de = read_lines(multi30k / "train.de.gz")[:3000]
    en = read_lines(multi30k / "train.en.gz")[:3000]
    return list(zip(de, en))


@pytest.fixture(scope="module")
def joint(corpus):
    return train_tokenizers(corpus, vocab_size=2000, joint=True)


def test_special_ids_and_size(joint):
    tok = joint.src
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.pieces([PAD_ID, UNK_ID, BOS_ID, EOS_ID]) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.vocab_size == 2000
    assert joint.joint


def test_round_trip_is_exact_on_real_sentences(joint, multi30k):
    # Validation sentences were not seen in training: every one must come back unchanged.
    sentences = read_lines(multi30k / "val.de.gz") + read_lines(multi30k / "val.en.gz")
    ids = joint.src.encode(sentences)
    assert [joint.src.decode(i) for i in ids] == [s.strip() for s in sentences]
    assert all(min(i) > EOS_ID for i in ids if i)  # no special ids inside text


def test_round_trip_of_unseen_characters(joint):
    text = "Ωμέγα 漢字 😀 naïve \u00a0café"
    ids = joint.src.encode([text])[0]
    assert UNK_ID not in ids  # byte fallback instead of <unk>
    assert joint.src.decode(ids) == text


def test_decode_skips_special_ids(joint):
    ids = joint.src.encode(["Ein Hund."])[0]
    assert joint.src.decode([BOS_ID] + ids + [EOS_ID, PAD_ID]) == "Ein Hund."


def test_per_language_and_bytes_round_trip(corpus):
    pair = train_tokenizers(corpus, vocab_size=1000, joint=False)
    assert not pair.joint
    again = TokenizerPair.from_bytes(pair.to_bytes())
    assert again.src.encode(["Zwei Männer"]) == pair.src.encode(["Zwei Männer"])
    assert again.tgt.encode(["Two men"]) == pair.tgt.encode(["Two men"])
    assert pair.src.model_proto != pair.tgt.model_proto


def test_small_corpus_gets_a_smaller_vocabulary(corpus):
    tok = train_tokenizers(corpus[:20], vocab_size=8000).src  # cannot fill 8000 pieces: soft limit
    assert 260 < tok.vocab_size < 8000
    assert tok.decode(tok.encode(["Zwei junge Männer"])[0]) == "Zwei junge Männer"


def test_foreign_special_ids_rejected():
    import io

    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a b c d e f g"] * 50), model_writer=proto, vocab_size=20, minloglevel=2,
        hard_vocab_limit=False,
    )  # sentencepiece's own defaults: unk 0, bos 1, eos 2, no pad
    with pytest.raises(ValueError, match="special ids"):
        Tokenizer(proto.getvalue())
