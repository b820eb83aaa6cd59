"""The transcript model: timed pieces, turns built from them, and what crosses process borders."""

from __future__ import annotations

import pickle

from batchscribe.pipeline.cleaners.rules import RulesCleaner
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript, Word

HELLO = Segment(
    7,
    "hello there",
    0.5,
    1.25,
    (Word("hello", 0.5, 0.9, 0.8), Word("there", 0.9, 1.25, None)),
)
AGAIN = Segment(7, "and again", 2.0, 2.75, (Word("and", 2.0, 2.3, 0.5), Word("again", 2.3, 2.75)))
REPLY = Segment(3, "hi", 3.0, 3.5, (Word("hi", 3.0, 3.5, 0.99),))


def test_engine_pieces_keep_their_times_and_words_and_speakers_are_renumbered() -> None:
    transcript = Transcript.from_engine([HELLO, AGAIN, REPLY], 4.0, "sphinx", "en")

    assert [u.speaker for u in transcript.utterances] == [0, 0, 1]
    assert [(u.start, u.end) for u in transcript.utterances] == [
        (0.5, 1.25),
        (2.0, 2.75),
        (3.0, 3.5),
    ]
    assert transcript.utterances[0].words == HELLO.words
    assert transcript.language == "en"


def test_a_turn_spans_its_first_piece_start_to_its_last_piece_end() -> None:
    transcript = Transcript.from_engine([HELLO, AGAIN, REPLY], 4.0, "sphinx")

    first, second = transcript.segments
    assert (first.start, first.end) == (0.5, 2.75)
    assert [w.text for w in first.words] == ["hello", "there", "and", "again"]
    assert (second.label, second.start, second.end) == ("SPEAKER_1", 3.0, 3.5)
    # The contract's text form is unchanged by the times.
    assert transcript.raw_text == "SPEAKER_0: hello there and again\nSPEAKER_1: hi"


def test_engines_without_timing_still_give_the_same_text() -> None:
    transcript = Transcript.from_engine([Segment(2, "one"), Segment(2, "two")], 4.0, "openai")

    assert transcript.raw_text == "SPEAKER_0: one two"
    assert transcript.segments[0].start is None
    assert transcript.segments[0].end is None
    assert transcript.language is None


def test_transcript_and_cleaning_survive_pickling() -> None:
    # The transcript comes back from a worker process; a cleaning result may be queued too.
    transcript = Transcript.from_engine([HELLO, AGAIN, REPLY], 4.0, "sphinx", "en")
    cleaning = RulesCleaner().clean_transcript(transcript)

    # Our own bytes, as the process pool exchanges them.
    assert pickle.loads(pickle.dumps(transcript)) == transcript  # noqa: S301
    restored = pickle.loads(pickle.dumps(cleaning))  # noqa: S301
    assert restored == cleaning
    assert isinstance(restored, CleaningResult)
    assert restored.segments[0].words[0] == Word("hello", 0.5, 0.9, 0.8)
