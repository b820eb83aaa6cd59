"""Where a long recording is cut (SPEC 16): in silences near the target, inside speech only when
a stretch of speech is longer than twice the target, and the pieces put back together are the
recording."""

from __future__ import annotations

import itertools
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from batchscribe.pipeline.split import EDGE_MARGIN_SECONDS, Analysis, PiecePlan, plan_pieces
from tests.strategies import speech_analyses

RATE = 16000


def _analysis(duration: float, regions: list[tuple[float, float]]) -> Analysis:
    frame = 0.03
    levels = array("f", [5.0] * (int(duration / frame) + 1))
    for start, end in regions:
        for index in range(int(start / frame), min(int(end / frame) + 1, len(levels))):
            levels[index] = 900.0
    return Analysis(round(duration * RATE), regions, levels, frame)


def _in_speech(cut: float, regions: list[tuple[float, float]]) -> tuple[float, float] | None:
    return next(((a, b) for a, b in regions if a < cut < b), None)


def test_a_meeting_is_cut_in_its_pauses_near_the_target() -> None:
    # Sentences of 8 s with 1 s pauses, for ten minutes.
    regions = [(t + 0.5, t + 8.5) for t in range(0, 600, 9)]
    plans = plan_pieces(_analysis(600.0, regions), 120.0)
    cuts = [plan.end / RATE for plan in plans[:-1]]
    assert all(_in_speech(cut, regions) is None for cut in cuts)
    assert not any(plan.cut_in_speech for plan in plans)
    # Full-size pieces first, the last stretch cut finer so the workers finish together.
    sizes = [plan.duration_seconds for plan in plans]
    assert all(abs(size - 120) <= 5 for size in sizes[:4]), sizes
    assert all(0.4 * 120 <= size <= 0.6 * 120 for size in sizes[4:]), sizes
    assert sum(sizes) == 600.0


def test_a_recording_shorter_than_the_target_is_one_piece() -> None:
    plans = plan_pieces(_analysis(100.0, [(1.0, 99.0)]), 120.0)
    assert plans == [PiecePlan(0, 100 * RATE)]


def test_speech_longer_than_twice_the_target_is_cut_at_its_quietest_moment() -> None:
    analysis = _analysis(400.0, [(0.5, 399.5)])
    levels = analysis.levels
    for index in range(int(118.0 / 0.03), int(118.3 / 0.03)):  # a breath near the target
        levels[index] = 50.0
    plans = plan_pieces(analysis, 120.0)
    assert plans[0].cut_in_speech
    assert 118.0 <= plans[0].end_seconds <= 118.3
    assert all(plan.duration_seconds <= 1.5 * 120 for plan in plans)


def test_speech_a_little_longer_than_the_target_waits_for_the_next_pause() -> None:
    # 200 s of speech from 60 s on: no pause near 120 s, but one within twice the target.
    regions = [(1.0, 59.0), (60.0, 260.0), (261.0, 400.0)]
    plans = plan_pieces(_analysis(400.0, regions), 120.0)
    assert not any(plan.cut_in_speech for plan in plans)
    assert all(_in_speech(plan.end_seconds, regions) is None for plan in plans)


@settings(max_examples=200, deadline=None)
@given(speech_analyses(), st.sampled_from([10.0, 60.0, 120.0]))
def test_cuts_fall_in_silence_unless_speech_runs_past_twice_the_target(
    analysis: Analysis, target: float
) -> None:
    plans = plan_pieces(analysis, target)
    # The pieces are the recording, in order, without gap or overlap.
    assert plans[0].start == 0
    assert plans[-1].end == analysis.samples
    assert all(a.end == b.start and a.end > a.start for a, b in itertools.pairwise(plans))
    for plan in plans[:-1]:
        cut = plan.end_seconds
        region = _in_speech(cut, analysis.regions)
        if not plan.cut_in_speech:
            assert region is None, (cut, region)
            # ... and off the edges of the speech around it.
            assert all(
                abs(cut - edge) >= min(EDGE_MARGIN_SECONDS, 0.15) - 1e-3
                for a, b in analysis.regions
                for edge in (a, b)
                if 0 < edge < analysis.duration_seconds
            ) or any(b - a < 2 * EDGE_MARGIN_SECONDS for a, b in _gaps(analysis))
        else:
            # Only a stretch of speech of twice the target is cut inside (give or take the
            # margin kept off the edges of a pause).
            assert region is not None, cut
            assert region[1] - region[0] > 2 * target - 1, (cut, region)
        assert plan.duration_seconds <= 2.5 * target + 1.0


def _gaps(analysis: Analysis) -> list[tuple[float, float]]:
    ends = [0.0] + [b for _, b in analysis.regions]
    starts = [a for a, _ in analysis.regions] + [analysis.duration_seconds]
    return list(zip(ends, starts, strict=True))


def test_only_engines_that_decode_locally_are_split() -> None:
    from types import SimpleNamespace

    from batchscribe.config import Settings
    from batchscribe.jobs.splitting import Splitter
    from batchscribe.pipeline.audio import AudioInfo

    settings = Settings(split_min_seconds=300)
    hour = AudioInfo("flac", "flac", 3600.0, 16000, 1)
    minute = AudioInfo("flac", "flac", 60.0, 16000, 1)

    def splitter(decodes_locally: bool) -> Splitter:
        engine = SimpleNamespace(decodes_locally=decodes_locally)
        runner = SimpleNamespace(settings=settings, transcriber=engine)
        return Splitter(runner, None)  # type: ignore[arg-type]

    job = None
    assert splitter(True).wants(job, hour)  # type: ignore[arg-type]
    assert not splitter(True).wants(job, minute)  # type: ignore[arg-type]
    # Deepgram and the OpenAI-compatible engine upload the file: never split into jobs' pieces
    # (Deepgram needs the whole recording to tell speakers apart).
    assert not splitter(False).wants(job, hour)  # type: ignore[arg-type]
