"""Resumable pretraining: a training loop saves its whole state after every epoch, and a later
build of the same cache entry (after a crash, a killed job, `l2l-sweep` interrupted) resumes
after the last finished epoch instead of from scratch.

The state is everything the rest of the run depends on: the weights, the optimiser and its
schedule, every random generator the loop draws from (its own and torch's global ones) and
whatever the loop keeps (its loss history, a codebook's usage counts), so that a resumed run
ends with exactly the weights of an uninterrupted one. The file lives next to the entry being
built (`<cache>/<kind>/<key>.partial.pt`), written atomically; it is read only by the process
that holds the entry's lock, and removed once the entry is stored.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("l2l.checkpoint")
# Bump when what a loop saves changes shape: a file of another format is not resumed from.
FORMAT = 2  # 2: TrainingMasks saved as its own state dict


def _get(obj) -> Any:
    return obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()


def _set(obj, state) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    else:
        obj.load_state_dict(state)


class Checkpoint:
    """Per-epoch state of one pretraining run. `objects` below: name -> a module, optimiser,
    schedule (anything with state_dict / load_state_dict) or torch.Generator. The file is read
    at the first `phase` or `resume`, that is by the loop, under the entry's lock."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._saved: dict | None = None
        self._read = False
        self._started: float | None = None
        # training seconds of the epochs finished before this run (0 when not resumed)
        self.resumed_seconds = 0.0

    def _load(self) -> dict | None:
        if not self._read:
            self._read = True
            if self.path is not None and self.path.is_file():
                try:
                    saved = torch.load(self.path, map_location="cpu", weights_only=True)
                except Exception as e:  # a torn or foreign file: start over rather than fail
                    log.warning("checkpoint %s is unreadable (%s); training from scratch",
                                self.path, e)
                else:
                    if isinstance(saved, dict) and saved.get("format") == FORMAT:
                        self._saved = saved
                    else:
                        log.warning("checkpoint %s was written by another version; training "
                                    "from scratch", self.path)
        return self._saved

    @property
    def phase(self) -> str | None:
        """The phase of the saved state (None: nothing saved)."""
        s = self._load()
        return None if s is None else s["phase"]

    def resume(self, phase: str, objects: dict[str, Any]) -> tuple[int, dict]:
        """Restores `objects` and torch's generators from the saved state of `phase`. Returns
        (epochs finished, the loop's extra state); (0, {}) when nothing of this phase is saved."""
        if self._started is None:
            self._started = time.perf_counter()
        s = self._load()
        if s is None or s["phase"] != phase or "objects" not in s:
            return 0, {}
        before = {name: copy.deepcopy(_get(obj)) for name, obj in objects.items()}
        try:
            for name, obj in objects.items():
                _set(obj, s["objects"][name])
        except Exception as e:  # a state that does not fit this loop: start over, unharmed
            for name, obj in objects.items():
                _set(obj, before[name])
            log.warning("checkpoint %s does not fit this training (%s); training from scratch",
                        self.path, e)
            return 0, {}
        torch.set_rng_state(s["rng"])
        if s.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["cuda_rng"])
        self.resumed_seconds = s["seconds"]
        log.info("resuming pretraining (%s) after epoch %d from %s", phase, s["epoch"],
                 self.path)
        return s["epoch"], s["extra"]

    def save(self, phase: str, epoch: int, objects: dict[str, Any], **extra) -> None:
        """The state after `epoch` finished epochs of `phase`; a no-op without a path."""
        if self.path is None:
            return
        now = time.perf_counter()
        seconds = self.resumed_seconds + now - (self._started or now)
        state = {"format": FORMAT, "phase": phase, "epoch": epoch, "extra": extra,
                 "seconds": seconds,
                 "objects": {name: _get(obj) for name, obj in objects.items()},
                 "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                 else None}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)  # a reader sees the previous epoch's file or this one
        self._saved = {"phase": phase, "epoch": epoch}  # not the live tensors: never resumed

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
