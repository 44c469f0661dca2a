"""Admission rules without a server: units of work, the per-visitor cap, the rate limit in units and the
round-robin order of waiting jobs (the server-side checks are in tests/test_fairness.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flux_demo.services.admission import Admission, FairOrder, units
from flux_demo.services.limits import VisitorLimiter


def test_a_unit_is_one_four_step_image_at_1024_and_work_scales_with_images_steps_and_pixels():
    assert units(1, 4, 1024, 1024) == 1
    assert units(1, 28, 1024, 1024) == 7  # a dev image
    assert units(24, 4, 1024, 1024) == 24  # a 24-image seed sweep
    assert units(1, 4, 256, 256) == 1 / 16  # a nano image
    assert units(1, 16, 2048, 2048) == 16  # the costliest klein request


def test_a_visitor_may_have_at_most_the_cap_of_jobs_waiting_or_running():
    admission = Admission(None, max_queued=2, trusted_proxies=0)
    assert admission.admit("a", 1, waiting_or_running=0) is None
    assert admission.admit("a", 1, waiting_or_running=0) is None  # the first is still joining
    refused = admission.admit("a", 1, waiting_or_running=0)
    assert refused.code == "busy" and "2 jobs waiting or running" in str(refused.message)
    assert admission.admit("b", 1, waiting_or_running=0) is None  # another visitor is not affected
    admission.joined("a")
    admission.joined("a")
    assert admission.admit("a", 1, waiting_or_running=1) is None
    assert admission.admit("a", 1, waiting_or_running=2).code == "busy"


def test_the_rate_limit_counts_units_and_a_refused_request_costs_nothing():
    limiter = VisitorLimiter(10, 60.0, "minute")
    assert limiter.try_take("a", 7, now=0.0) is None  # a dev image
    message, wait = limiter.try_take("a", 7, now=1.0)  # a second one would make 14 > 10
    assert "at most 10 units of work per minute" in str(message) and wait == 59
    assert limiter.try_take("a", 3, now=2.0) is None  # the refusal counted nothing: 7 + 3 fits
    assert limiter.try_take("a", 0.5, now=3.0) is not None
    assert limiter.try_take("a", 7, now=61.0) is None  # the first image left the window


def test_a_request_larger_than_the_whole_budget_is_refused_with_what_to_change():
    limiter = VisitorLimiter(10, 60.0, "minute")
    message, _wait = limiter.try_take("a", 24, now=0.0)
    assert "more than the 10 per minute" in str(message) and "fewer images, steps or pixels" in str(message)


def event(visitor):
    return SimpleNamespace(visitor=visitor)


def fair_queue(served: dict[str, int] | None = None) -> FairOrder:
    admission = Admission(None, max_queued=2, trusted_proxies=0)
    for visitor, count in (served or {}).items():
        for _ in range(count):
            admission.started(visitor)
    return FairOrder(admission, lambda e: e.visitor)


def test_waiting_jobs_are_served_round_robin_by_visitor():
    queue = fair_queue()
    flood = [event("flooder") for _ in range(2)]
    for job in flood:
        queue.append(job)
    ordinary = event("ordinary")
    queue.append(ordinary)
    # The ordinary visitor's first job goes ahead of the flooder's second.
    assert [e.visitor for e in queue] == ["flooder", "ordinary", "flooder"]
    assert queue[1] is ordinary


def test_a_visitor_served_recently_waits_behind_one_who_was_not():
    queue = fair_queue({"busy": 3})
    queue.append(event("busy"))
    queue.append(event("new"))
    assert [e.visitor for e in queue] == ["new", "busy"]


@pytest.mark.parametrize("visitor", [None])
def test_jobs_without_a_visitor_keep_first_come_first_served(visitor):
    queue = fair_queue()
    first, second = event(visitor), event(visitor)
    queue.append(first)
    queue.append(second)
    assert list(queue) == [first, second]
    queue.remove(first)
    assert list(queue) == [second]
