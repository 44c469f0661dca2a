"""Stop: a page's Stop button flags its session's action; the run ends at its next step and says where."""

import pytest

from flux_demo import comparison, generation
from flux_demo.faults import GenerationCancelled
from flux_demo.services.stops import StopRequests
from flux_demo.validation import GenerationRequest, validate


def test_a_stop_belongs_to_one_session_and_one_action_and_a_new_run_clears_it():
    stops = StopRequests()
    watch = stops.watch("session-a", "compare")
    assert not watch()
    stops.stop("session-b", "compare")
    stops.stop("session-a", "suite")
    assert not watch()
    stops.stop("session-a", "compare")
    assert watch()
    stops.clear("session-a", "compare")
    assert not watch()


def test_a_stopped_generation_says_at_which_step_it_stopped(host):
    valid = validate(GenerationRequest("a fox", "tiny-schnell", 256, 256, 4, 0.0, 1), host.model_keys)
    calls = []

    def stopped():  # true from the second check on: the first step runs, then the stop is seen
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(GenerationCancelled) as err:
        generation.generate(host, valid, stopped=stopped)
    assert (err.value.step, err.value.steps) == (1, 4)


def test_a_stopped_comparison_counts_steps_over_all_its_models(host):
    requests = comparison.plan_requests(
        "a fox", ["tiny-schnell", "tiny-klein"], [1], 256, 256, {}, host.model_keys
    )
    runs = comparison.run_all(host, requests, stopped=lambda: bool(finished))
    finished = []
    finished.append(next(runs))  # the first model finishes; the second stops before its first step
    with pytest.raises(GenerationCancelled) as err:
        next(runs)
    assert (err.value.step, err.value.steps) == (4, 8)
    assert finished[0].ok
