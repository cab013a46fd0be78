"""Sentence splitting for long text: every character of the input survives a split and rejoin."""

from hypothesis import given, settings
from hypothesis import strategies as st

from translate.segmenting import rejoin, split_sentences


def test_sentences_and_the_whitespace_between_them():
    text = "Ein Hund rennt.  Zwei Katzen schlafen!\n\nDr. Müller liest um 3 Uhr ein Buch. Was ist das?"
    pieces = split_sentences(text, "de")
    assert [p.text for p in pieces if p.text] == [
        "Ein Hund rennt.", "Zwei Katzen schlafen!", "Dr. Müller liest um 3 Uhr ein Buch.", "Was ist das?",
    ]
    assert rejoin(pieces, ["A.", "B!", "C.", "D?"]) == "A.  B!\n\nC. D?"


def test_empty_and_blank_texts():
    assert split_sentences("", "de") == []
    assert [p.text for p in split_sentences(" \n ", "de")] == [""]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc XYZ.!?\n\t,;:-'\"äß0123456789")), max_size=200),
       st.sampled_from(["de", "en", "fr", "cs"]))
def test_split_then_rejoin_gives_the_text_back(text, lang):
    pieces = split_sentences(text, lang)
    assert rejoin(pieces, [p.text for p in pieces if p.text]) == text
    assert all(p.text == p.text.strip() for p in pieces)
