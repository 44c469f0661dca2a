"""Sharing a replica's GPU slots between jobs a denoising step at a time, the visitor served least first.

Without this, a job that holds the GPU keeps it to its end: one visitor's 2048², 16-step job makes every
ordinary visitor behind it wait for all of it. With time-sharing, Gradio lets a few more GPU jobs into
their handlers than there are slots (`FLUX_DEMO_GPU_TIMESHARE` per slot) and they take turns here:

* **Least attained service, per visitor.** A free slot goes to the waiting job whose visitor has held a
  slot least lately (seconds held, halved every `HALF_LIFE_S`), then to the job that has held one least,
  then the earliest. A job with no visitor (a script, a test) counts as its own visitor. Short jobs
  finish first without anyone knowing in advance which jobs are short, and a visitor's second job goes
  behind other visitors' first ones, as in Gradio's waiting list (`services.admission.FairOrder`).
* **Passing the turn.** Between two denoising steps a running job asks `due(turn)`: when a job of
  another visitor waits whose visitor has held a slot at least `QUANTUM_S` less lately, the running job
  passes its slot to that job (`pass_turn`) and waits for its next turn. What the pipeline and its
  scheduler keep per call is saved before and put back after (`PausedCall`), so the paused run goes on
  exactly where it stopped and gives the same pixels.
* **Stop while waiting.** A job that waits for a turn leaves as soon as its visitor stops it.

Admission (`services.admission`) already bounds what a visitor can queue; this only decides who runs
next among the jobs let in. Pausing a call needs the pipeline's modules to stay where they are, so only
replicas whose models sit whole on one device (CPU, or a GPU in the "gpu" memory mode) pass turns; on
ZeroGPU every call is its own GPU task and nothing is shared.
"""

from __future__ import annotations

import contextvars
import copy
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

QUANTUM_S = 0.5  # a running job passes its turn only to a visitor who has held a slot this much less
HALF_LIFE_S = 60.0  # how fast a visitor's time on the GPU is forgotten

# The visitor a pipeline call runs for, set by the front end around each handler call (`ui.endpoints`)
# and read when the job is made (`generation.generate`); None outside a web request.
VISITOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("flux_demo_visitor", default=None)
_POLL_S = 0.2  # how often a waiting job looks at its Stop flag

# What diffusers' FLUX pipelines set on themselves in `__call__` (tests/test_turns.py reads every served
# pipeline class's `__call__` to check that this list is complete).
CALL_ATTRIBUTES = (
    "_guidance_scale",
    "_joint_attention_kwargs",
    "_attention_kwargs",
    "_current_timestep",
    "_interrupt",
    "_num_timesteps",
)

_sequence = itertools.count()


@dataclass(eq=False)
class Turn:
    """One job's place in the turns of a replica: how long it has held a slot, and whether it holds one."""

    key: str  # the model it runs
    visitor: str | None = None
    served_s: float = 0.0  # time it has held a slot, up to its last pass
    holding: bool = False
    started: float = 0.0  # when it last got a slot
    granted: bool = False  # a slot has been handed to it and it has not taken it yet
    passes: int = 0  # how many times it let another job go first
    order: int = field(default_factory=lambda: next(_sequence))

    @property
    def group(self) -> object:
        """Whose time it counts against: its visitor, or the job itself when it has none."""
        return self.visitor if self.visitor is not None else self


class Cancelled(Exception):
    """The job was stopped while it waited for a turn."""


