"""The one language check every route goes through: what each engine accepts, what the
refusal lists, and what reaches each engine's API."""

from __future__ import annotations

import pytest

from batchscribe.pipeline.exceptions import UnsupportedLanguageError
from batchscribe.pipeline.languages import (
    NOVA_3_LANGUAGES,
    check_language,
    engine_language,
    whisper_code_for,
)


@pytest.mark.parametrize("tag", ["en", "en-US", "en-GB", "EN-au", "en-IN"])
def test_sphinx_takes_any_english_tag(tag: str) -> None:
    assert check_language(tag, "sphinx") == tag[:2].lower() + tag[2:].upper()


@pytest.mark.parametrize("tag", ["fr", "de-DE", "es-419", "english"])
def test_sphinx_refuses_other_languages_and_says_it_can_do_english(tag: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        check_language(tag, "sphinx")
    message = str(info.value)
    assert f"sphinx engine cannot transcribe {tag!r}" in message
    assert "en (any English tag" in message
    assert info.value.code == "unsupported_language"
    assert info.value.param == "language"


@pytest.mark.parametrize("value", ["e", "en_US", "en-", "x" * 40, "en-US; drop", "123"])
def test_something_that_is_not_a_tag_is_refused_with_an_example(value: str) -> None:
    with pytest.raises(UnsupportedLanguageError, match="not a BCP-47 tag such as en or pt-BR"):
        check_language(value, "sphinx")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_language_leaves_it_to_the_engine(value: str | None) -> None:
    assert check_language(value, "sphinx") is None
    assert check_language(value, "deepgram") is None
    assert check_language(value, "openai") is None


def test_deepgram_nova_3_takes_its_documented_tags_in_their_spelling() -> None:
    assert check_language("pt-br", "deepgram") == "pt-BR"
    assert check_language("zh-hant", "deepgram") == "zh-Hant"
    assert check_language("es-419", "deepgram") == "es-419"
    assert check_language("multi", "deepgram") == "multi"
    for tag in NOVA_3_LANGUAGES:
        assert check_language(tag, "deepgram") == tag


def test_deepgram_nova_3_refuses_an_unlisted_language_listing_its_languages() -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        check_language("xh", "deepgram")
    assert "deepgram engine cannot transcribe 'xh'" in str(info.value)
    assert "en-GB" in str(info.value)
    assert "pt-BR" in str(info.value)


def test_another_deepgram_model_passes_any_well_formed_tag_through() -> None:
    assert check_language("xh-ZA", "deepgram", deepgram_model="nova-2") == "xh-ZA"
    with pytest.raises(UnsupportedLanguageError):
        check_language("not a tag", "deepgram", deepgram_model="nova-2")


def test_openai_engines_take_whisper_languages_with_or_without_a_region() -> None:
    assert check_language("pt-BR", "openai") == "pt-BR"
    assert engine_language("pt-BR", "openai") == "pt"
    assert engine_language("yue", "openai") == "yue"
    assert engine_language("jv", "openai") == "jw"  # Whisper's spelling of Javanese
    with pytest.raises(UnsupportedLanguageError) as info:
        check_language("xh", "openai")
    assert "af, am, ar" in str(info.value)


def test_what_reaches_each_engine() -> None:
    assert engine_language("en-GB", "sphinx") is None  # one model, nothing to send
    assert engine_language("en-GB", "deepgram") == "en-GB"
    assert engine_language(None, "deepgram") is None


@pytest.mark.parametrize(
    ("reported", "code"),
    [("english", "en"), ("Portuguese", "pt"), ("en", "en"), ("klingon", None), (None, None)],
)
def test_the_language_openai_reports_becomes_a_code(reported: str | None, code: str | None) -> None:
    assert whisper_code_for(reported) == code
