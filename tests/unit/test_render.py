"""Transcripts rendered as text, SRT, WebVTT and verbose JSON, read back by independent parsers
(`srt` for SubRip, `webvtt-py` for WebVTT)."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import srt
import webvtt

from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.render import (
    ResponseFormat,
    cues,
    segments_json,
    to_srt,
    to_text,
    to_verbose_json,
    to_vtt,
)
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript, Word

CLEANER = RulesCleaner()


def meeting() -> tuple[Transcript, CleaningResult]:
    transcript = Transcript.from_engine(
        [
            Segment(
                4,
                "um so the budget is approved",
                0.42,
                2.5,
                (
                    Word("um", 0.42, 0.6, 0.4),
                    Word("so", 0.6, 0.8, 0.9),
                    Word("the", 0.8, 0.9, 0.95),
                    Word("budget", 0.9, 1.4, 0.7),
                    Word("is", 1.4, 1.6, 0.99),
                    Word("approved", 1.6, 2.5, 0.81234),
                ),
            ),
            Segment(
                9, "uh great thanks", 3.0, 4.2, (Word("great", 3.2, 3.7), Word("thanks", 3.7, 4.2))
            ),
            Segment(4, "let's ship it", 5.1, 6.05, ()),
        ],
        7.0,
        "sphinx",
        "en",
    )
    return transcript, CLEANER.clean_transcript(transcript)


def vtt_captions(text: str) -> list[webvtt.Caption]:
    return list(webvtt.from_string(text))


def test_srt_has_one_cue_per_utterance_with_the_speaker_and_the_cleaned_text() -> None:
    transcript, cleaning = meeting()

    rendered = to_srt(transcript, cleaning)
    subtitles = list(srt.parse(rendered))

    assert [(s.index, s.start, s.end, s.content) for s in subtitles] == [
        (
            1,
            timedelta(seconds=0.42),
            timedelta(seconds=2.5),
            "SPEAKER_0: So the budget is approved.",
        ),
        (2, timedelta(seconds=3.0), timedelta(seconds=4.2), "SPEAKER_1: Great thanks."),
        (3, timedelta(seconds=5.1), timedelta(seconds=6.05), "SPEAKER_0: Let's ship it."),
    ]
    # Written exactly as the srt library writes it.
    assert srt.compose(subtitles) == rendered


def test_vtt_has_one_cue_per_utterance_with_a_voice_span() -> None:
    transcript, cleaning = meeting()

    rendered = to_vtt(transcript, cleaning)
    captions = vtt_captions(rendered)

    assert rendered.startswith("WEBVTT\n\n00:00:00.420 --> 00:00:02.500\n<v SPEAKER_0>So the")
    assert [(c.start, c.end, c.voice, c.text) for c in captions] == [
        ("00:00:00.420", "00:00:02.500", "SPEAKER_0", "So the budget is approved."),
        ("00:00:03.000", "00:00:04.200", "SPEAKER_1", "Great thanks."),
        ("00:00:05.100", "00:00:06.050", "SPEAKER_0", "Let's ship it."),
    ]


def test_text_is_the_cleaned_transcript() -> None:
    _, cleaning = meeting()
    assert to_text(cleaning) == cleaning.text
    assert to_text(cleaning).startswith("SPEAKER_0: So the budget is approved.\nSPEAKER_1: ")


def test_cue_text_never_breaks_the_format() -> None:
    # Text a hosted engine or a language model could send: blank lines, arrows, markup.
    nasty = "first line\n\nsecond --> third ---> <b>bold</b> & 1 < 2\r\n"
    transcript = Transcript.from_engine([Segment(0, nasty, 1.0, 2.0)], 3.0, "openai")
    cleaning = CleaningResult(transcript.raw_text, "openai")  # no per-utterance text

    subtitles = list(srt.parse(to_srt(transcript, cleaning)))
    captions = vtt_captions(to_vtt(transcript, cleaning))

    expected = "first line second -> third -> <b>bold</b> & 1 < 2"
    assert [s.content for s in subtitles] == [f"SPEAKER_0: {expected}"]
    assert len(captions) == 1
    assert html.unescape(captions[0].text) == expected
    assert captions[0].voice == "SPEAKER_0"


def test_an_utterance_left_empty_by_cleaning_gets_no_cue() -> None:
    transcript = Transcript.from_engine(
        [Segment(0, "we agree", 0.0, 1.0), Segment(0, "um uh", 1.5, 2.0)], 2.0, "sphinx"
    )
    cleaning = CLEANER.clean_transcript(transcript)

    assert [c.text for c in cues(transcript, cleaning)] == ["We agree."]
    assert len(list(srt.parse(to_srt(transcript, cleaning)))) == 1
    assert len(vtt_captions(to_vtt(transcript, cleaning))) == 1
    assert [s["text"] for s in to_verbose_json(transcript, cleaning)["segments"]] == ["We agree."]


def test_without_engine_times_cues_are_laid_out_in_order_over_the_recording() -> None:
    transcript = Transcript.from_engine(
        [Segment(0, "one two three"), Segment(1, "four")], 8.0, "deepgram"
    )
    cleaning = CLEANER.clean_transcript(transcript)

    subtitles = list(srt.parse(to_srt(transcript, cleaning)))

    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subtitles] == [
        (0.0, 6.0),
        (6.0, 8.0),
    ]
    assert [c.voice for c in vtt_captions(to_vtt(transcript, cleaning))] == [
        "SPEAKER_0",
        "SPEAKER_1",
    ]
    # The JSON result does not pretend: no times from the engine, none in the segments.
    assert [(s["start"], s["end"]) for s in segments_json(transcript, cleaning)] == [
        (None, None),
        (None, None),
    ]


def test_a_recording_without_speech_gives_empty_subtitles() -> None:
    transcript = Transcript.from_engine([], 2.0, "sphinx", "en")
    cleaning = CLEANER.clean_transcript(transcript)

    assert to_srt(transcript, cleaning) == ""
    assert list(srt.parse(to_srt(transcript, cleaning))) == []
    assert vtt_captions(to_vtt(transcript, cleaning)) == []
    assert to_verbose_json(transcript, cleaning)["segments"] == []


def test_times_past_an_hour_are_written_in_hours() -> None:
    transcript = Transcript.from_engine([Segment(0, "late", 3725.5, 3726.25)], 3727.0, "sphinx")
    cleaning = CLEANER.clean_transcript(transcript)

    assert "01:02:05,500 --> 01:02:06,250" in to_srt(transcript, cleaning)
    assert vtt_captions(to_vtt(transcript, cleaning))[0].start == "01:02:05.500"


def test_verbose_json_is_openai_shaped_with_speakers_and_words() -> None:
    transcript, cleaning = meeting()

    body = json.loads(json.dumps(to_verbose_json(transcript, cleaning)))

    assert body["task"] == "transcribe"
    assert body["language"] == "en"
    assert body["duration"] == 7.0
    assert body["text"] == cleaning.text
    assert body["segments"][0] == {
        "id": 0,
        "start": 0.42,
        "end": 2.5,
        "text": "So the budget is approved.",
        "speaker": "SPEAKER_0",
    }
    assert [s["id"] for s in body["segments"]] == [0, 1, 2]
    assert body["words"][5] == {
        "word": "approved",
        "start": 1.6,
        "end": 2.5,
        "confidence": 0.812,
        "speaker": "SPEAKER_0",
    }
    # A word without a confidence has no confidence key; the third utterance had no words.
    assert body["words"][6] == {"word": "great", "start": 3.2, "end": 3.7, "speaker": "SPEAKER_1"}
    assert len(body["words"]) == 8


def test_json_segments_carry_cleaned_text_and_engine_words() -> None:
    transcript, cleaning = meeting()

    segments = segments_json(transcript, cleaning)

    assert segments[1] == {
        "speaker": "SPEAKER_1",
        "start": 3.0,
        "end": 4.2,
        "text": "Great thanks.",
        "words": [
            {"word": "great", "start": 3.2, "end": 3.7},
            {"word": "thanks", "start": 3.7, "end": 4.2},
        ],
    }
    assert segments[2]["words"] == []


def test_response_formats_are_the_contract_names() -> None:
    assert [f.value for f in ResponseFormat] == ["json", "text", "srt", "vtt", "verbose_json"]
