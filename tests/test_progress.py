"""The progress line's estimate of the time left: a trial that trained a model for the cache is
paid once, so after the first two trials of a cold quickstart the estimate is the real time
left (it said 33 minutes when under 3 were left, from a pace that counted the first trial's
training for every trial)."""
import re
from types import SimpleNamespace

import pytest

from sweeps import progress
from sweeps.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _trial(i: int):
    return SimpleNamespace(trial_id=f"tune{i}", status="PENDING", config={},
                           custom_trial_name=f"t{i:03d}", last_result={})


def _left(line: str) -> float | None:
    m = re.search(r"about ([\d.]+) (s|min|h) left", line)
    if not m:
        return None
    return float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]


# three originals (evaluation only; the first also starts the worker: 20 s of imports and
# data), then three l2l trials
QUICK = [23.0, 3.0, 3.0] + [20.0] * 3
QUICK_EST = [2.6] * 3 + [15.1] * 3  # their dry-run estimates (sweeps/plan.py)


@pytest.mark.parametrize("side_by_side, durations, build, estimates, from_k", [
    # the cold quickstart as measured: one at a time; the first trains the classifier and the
    # original (100 s) and the cheap originals come before the l2l trials
    (1, QUICK, [100.0] + [0.0] * 5, QUICK_EST, 1),
    # two at a time, each of the first two trains an original of its own
    (2, [20.0] * 10, [80.0, 90.0] + [0.0] * 8, [15.0] * 10, 1),
    # without estimates (a search's points): every trial alike
    (1, [20.0] * 6, [200.0] + [0.0] * 5, None, 1),
])
def test_the_estimate_leaves_out_one_time_training(monkeypatch, capsys, side_by_side, durations,
                                                   build, estimates, from_k):
    """Within 30% of the real time left from the `from_k`-th finished trial on (0-based): the
    second of a quickstart."""
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    trials = [_trial(i) for i in range(len(durations))]
    est = None if estimates is None else {f"t{i:03d}": e for i, e in enumerate(estimates)}
    p = Progress(len(trials), estimates=est)
    lines, finish_at, started, running = [], {}, 0, []
    while started < len(trials) or running:
        while started < len(trials) and len(running) < side_by_side:
            t = trials[started]
            t.status = "RUNNING"
            p.on_trial_start(0, trials, t)
            finish_at[t.trial_id] = clock.now + durations[started] + build[started]
            t.last_result = {"build_seconds": build[started]}
            running.append(t)
            started += 1
        t = min(running, key=lambda x: finish_at[x.trial_id])
        clock.now = finish_at[t.trial_id]
        running.remove(t)
        t.status = "TERMINATED"
        p.on_trial_complete(0, trials, t)
        lines.append((clock.now, capsys.readouterr().out.strip().splitlines()[-1]))
    end = clock.now
    for k, (at, line) in enumerate(lines[:-1]):
        if k >= from_k:
            assert _left(line) == pytest.approx(end - at, rel=0.3), (k, line, end - at)
    assert _left(lines[-1][1]) is None  # nothing left: no estimate


def test_a_trial_started_before_a_resume_does_not_break_the_estimate(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    trials = [_trial(i) for i in range(3)]
    p = Progress(3)
    trials[0].status = "TERMINATED"  # its start was seen by the run before the resume
    p.on_trial_complete(0, trials, trials[0])
    assert "left" not in capsys.readouterr().out  # nothing measured yet: no guess


def _run(monkeypatch, capsys, durations, build, estimates, builds, ready=frozenset()):
    """Runs the trials one at a time through Progress; (time, line) after each."""
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    trials = [_trial(i) for i in range(len(durations))]
    p = Progress(len(trials), estimates={f"t{i:03d}": e for i, e in enumerate(estimates)},
                 builds={f"t{i:03d}": b for i, b in enumerate(builds)}, ready=ready)
    lines = []
    for t, d, b in zip(trials, durations, build):
        t.status = "RUNNING"
        p.on_trial_start(0, trials, t)
        clock.now += d + b
        t.last_result = {"build_seconds": b}
        t.status = "TERMINATED"
        p.on_trial_complete(0, trials, t)
        lines.append((clock.now, capsys.readouterr().out.strip().splitlines()[-1]))
    return clock.now, lines


# The shape of the GAN speedup grid: the originals' rows (evaluation only) first, then one
# retrain trial per forget set, each training a model of its own, then the unlearning trials.
GAN_DURATIONS = [8.0] * 3 + [8.0] * 6 + [20.0] * 12
GAN_BUILD = [0.0] * 3 + [300.0] * 6 + [0.0] * 12
GAN_EST = [9.0] * 3 + [9.0] * 6 + [22.0] * 12
GAN_BUILDS = [{"orig": 400.0}] * 3 + [{"orig": 400.0, f"re{i}": 400.0} for i in range(6)] \
    + [{"orig": 400.0, f"re{i % 6}": 400.0} for i in range(12)]


def test_models_still_to_train_are_in_the_estimate(monkeypatch, capsys):
    """The retrained models to come are counted once each: after the first retrain trial the
    estimate is the real time left (leaving them out said 24 min where 80 were left)."""
    end, lines = _run(monkeypatch, capsys, GAN_DURATIONS, GAN_BUILD, GAN_EST, GAN_BUILDS,
                      ready=frozenset({"orig"}))  # the original was trained before
    for k, (at, line) in enumerate(lines[:-1]):
        if k >= 3:  # from the first trial that trained a model on: measured build rate
            assert _left(line) == pytest.approx(end - at, rel=0.3), (k, line, end - at)
    # before any build was measured the estimate's own build seconds (400) stand in: it
    # already counts the six models (6 x 400 s), not only the trials' own seconds
    assert _left(lines[0][1]) > 6 * 300


def test_a_model_is_counted_once_and_not_after_a_trial_that_needed_it_finished(monkeypatch,
                                                                               capsys):
    # every trial needs the original; none is ready: it is charged once, to the next trial
    end, lines = _run(monkeypatch, capsys, [10.0] * 4, [100.0, 0.0, 0.0, 0.0], [10.0] * 4,
                      [{"orig": 100.0}] * 4)
    for at, line in lines[:-1]:  # after the first: the original is trained, 10 s a trial
        assert _left(line) == pytest.approx(end - at, rel=0.3)
