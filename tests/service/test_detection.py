"""Language detection among the served source languages (py3langid)."""

from service.detection import detect


def test_each_set_of_languages_is_ranked_on_its_own():
    # Asking among fewer languages first must not narrow a later question among more (a reload adds languages).
    assert detect("Ein Hund rennt über die Wiese.", ["de", "fr"])[0][0] == "de"
    ranked = detect("Pes běží po louce a štěká.", ["cs", "de", "fr"])
    assert [code for code, _ in ranked][0] == "cs" and len(ranked) == 3
    assert detect("Bonjour", ["fr"]) == [("fr", 1.0)]
    assert detect("Bonjour", ["xx"]) == []
