"""Many concurrent clients: every image carries its own request's prompt, seed and size."""

from benchmarks.load import run_load


def test_sixteen_concurrent_clients_get_their_own_images_with_no_mixups(server_url):
    report = run_load(server_url, clients=16, requests=2)
    assert report.mixups == []
    assert report.errors == []
    assert report.queue_full == 0  # the default queue (32) holds 16 clients
    assert len(report.latencies) == 32