class Turns:
    """The GPU slots of one replica (see the module docstring). `timeshare` False: a job keeps its slot
    to its end (the order of the waiting jobs is still least served first)."""

    def __init__(self, slots: int, timeshare: bool = True, clock: Callable[[], float] = time.monotonic):
        self.timeshare, self._clock = timeshare, clock
        self._cond = threading.Condition()
        self._free = slots
        self._waiting: list[Turn] = []
        self._holding: list[Turn] = []
        self._history: dict[object, tuple[float, float]] = {}  # group -> (seconds held, as of when)

    # --- taking and giving back a slot --------------------------------------------------------------

    def take(self, key: str, abandoned: Callable[[], bool] | None = None, visitor: str | None = None) -> Turn:
        """Wait for a slot for `visitor`'s job on `key`; raises `Cancelled` once `abandoned()` is true."""
        turn = Turn(key, visitor)
        self._wait_for_slot(turn, abandoned)
        return turn

    def give_back(self, turn: Turn) -> None:
        """The job ends: its slot goes to the waiting job served least."""
        with self._cond:
            if turn.holding:
                self._stop_holding(turn)
            if turn.visitor is None:  # a job without a visitor leaves no history behind
                self._history.pop(turn, None)
            self._hand_over(self._waiting)

    def due(self, turn: Turn, eligible: Callable[[Turn], bool] | None = None) -> bool:
        """Should the running job of `turn` let a waiting job (one that `eligible` accepts) go first now?"""
        if not self.timeshare or not self._waiting:  # unlocked peek: the common case costs nothing
            return False
        with self._cond:
            return self._successor(turn, eligible) is not None

    def pass_turn(
        self,
        turn: Turn,
        abandoned: Callable[[], bool] | None = None,
        eligible: Callable[[Turn], bool] | None = None,
    ) -> bool:
        """If a job is `due`, hand it this slot and wait for the next turn (True); else return at once
        (False). Raises `Cancelled` if the job is stopped while it waits; it then holds no slot."""
        with self._cond:
            successor = self._successor(turn, eligible) if self.timeshare else None
            if successor is None:
                return False
            self._stop_holding(turn)
            self._hand_over([successor])
        turn.passes += 1
        self._wait_for_slot(turn, abandoned)
        return True

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # --- inside the lock ------------------------------------------------------------------------------

    def _usage(self, group: object, now: float) -> float:
        """Seconds `group` has held a slot lately: its decayed history and what its jobs hold now."""
        return self._recent(group, now) + sum(now - t.started for t in self._holding if t.group == group)

    def _recent(self, group: object, now: float) -> float:
        """`group`'s seconds held up to its last turn, halved every HALF_LIFE_S since."""
        held, when = self._history.get(group, (0.0, now))
        return held * 0.5 ** ((now - when) / HALF_LIFE_S)

    def _rank(self, now: float):
        return lambda w: (self._usage(w.group, now), w.served_s, w.order)

    def _successor(self, turn: Turn, eligible: Callable[[Turn], bool] | None = None) -> Turn | None:
        """The waiting job of another visitor that should run before `turn` goes on, if any."""
        now = self._clock()
        candidates = [
            w
            for w in self._waiting
            if not w.granted and w.group != turn.group and (eligible is None or eligible(w))
        ]
        if not candidates:
            return None
        best = min(candidates, key=self._rank(now))
        due = self._usage(best.group, now) + QUANTUM_S <= self._usage(turn.group, now)
        return best if due else None

    def _stop_holding(self, turn: Turn) -> None:
        now = self._clock()
        held = now - turn.started
        turn.served_s += held
        turn.holding = False
        self._holding.remove(turn)
        self._free += 1
        self._history[turn.group] = (self._recent(turn.group, now) + held, now)
        for group in list(self._history):  # forget visitors long gone
            if self._recent(group, now) < 0.01:
                del self._history[group]

    def _hand_over(self, among: list[Turn]) -> None:
        """Reserve the free slots for the best of `among` (they take them in `_wait_for_slot`)."""
        candidates = sorted((w for w in among if not w.granted), key=self._rank(self._clock()))
        reserved = sum(w.granted for w in self._waiting)
        for waiter in candidates[: max(self._free - reserved, 0)]:
            waiter.granted = True
        self._cond.notify_all()

    def _wait_for_slot(self, turn: Turn, abandoned: Callable[[], bool] | None) -> None:
        with self._cond:
            self._waiting.append(turn)
            self._hand_over(self._waiting)
            try:
                while not turn.granted:
                    if abandoned is not None and abandoned():
                        raise Cancelled()
                    self._cond.wait(_POLL_S if abandoned is not None else None)
            except BaseException:
                self._waiting.remove(turn)
                if turn.granted:  # a slot was reserved for it: hand it on
                    turn.granted = False
                    self._hand_over(self._waiting)
                raise
            self._waiting.remove(turn)
            turn.granted = False
            turn.holding, turn.started = True, self._clock()
            self._holding.append(turn)
            self._free -= 1


class PausedCall:
    """What one pipeline call keeps on the shared pipeline object and its scheduler (guidance, the
    timesteps and sigmas, the step index...), saved when the call passes its turn. Another call of the
    same model overwrites it while this one waits; `restore` puts it back before the next step."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.attributes = {name: pipe.__dict__[name] for name in CALL_ATTRIBUTES if name in pipe.__dict__}
        self.scheduler = copy.deepcopy(vars(pipe.scheduler))  # a few small tensors and integers

    def restore(self) -> None:
        self.pipe.__dict__.update(self.attributes)
        state = vars(self.pipe.scheduler)
        state.clear()
        state.update(self.scheduler)
