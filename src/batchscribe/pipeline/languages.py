"""Which spoken languages each engine can transcribe, decided once for every route.

A request names a language as a BCP-47 tag (`en`, `en-GB`, `pt-BR`, `zh-Hant`). `check_language`
is the one check `POST /batch/jobs`, `POST /batch/process` and `POST /v1/audio/transcriptions`
go through, before any audio is stored or sent: a tag that is not BCP-47 is
`UnsupportedLanguageError` like a language the engine cannot do, and the message lists what the
engine can. The accepted tag is stored with the job in its canonical case (`en-us` -> `en-US`)
and `engine_language` turns it into what the engine's API takes.

Per engine:

- `sphinx`: the model that ships in the pocketsphinx wheel is US English, so any tag whose
  language is English (`en`, `en-US`, `en-GB`, `en-AU`...) is accepted; the model stays the same
  whatever region is named (a British speaker is decoded with the US model, as without a tag).
- `deepgram`: with `DEEPGRAM_MODEL=nova-3` (the default) the tags Deepgram documents for
  nova-3, exactly (`NOVA_3_LANGUAGES`, plus `multi` for its code-switching model); a
  well-formed tag that is not listed is refused before the audio is sent, listing the rest.
  Deepgram adds languages to nova-3 every few months: a missing one is a line to add here. Any
  other model (`nova-2`, `enhanced`, a custom model) has a language list this service cannot
  know, so any well-formed tag is passed through and Deepgram's own refusal fails the job.
- `openai`: OpenAI-compatible servers (OpenAI, Groq, local Whisper servers) run Whisper or models
  with Whisper's languages, and take an ISO 639-1 code: a tag is accepted when its language is
  one of Whisper's (`WHISPER_LANGUAGES`), and the server is sent that language alone
  (`pt-BR` -> `pt`).
"""

from __future__ import annotations

import re

from batchscribe.pipeline.exceptions import UnsupportedLanguageError

# BCP-47 as users write it: a language, optional script, region and variants (en, en-US,
# zh-Hant-TW, es-419). Private-use and grandfathered tags are not transcription languages.
_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$")
MAX_TAG_LENGTH = 35

SPHINX_LANGUAGES = ("en",)

#: Deepgram's nova-3 language codes (its "Models & Languages Overview" and changelog).
NOVA_3_LANGUAGES = (
    "multi",
    "en", "en-US", "en-AU", "en-GB", "en-IN", "en-NZ",
    "be", "bg", "bn", "bs", "ca", "cs", "da", "da-DK", "de", "de-CH", "el", "es", "es-419",
    "et", "fi", "fr", "fr-CA", "hi", "hr", "hu", "id", "it", "ja", "kn", "ko", "ko-KR", "lt",
    "lv", "mk", "mr", "ms", "ne", "nl", "nl-BE", "no", "pa", "pa-IN", "pl", "pt", "pt-BR",
    "pt-PT", "ro", "ru", "sk", "sl", "sr", "sv", "sv-SE", "ta", "te", "th", "th-TH", "tl", "tr",
    "uk", "vi", "zh", "zh-CN", "zh-Hans", "zh-HK", "zh-TW", "zh-Hant",
)  # fmt: skip

#: Whisper's languages: code -> the name OpenAI's `verbose_json` reports (`"language": "english"`).
WHISPER_LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}  # fmt: skip
#: ISO 639-1 codes Whisper spells differently (Javanese) or covers under another (Bokmål).
_WHISPER_ALIASES = {"jv": "jw", "nb": "no"}
_WHISPER_BY_NAME = {name: code for code, name in WHISPER_LANGUAGES.items()}
_NOVA_3 = {tag.lower(): tag for tag in NOVA_3_LANGUAGES}


def canonical_tag(tag: str) -> str:
    """BCP-47's conventional case: language lower, script title, region upper (`zh-hant-tw` ->
    `zh-Hant-TW`, `es-419` stays)."""
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def _primary(tag: str) -> str:
    return tag.split("-")[0].lower()


def supported_languages(engine: str, deepgram_model: str = "nova-3") -> str:
    """What `engine` can transcribe, as a sentence fragment for error messages and docs."""
    if engine == "sphinx":
        return "en (any English tag: en, en-US, en-GB...)"
    if engine == "deepgram":
        if deepgram_model == "nova-3":
            return ", ".join(NOVA_3_LANGUAGES)
        return f"any BCP-47 tag Deepgram's {deepgram_model} model takes"
    return ", ".join(sorted(WHISPER_LANGUAGES)) + " (a region is allowed: pt-BR is sent as pt)"


def check_language(value: str | None, engine: str, deepgram_model: str = "nova-3") -> str | None:
    """The tag a request named, canonical, when `engine` can transcribe it; None when none was
    named (the engine decides or detects). Raises `UnsupportedLanguageError` otherwise."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    if len(raw) > MAX_TAG_LENGTH or not _TAG.match(raw):
        raise UnsupportedLanguageError(_refusal(raw, engine, deepgram_model, malformed=True))
    tag = canonical_tag(raw)
    if engine == "sphinx":
        ok = _primary(tag) in SPHINX_LANGUAGES
    elif engine == "deepgram":
        if deepgram_model != "nova-3":
            return tag
        listed = _NOVA_3.get(tag.lower())
        if listed is not None:
            return listed
        ok = False
    else:
        ok = _whisper_code(tag) is not None
    if not ok:
        raise UnsupportedLanguageError(_refusal(raw, engine, deepgram_model, malformed=False))
    return tag


def _whisper_code(tag: str) -> str | None:
    primary = _primary(tag)
    primary = _WHISPER_ALIASES.get(primary, primary)
    return primary if primary in WHISPER_LANGUAGES else None


def _refusal(raw: str, engine: str, deepgram_model: str, *, malformed: bool) -> str:
    shown = repr(raw[:40])
    problem = (
        f"The language {shown} is not a BCP-47 tag such as en or pt-BR"
        if malformed
        else f"The {engine} engine cannot transcribe {shown}"
    )
    return (
        f"{problem}. Send a language the {engine} engine can do: "
        f"{supported_languages(engine, deepgram_model)}; or leave the language out."
    )


def engine_language(tag: str | None, engine: str) -> str | None:
    """The accepted tag as `engine`'s API takes it: the Whisper code for OpenAI-compatible
    servers (`en-GB` -> `en`), the tag itself for Deepgram, nothing for sphinx (one model)."""
    if tag is None:
        return None
    if engine == "openai":
        return _whisper_code(tag)
    if engine == "deepgram":
        return tag
    return None


def whisper_code_for(reported: str | None) -> str | None:
    """An OpenAI-compatible server's `language` (`english`, or a code such as `en`) as a code;
    None when it is missing or unknown."""
    if not reported:
        return None
    value = reported.strip().lower()
    if value in _WHISPER_BY_NAME:
        return _WHISPER_BY_NAME[value]
    if _TAG.match(value):
        return _whisper_code(value)
    return None
