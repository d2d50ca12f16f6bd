"""Language identification among the 11 mExTrans languages, and the length-ratio band."""

import pytest

from rewardkit_translation.languages import (
    LANGUAGES,
    check_language,
    expected_length_ratio,
    identify,
    length_band,
)

# Two everyday sentences per language, written for these tests.
SENTENCES = {
    "ar": [
        "ذهبت إلى السوق صباح اليوم لشراء الخبز والحليب.",
        "المكتبة مغلقة يوم الجمعة، لكنها تفتح يوم السبت.",
    ],
    "cs": [
        "Dnes ráno jsem šel na trh koupit chléb a mléko.",
        "Knihovna je v pátek zavřená, ale v sobotu je otevřená.",
    ],
    "de": [
        "Heute Morgen bin ich auf den Markt gegangen, um Brot und Milch zu kaufen.",
        "Die Bibliothek ist freitags geschlossen, aber samstags geöffnet.",
    ],
    "en": [
        "This morning I went to the market to buy bread and milk.",
        "The library is closed on Friday, but it is open on Saturday.",
    ],
    "es": [
        "Esta mañana fui al mercado a comprar pan y leche.",
        "La biblioteca está cerrada el viernes, pero abre el sábado.",
    ],
    "fr": [
        "Ce matin, je suis allé au marché pour acheter du pain et du lait.",
        "La bibliothèque est fermée le vendredi, mais elle ouvre le samedi.",
    ],
    "it": [
        "Stamattina sono andato al mercato a comprare pane e latte.",
        "La biblioteca è chiusa il venerdì, ma il sabato è aperta.",
    ],
    "ja": [
        "今朝、パンと牛乳を買いに市場へ行きました。",
        "図書館は金曜日は閉まっていますが、土曜日は開いています。",
    ],
    "ko": [
        "오늘 아침에 빵과 우유를 사러 시장에 갔어요.",
        "도서관은 금요일에 문을 닫지만 토요일에는 엽니다.",
    ],
    "ru": [
        "Сегодня утром я ходил на рынок за хлебом и молоком.",
        "Библиотека закрыта в пятницу, но в субботу она открыта.",
    ],
    "zh": ["今天早上我去市场买了面包和牛奶。", "图书馆星期五关门，但是星期六开门。"],
}


def test_the_eleven_languages():
    assert sorted(LANGUAGES) == sorted(SENTENCES)
    assert len(LANGUAGES) == 11


@pytest.mark.parametrize("lang, text", [(k, s) for k, v in SENTENCES.items() for s in v])
def test_identifies_each_language(lang, text):
    found = identify(text)
    assert found.language == lang
    assert 0.5 < found.confidence <= 1.0


def test_identification_is_restricted_to_the_eleven():
    # Dutch is not one of the 11: the answer must still be one of them (probably German)
    assert identify("Ik ga vandaag naar de markt om brood te kopen.").language in LANGUAGES


def test_empty_text_is_an_error():
    with pytest.raises(ValueError, match="empty text"):
        identify("   ")


def test_unknown_language_code_is_named():
    with pytest.raises(ValueError, match="'pt' is not one of the supported languages"):
        check_language("pt", "target_lang")


def test_expected_length_ratio_by_hand():
    # en -> zh: 0.3 / 1.0 = 0.3 ; zh -> en: 1.0 / 0.3 = 3.333... ; de -> ja: 0.4 / 1.15
    assert expected_length_ratio("en", "zh") == pytest.approx(0.3)
    assert expected_length_ratio("zh", "en") == pytest.approx(10 / 3)
    assert expected_length_ratio("de", "ja") == pytest.approx(0.4 / 1.15)


def test_length_band_by_hand():
    # tolerance 2: [0.3 / 2, 0.3 * 2] = [0.15, 0.6]
    assert length_band("en", "zh") == pytest.approx((0.15, 0.6))
    # tolerance 1.5 on zh -> en: [3.333/1.5, 3.333*1.5] = [2.222, 5.0]
    assert length_band("zh", "en", tolerance=1.5) == pytest.approx((20 / 9, 5.0))
    assert length_band("en", "zh", overrides={"en-zh": [0.2, 0.5]}) == (0.2, 0.5)


def test_bad_length_band_settings():
    with pytest.raises(ValueError, match="tolerance must be >= 1"):
        length_band("en", "de", tolerance=0.5)
    with pytest.raises(ValueError, match="low < high"):
        length_band("en", "de", overrides={"en-de": [2.0, 1.0]})
    with pytest.raises(ValueError, match="'xx'"):
        length_band("xx", "de")
