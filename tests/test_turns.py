"""GPU slots shared a step at a time (`flux_demo.pipelines.turns`): the order, passing a turn, Stop while
waiting, and, on real tiny pipelines, that a paused call gives the same pixels and word maps."""

from __future__ import annotations

import inspect
import re
import threading
import time

import numpy as np
import pytest

from flux_demo import generation
from flux_demo.models import MODELS, get_spec
from flux_demo.pipelines import turns
from flux_demo.pipelines.turns import QUANTUM_S, Cancelled, Turns
from flux_demo.validation import GenerationRequest, validate
from flux_demo.watching import trajectory


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def in_thread(fn, *args):
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as err:  # handed to the test
            box["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# --- the order of turns ------------------------------------------------------------------------------


def test_a_job_passes_its_turn_to_one_that_has_held_the_slot_less():
    clock = Clock()
    slots = Turns(1, clock=clock)
    long = slots.take("a")
    thread, box = in_thread(slots.take, "b")
    wait_until(lambda: slots.waiting == 1)
    clock.now += QUANTUM_S / 2
    assert not slots.due(long), "held for less than the quantum: it goes on"
    clock.now += QUANTUM_S
    assert slots.due(long)

    passer, passed = in_thread(slots.pass_turn, long)
    thread.join(5)
    short = box["value"]
    assert short.holding and not long.holding
    clock.now += 0.1
    assert not slots.due(short), "the paused job has held the slot longer: the short one goes on"
    slots.give_back(short)
    passer.join(5)
    assert passed["value"] is True and long.holding and long.passes == 1
    assert long.served_s == pytest.approx(1.5 * QUANTUM_S)
    slots.give_back(long)
    assert slots.take("c").holding


def test_without_waiting_jobs_or_with_timesharing_off_nobody_passes():
    clock = Clock()
    slots = Turns(1, clock=clock)
    turn = slots.take("a")
    clock.now += 60
    assert not slots.due(turn) and slots.pass_turn(turn) is False and turn.holding

    fixed = Turns(1, timeshare=False, clock=clock)
    first = fixed.take("a")
    thread, box = in_thread(fixed.take, "b")
    wait_until(lambda: fixed.waiting == 1)
    clock.now += 60
    assert not fixed.due(first) and fixed.pass_turn(first) is False
    fixed.give_back(first)
    thread.join(5)
    assert box["value"].holding


def test_a_free_slot_goes_to_the_job_served_least_then_the_earliest():
    clock = Clock()
    slots = Turns(1, clock=clock)
    running = slots.take("a")
    new_b, b = in_thread(slots.take, "b")
    wait_until(lambda: slots.waiting == 1)
    new_c, c = in_thread(slots.take, "c")
    wait_until(lambda: slots.waiting == 2)
    clock.now += 10
    # The running job (10 s served) passes to `b`; then it waits beside `c` (0 s served), who goes first.
    paused_thread, paused = in_thread(slots.pass_turn, running)
    new_b.join(5)
    assert b["value"].holding and "value" not in c
    wait_until(lambda: slots.waiting == 2)
    slots.give_back(b["value"])
    new_c.join(5)
    assert c["value"].holding and paused_thread.is_alive()
    slots.give_back(c["value"])
    paused_thread.join(5)
    assert paused["value"] is True and running.holding


def test_turns_go_round_robin_by_visitor_and_a_job_never_passes_to_its_own_visitor():
    clock = Clock()
    slots = Turns(1, clock=clock)
    a1 = slots.take("m", visitor="A")
    second_a, a2 = in_thread(slots.take, "m", None, "A")
    wait_until(lambda: slots.waiting == 1)
    first_b, b1 = in_thread(slots.take, "m", None, "B")
    wait_until(lambda: slots.waiting == 2)
    clock.now += 10
    assert slots.due(a1)  # B's job waits, and B has held nothing
    slots.give_back(a1)
    first_b.join(5)
    assert b1["value"].holding and second_a.is_alive(), "A's second job goes behind B's first"
    clock.now += 1
    assert not slots.due(b1["value"]), "A held the slot for 10 s lately, B for 1 s"
    slots.give_back(b1["value"])
    second_a.join(5)
    own = a2["value"]
    third_a, a3 = in_thread(slots.take, "m", None, "A")
    wait_until(lambda: slots.waiting == 1)
    clock.now += 30
    assert not slots.due(own), "a job does not pass its turn to its own visitor's job"
    slots.give_back(own)
    third_a.join(5)
    slots.give_back(a3["value"])


def test_a_visitors_time_on_the_gpu_is_forgotten_by_half_every_half_life():
    clock = Clock()
    slots = Turns(1, clock=clock)
    a = slots.take("m", visitor="A")
    clock.now += 8
    slots.give_back(a)
    assert slots._usage("A", clock.now) == pytest.approx(8)
    clock.now += turns.HALF_LIFE_S
    assert slots._usage("A", clock.now) == pytest.approx(4)
    clock.now += 20 * turns.HALF_LIFE_S
    slots.give_back(slots.take("m", visitor="B"))
    assert "A" not in slots._history  # visitors long gone are dropped


def test_a_job_passes_its_turn_only_to_an_eligible_job():
    """The replica passes only to jobs whose model is in place (`ModelHost.pass_turn`)."""
    clock = Clock()
    slots = Turns(1, clock=clock)
    running = slots.take("in-place")
    thread, box = in_thread(slots.take, "moved-out")
    wait_until(lambda: slots.waiting == 1)
    clock.now += 10
    in_place = lambda waiting: waiting.key != "moved-out"  # noqa: E731
    assert slots.due(running) and not slots.due(running, in_place)
    assert slots.pass_turn(running, eligible=in_place) is False and running.holding
    slots.give_back(running)
    thread.join(5)
    assert box["value"].holding  # it still gets the slot when the running job ends


def test_a_stopped_job_leaves_the_wait_and_its_reserved_slot_goes_on():
    slots = Turns(1)
    running = slots.take("a")
    stop = threading.Event()
    thread, box = in_thread(slots.take, "b", stop.is_set)
    wait_until(lambda: slots.waiting == 1)
    stop.set()
    thread.join(5)
    assert isinstance(box["error"], Cancelled) and slots.waiting == 0
    slots.give_back(running)
    assert slots.take("c").holding


def test_a_job_stopped_while_paused_holds_no_slot():
    clock = Clock()
    slots = Turns(1, clock=clock)
    long = slots.take("a")
    thread, box = in_thread(slots.take, "b")
    wait_until(lambda: slots.waiting == 1)
    clock.now += 5
    stop = threading.Event()
    passer, passed = in_thread(slots.pass_turn, long, stop.is_set)
    thread.join(5)
    stop.set()
    passer.join(5)
    assert isinstance(passed["error"], Cancelled) and not long.holding
    slots.give_back(long)  # what `gpu_slot` does on the way out: nothing to give back
    slots.give_back(box["value"])
    assert slots.take("c").holding


# --- what a paused call keeps --------------------------------------------------------------------------


def test_call_attributes_cover_what_every_served_pipeline_sets_per_call():
    """`PausedCall` saves the attributes a FLUX pipeline's `__call__` sets on itself: every pipeline class
    the registry names (text to image and editing) is read, so a diffusers release that adds one fails
    here instead of mixing two calls' state."""
    import diffusers

    classes = {spec.pipeline_class for spec in MODELS.values()}
    classes |= {name for spec in MODELS.values() for _mode, name in spec.edit_pipelines}
    for name in sorted(classes):
        source = inspect.getsource(getattr(diffusers, name).__call__)
        assigned = set(re.findall(r"self\.(_\w+)\s*=(?!=)", source))
        assert assigned, name
        assert assigned <= set(turns.CALL_ATTRIBUTES), (name, assigned - set(turns.CALL_ATTRIBUTES))


def _request(model: str, prompt: str, size: int, steps: int, seed: int):
    spec = get_spec(model)
    fields = (prompt, model, size, size, steps, spec.default_guidance, seed)
    return validate(GenerationRequest(*fields), (model,))


def test_a_short_job_runs_inside_a_long_one_and_both_give_their_own_pixels(fresh_host):
    """A long tiny-dev run with word maps holds the slot; a short tiny-dev run at another size and step
    count arrives, the long one passes its turn at its next step, the short one finishes first, and each
    image (and the long run's word maps) equals the same request run alone."""
    host = fresh_host
    long_request = _request("tiny-dev", 'a red fox holding a sign that says "FLUX"', 320, 6, 5)
    short_request = _request("tiny-dev", "a blue house by the sea", 256, 2, 9)
    alone_long = trajectory.run_trajectory(host, long_request, words=["FLUX"])
    alone_short = generation.generate(host, short_request)

    at_step: list[int] = []
    release = threading.Event()
    finished: list[str] = []

    def long_progress(value, desc=None, unit=None):
        if isinstance(value, tuple):
            at_step.append(value[0])
            if value[0] == 1:
                release.wait(60)  # holds the slot, so its turn is due once the short job waits

    def run_long():
        result = trajectory.run_trajectory(host, long_request, progress=long_progress, words=["FLUX"])
        finished.append("long")
        return result

    def run_short():
        result = generation.generate(host, short_request)
        finished.append("short")
        return result

    long_thread, long_box = in_thread(run_long)
    wait_until(lambda: at_step == [1])
    short_thread, short_box = in_thread(run_short)
    wait_until(lambda: host.turns.waiting == 1)
    time.sleep(QUANTUM_S)
    release.set()
    short_thread.join(120)
    long_thread.join(120)
    assert "error" not in long_box and "error" not in short_box, (long_box, short_box)
    assert finished == ["short", "long"]
    assert at_step == list(range(1, 7))

    together_long, together_short = long_box["value"], short_box["value"]
    assert np.array_equal(np.asarray(together_short.image), np.asarray(alone_short.image))
    assert np.array_equal(np.asarray(together_long.result.image), np.asarray(alone_long.result.image))
    for paused, alone in zip(together_long.steps, alone_long.steps, strict=True):
        assert np.array_equal(paused.word_maps.numpy(), alone.word_maps.numpy())


def test_a_job_stopped_while_another_has_its_turn_ends_at_its_step(fresh_host):
    host = fresh_host
    long_request = _request("tiny-schnell", "a red fox", 256, 4, 1)
    short_request = _request("tiny-schnell", "a blue house", 256, 1, 2)
    generation.generate(host, short_request)  # loaded
    stopped = threading.Event()
    release, short_started = threading.Event(), threading.Event()

    def long_progress(value, desc=None, unit=None):
        if isinstance(value, tuple) and value[0] == 1:
            release.wait(60)

    def short_progress(value, desc=None, unit=None):
        if isinstance(value, tuple):
            short_started.set()
            stopped.set()  # the long job's visitor presses Stop while the short job runs
            time.sleep(0.5)

    long_thread, long_box = in_thread(
        lambda: generation.generate(host, long_request, long_progress, stopped=stopped.is_set)
    )
    wait_until(lambda: host.turns._free == 0)
    short_thread, short_box = in_thread(lambda: generation.generate(host, short_request, short_progress))
    wait_until(lambda: host.turns.waiting == 1)
    time.sleep(QUANTUM_S)
    release.set()
    long_thread.join(60)
    short_thread.join(60)
    assert short_started.is_set() and "value" in short_box
    from flux_demo.faults import GenerationCancelled

    error = long_box.get("error")
    assert isinstance(error, GenerationCancelled) and error.step == 1, long_box  # passed after step 1
    assert generation.generate(host, short_request).image is not None  # the slot and the lock are free
