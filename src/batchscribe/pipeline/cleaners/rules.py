"""The embedded cleaner: deterministic rules, no model, no network.

What it does, sentence by sentence (a sentence is one engine utterance, further split after
`.`, `?` or `!`):

1. removes fillers (um, uh, er, ah, hmm, mm-hmm, uh-huh...),
2. collapses stutters (`I-I` -> `I`, `th-the` -> `the`),
3. collapses immediate repetitions (`the the` -> `the`), except words whose doubling is usually
   meant (`had had`, `that that`, `bye bye`, `no no`...) and words followed by punctuation
   (`no, no`),
4. capitalises the sentence start and a standalone `i`, and ends the sentence with `.` unless it
   already ends with `.`, `?` or `!`.

It never invents a word and never drops a content word, keeps every speaker label and the turn
order, and is idempotent: cleaning its own output changes nothing. A turn made only of fillers
(a lone "Mm-hmm.") is kept rather than emptied, so no turn disappears.

Every rule works inside one sentence, and every sentence lies inside one engine utterance, so
each utterance is cleaned on its own and keeps its times: `CleaningResult.segments` gives the
cleaned text of every utterance (what a subtitle cue shows), and a turn of the cleaned
transcript is its utterances' cleaned texts joined by spaces. An utterance of fillers alone
cleans to "" (no cue) unless its whole turn is fillers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from batchscribe.pipeline.types import (
    CleaningResult,
    Segment,
    Transcript,
    format_turns,
    renumber,
)

logger = logging.getLogger(__name__)

FILLERS = frozenset(
    {
        "um", "umm", "ummm", "uhm", "uh", "uhh", "uhhh", "er", "erm", "ah", "ahh",
        "hmm", "hmmm", "hm", "mmm", "mhm", "mm-hmm", "mm-hm", "uh-huh",
    }
)  # fmt: skip
#: Words whose immediate repetition is usually grammatical or meant ("I had had enough",
#: "bye bye", "no no no"); they are never collapsed, as a repetition or as a stutter.
KEEP_DOUBLED = frozenset(
    {
        "had", "that", "is", "bye", "no", "yes", "yeah", "very", "really", "so", "ha", "haha",
        "knock", "tut", "hush", "uh-uh", "twenty", "nineteen", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "two", "four",
        "go", "well", "now", "night", "pooh", "chop", "choo", "la", "blah", "tsk",
    }
)  # fmt: skip
#: Up to this many words the cleaner runs inline in the event loop (about 4 ms).
_INLINE_WORDS = 1000
_FIRST_PERSON = frozenset({"i", "i'm", "i'll", "i've", "i'd"})
_SENTENCE_END = re.compile(r"[.?!\u2026]+[\"')\]]*(?=\s)")
_TERMINAL = re.compile(r"[.?!\u2026]+[\"')\]]*$")
_WORD = re.compile(r"^[\w'\u2019-]*\w[\w'\u2019-]*$")  # a bare word: letters, digits, ' and -
_EDGE_PUNCT = "\"'()[]{},;:.?!\u2026\u2019-"


class _Counts:
    """What a cleaning pass changed (reported in `CleaningResult.details`)."""

    def __init__(self) -> None:
        self.counter: Counter[str] = Counter()


def _key(token: str) -> str:
    """A token's comparison form: lower case, outer punctuation stripped."""
    return token.strip(_EDGE_PUNCT).lower()


def _is_filler(token: str) -> bool:
    letters = token.strip(_EDGE_PUNCT)
    # An all-capitals token ("ER", "AH") is an acronym, not a hesitation.
    if len(letters) > 1 and letters.isupper():
        return False
    return letters.lower() in FILLERS


def _collapse_stutter(token: str) -> str:
    """`th-the` -> `the`, `I-I-I` -> `I`; any other hyphenated word is left alone."""
    if "-" not in token or not _WORD.match(token):
        return token
    parts = token.split("-")
    last = parts[-1]
    low = last.lower()
    if not last or low in KEEP_DOUBLED or token.lower() in KEEP_DOUBLED or _is_filler(last):
        return token
    if all(part and low.startswith(part.lower()) for part in parts[:-1]):
        return last
    return token


def _clean_words(tokens: list[str], *, drop_fillers: bool, counts: _Counts) -> list[str]:
    """Fillers out, stutters and repetitions collapsed, in that order (so `the um the` and
    `the th-the` both end as `the`, and no second pass finds anything left to do)."""
    if drop_fillers:
        kept = [tok for tok in tokens if not _is_filler(tok)]
        counts.counter["fillers_removed"] += len(tokens) - len(kept)
        tokens = kept
    collapsed = []
    for tok in tokens:
        new = _collapse_stutter(tok)
        if new != tok:
            counts.counter["stutters_collapsed"] += 1
        collapsed.append(new)
    out: list[str] = []
    for tok in collapsed:
        prev = out[-1] if out else None
        if (
            prev is not None
            and _WORD.match(prev)  # "no, no" keeps both: the comma marks intent
            and tok[:1].isalnum()
            and _key(tok) == prev.lower()
            and prev.lower() not in KEEP_DOUBLED
        ):
            # Keep the first spelling, carry the last one's trailing punctuation.
            out[-1] = prev + tok[len(tok.rstrip(_EDGE_PUNCT)) :]
            counts.counter["repetitions_removed"] += 1
            continue
        out.append(tok)
    return out


