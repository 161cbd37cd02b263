"""What happens between unlearning steps, one mechanism for both families:

  the forgetting curve   `eval.every`: the family's evaluation (TrialSteps.curve) on the
                         trial's evaluation sets before the first step and after every N steps,
                         kept as rows with a `step` (l2l/result.py);
  a stopping rule        the GAN family's `unlearn.stop_every` (l2l/gan/stopping.py): a check
                         after every N rounds and after the budget's last; True ends unlearning.

A method calls `ctx.after_step(model)` after each step (`last=True` after its budget's last)
and stops when it returns True. A measurement runs with the model in eval mode, without
gradients, with the global random state saved and restored, and its time is left out of the
unlearning seconds: so a trial unlearns the same way, to the same final metrics in the same
time, whether or not it is measured along the way.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import torch

from l2l.result import MetricValue

Curve = Callable[[torch.nn.Module], list]  # model -> [MetricValue] of the curve's metrics
Check = Callable[[torch.nn.Module], bool]  # model -> whether unlearning may stop


def due(step: int, every: int | None, last: bool = False) -> bool:
    """Whether a measurement taken every `every` steps falls after `step` (counted from 1);
    `last`: also after the budget's last step, so that a budget shorter than `every` (a small
    request's) is still measured."""
    return bool(every) and (step % every == 0 or last)


class Monitor:
    """The curve and the stopping rule of one unlearning run (a TrialContext holds one)."""

    def __init__(self):
        self.step = 0  # steps done
        self.points: list[MetricValue] = []  # the curve's values, each with its step
        self.reached = False  # what the stopping rule's last check said
        self._curve: tuple[int, Curve] | None = None
        self._stop: tuple[int, Check] | None = None

    def measure_every(self, every: int, curve: Curve, model, ctx) -> None:
        """Measures `curve` now (step 0: the model unlearning starts from) and every `every`
        steps after."""
        self._curve = (every, curve)
        self._record(model, ctx)

    def stop_every(self, every: int, check: Check) -> None:
        self._stop = (every, check)

    def after_step(self, model, ctx, last: bool = False) -> bool:
        self.step += 1
        stop = False
        if self._stop and due(self.step, self._stop[0], last):
            stop = self.reached = bool(measured(model, ctx, self._stop[1]))
        if self._curve and due(self.step, self._curve[0]) and not (last or stop):
            self._record(model, ctx)  # the last step's values are the final evaluation's
        return stop

    def curve_rows(self) -> list[MetricValue]:
        """The curve's values when any step was taken (a method without steps, such as
        `original` or a cached `retrain`, has no curve)."""
        return self.points if self.step else []

    def _record(self, model, ctx) -> None:
        values = measured(model, ctx, self._curve[1])
        self.points += [replace(m, step=self.step) for m in values]


def measured(model, ctx, fn):
    """fn(model) in eval mode without gradients, the global random state and each module's
    train/eval mode restored after, its seconds added to `ctx.excluded_seconds`."""
    t0 = time.perf_counter()
    modes = [(m, m.training) for m in model.modules()]
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            return fn(model)
    finally:
        for m, training in modes:
            m.training = training
        ctx.excluded_seconds += time.perf_counter() - t0
