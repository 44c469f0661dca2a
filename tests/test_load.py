"""Many concurrent visitors: every image carries its own request's prompt, seed and size."""

import dataclasses

from benchmarks.load import run_load


def test_sixteen_concurrent_visitors_get_their_own_images_with_no_mixups(serve, settings, host):
    """Sixteen visitors behind one trusted proxy, as on a Space (one address may have only two jobs
    queued, so they are sixteen addresses), two requests each."""
    from flux_demo.ui import create_demo

    with serve(create_demo(dataclasses.replace(settings, trusted_proxies=1), backend=host)) as url:
        report = run_load(url, 16, 2, headers_for=lambda n: {"X-Forwarded-For": f"198.51.100.{n + 1}"})
    assert report.mixups == []
    assert report.errors == []
    assert report.queue_full == 0  # the default queue (32) holds 16 visitors
    assert len(report.latencies) == 32