def _capitalise(tokens: list[str]) -> list[str]:
    out = []
    for index, tok in enumerate(tokens):
        if _key(tok) in _FIRST_PERSON:
            tok = re.sub(r"(?<![\w'])i(?=$|[^\w]|['\u2019])", "I", tok, count=1)
        if index == 0:
            letters = [ch for ch in tok if ch.isalpha()]
            # Only an all-lower-case word: "iPhone" and "eBay" keep their spelling.
            if letters and all(ch.islower() for ch in letters):
                pos = next(i for i, ch in enumerate(tok) if ch.isalpha())
                upper = tok[pos].upper()
                # Not "ß" -> "SS" nor micro sign -> Greek capital: the word must stay the same.
                if len(upper) == 1 and upper.lower() == tok[pos]:
                    tok = tok[:pos] + upper + tok[pos + 1 :]
        out.append(tok)
    return out


def clean_sentence(
    sentence: str, *, drop_fillers: bool = True, counts: _Counts | None = None
) -> str:
    """One sentence cleaned and punctuated; "" when nothing but fillers was in it."""
    counts = counts or _Counts()
    sentence = sentence.strip()
    terminal_match = _TERMINAL.search(sentence)
    terminal = terminal_match.group(0) if terminal_match else ""
    body = sentence[: len(sentence) - len(terminal)]
    tokens = _clean_words(body.split(), drop_fillers=drop_fillers, counts=counts)
    text = " ".join(tokens).lstrip(",;: ").rstrip(",;:-\u2013\u2014 ")
    if not any(ch.isalnum() for ch in text):
        return ""
    text = " ".join(_capitalise(text.split())) + terminal
    # "really?," loses its comma above and already ends a sentence.
    return text if _TERMINAL.search(text) else text + "."


def split_sentences(text: str) -> list[str]:
    """Sentences of one piece of text: breaks after `.`, `?`, `!` (and closing quotes)."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def clean_pieces(pieces: Sequence[str], counts: _Counts | None = None) -> list[str]:
    """One speaker turn, given as its pieces (utterances or lines, each a sentence break),
    cleaned piece by piece: one text per piece, "" for a piece that held only fillers.

    A turn made only of fillers keeps them rather than disappear; a turn with nothing to
    clean at all (punctuation only) keeps its pieces with their whitespace normalised.
    """
    counts = counts or _Counts()
    sentences = [split_sentences(piece) for piece in pieces]
    cleaned = [[c for c in (clean_sentence(s, counts=counts) for s in ss) if c] for ss in sentences]
    if not any(cleaned):
        # Only fillers (a lone "Mm-hmm"): keep them rather than lose the turn.
        cleaned = [
            [c for c in (clean_sentence(s, drop_fillers=False) for s in ss) if c]
            for ss in sentences
        ]
        counts.counter["filler_turns_kept"] += 1
    counts.counter["sentences"] += sum(len(piece) for piece in cleaned)
    if not any(cleaned):
        return [" ".join(piece.split()) for piece in pieces]
    return [" ".join(piece) for piece in cleaned]


def clean_turn(pieces: Iterable[str], counts: _Counts | None = None) -> str:
    """One speaker turn from its pieces (utterances or lines), each a sentence break."""
    return " ".join(text for text in clean_pieces(list(pieces), counts) if text)


def _group_turns(utterances: list[Segment]) -> list[list[Segment]]:
    """Adjacent utterances of one speaker form a turn, as in `Transcript.segments`."""
    turns: list[list[Segment]] = []
    for seg in renumber(utterances, merge=False):
        if turns and turns[-1][0].speaker == seg.speaker:
            turns[-1].append(seg)
        else:
            turns.append([seg])
    return turns


class RulesCleaner:
    """`CLEANER=rules`: the deterministic embedded cleaner (see the module docstring)."""

    name = "rules"

    def clean_transcript(self, transcript: Transcript) -> CleaningResult:
        """Clean using the engine's utterances as sentence breaks. Pure CPU, milliseconds.

        Each utterance is cleaned on its own, so the result carries every utterance's cleaned
        text beside its times; a turn's text is its utterances' cleaned texts joined by spaces.
        """
        counts = _Counts()
        turns: list[Segment] = []
        cleaned: list[Segment] = []
        for pieces in _group_turns(transcript.utterances):
            texts = clean_pieces([piece.text for piece in pieces], counts)
            cleaned.extend(piece.with_text(text) for piece, text in zip(pieces, texts, strict=True))
            turns.append(Segment(pieces[0].speaker, " ".join(text for text in texts if text)))
        return CleaningResult(
            format_turns(turns), self.name, details=dict(counts.counter), segments=tuple(cleaned)
        )

    async def clean(self, transcript: Transcript) -> CleaningResult:
        """The `Cleaner` entry point. Never raises: on a bug it returns the raw text, degraded."""
        try:
            words = sum(len(seg.text.split()) for seg in transcript.utterances)
            if words <= _INLINE_WORDS:
                return self.clean_transcript(transcript)
            # An hour of talk (~10k words) takes ~40 ms: off the loop, so /healthz stays quick
            # (the GIL switches threads every few ms).
            return await asyncio.to_thread(self.clean_transcript, transcript)
        except Exception:
            logger.exception("rules cleaner failed; returning the raw transcript")
            return CleaningResult(
                transcript.raw_text, self.name, degraded=True, reason="cleaner_error"
            )

    async def aclose(self) -> None:
        """Nothing to release."""
