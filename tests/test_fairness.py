"""Fair under attack: admission before a job takes a queue place, prices in units of work, round-robin order
by visitor, and old positional callers, through the real server. Visitors are told apart by
X-Forwarded-For behind one trusted proxy (FLUX_DEMO_TRUSTED_PROXIES=1), as on a Space. The pipeline is
held on an event where the order of jobs matters, so nothing depends on timing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from flux_demo.pipelines import runner
from flux_demo.services.admission import OCR_UNITS, declared_cost, parameter_values, units

QUICK = {"prompt": "a fox", "model": "tiny-schnell", "width": 256, "height": 256, "steps": 1}
QUICK |= {"guidance": 0.0, "seed": 1, "randomize_seed": False}


def fn_index(demo, api_name: str) -> int:
    return next(index for index, fn in demo.fns.items() if fn.api_name == api_name)


def join(url: str, index: int, visitor: str, seed: int, **changes) -> httpx.Response:
    """One /generate job put in the queue by hand, as the page does, from `visitor` (its address as the
    trusted proxy saw it); the response comes once the server accepted or refused it."""
    values = {**QUICK, "seed": seed, **changes}
    body = {"data": list(values.values()), "fn_index": index, "session_hash": f"{visitor}-{seed}"}
    headers = {"x-forwarded-for": visitor, "x-gradio-user": "app", "accept-language": "ko-KR,ko;q=0.9"}
    return httpx.post(f"{url.rstrip('/')}/gradio_api/queue/join", json=body, headers=headers, timeout=60)


@pytest.fixture
def held(monkeypatch):
    """Every pipeline call records its seed, then waits until the test releases it."""
    real_call, hold, calls, first = runner.text_to_image, threading.Event(), [], threading.Event()

    def held_call(replica, loaded, request, on_step_end):
        calls.append(request.seed)
        first.set()
        assert hold.wait(timeout=120), "the test never released the pipeline"
        return real_call(replica, loaded, request, on_step_end)

    monkeypatch.setattr(runner, "text_to_image", held_call)
    yield calls, first, hold
    hold.set()


@pytest.fixture
def behind_proxy(settings):
    """An app behind one trusted proxy, so X-Forwarded-For tells visitors apart."""
    from flux_demo.ui import create_demo

    demo = create_demo(dataclasses.replace(settings, trusted_proxies=1, queue_size=8))
    return demo


@pytest.fixture
def one_job_at_a_time(settings):
    """The same app without time-sharing: Gradio lets in one GPU job at a time and the rest wait in its
    waiting list, whose order these tests check (the order of turns is tests/test_turns.py's)."""
    from flux_demo.ui import create_demo

    return create_demo(dataclasses.replace(settings, trusted_proxies=1, queue_size=8, gpu_timeshare=0))


def waiting(demo) -> int:
    """Jobs waiting in or running from the demo's queue."""
    return len(demo._queue.event_ids_to_events)


def drained(demo, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while waiting(demo):
        assert time.monotonic() < deadline, "the queue never drained"
        time.sleep(0.05)


def test_a_refused_job_takes_no_queue_place_and_others_still_join(serve, behind_proxy, held):
    calls, first, hold = held
    index = fn_index(behind_proxy, "generate")
    with serve(behind_proxy) as url:
        assert join(url, index, "198.51.100.1", 1).status_code == 200
        assert first.wait(timeout=120)  # the first job holds the GPU
        assert join(url, index, "198.51.100.1", 2).status_code == 200
        before = waiting(behind_proxy)
        refused = join(url, index, "198.51.100.1", 3)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "5"
        assert "대기 중이거나 실행 중인 작업이 이미 2개" in refused.json()["detail"]  # the page's language
        assert waiting(behind_proxy) == before  # no place taken
        assert join(url, index, "198.51.100.2", 4).status_code == 200  # another visitor still joins
        hold.set()
        drained(behind_proxy)
        client = Client(url, verbose=False, headers={"x-forwarded-for": "198.51.100.1"})
        client.predict(**{**QUICK, "seed": 5}, api_name="/generate")  # A may join again once done
    assert sorted(calls) == [1, 2, 4, 5]


def test_waiting_jobs_go_round_robin_by_visitor(serve, behind_proxy, held):
    calls, first, hold = held
    index = fn_index(behind_proxy, "generate")
    with serve(behind_proxy) as url:
        assert join(url, index, "203.0.113.1", 10).status_code == 200  # A's first runs and holds the GPU
        assert first.wait(timeout=120)
        assert join(url, index, "203.0.113.1", 11).status_code == 200  # A's second waits
        assert join(url, index, "203.0.113.2", 20).status_code == 200  # B's first arrives later
        hold.set()
        drained(behind_proxy)
    assert calls == [10, 20, 11]  # B's first job went ahead of A's second


@pytest.mark.parametrize("written", [str, float], ids=["text", "float"])
def test_an_event_number_written_as_text_or_a_float_is_admitted_like_a_whole_number(
    serve, behind_proxy, held, written
):
    """Gradio reads `"fn_index": "3"` and `3.0` as event 3 (pydantic's lax integers), so admission must
    read them the same way: otherwise such a join skips the cap and the price and takes a queue place."""
    calls, first, hold = held
    index = fn_index(behind_proxy, "generate")
    with serve(behind_proxy) as url:
        assert join(url, index, "198.51.100.9", 1).status_code == 200
        assert first.wait(timeout=120)
        assert join(url, index, "198.51.100.9", 2).status_code == 200
        before = waiting(behind_proxy)
        refused = join(url, written(index), "198.51.100.9", 3)
        assert refused.status_code == 429, refused.text[:200]
        assert waiting(behind_proxy) == before
        hold.set()
        drained(behind_proxy)
    assert sorted(calls) == [1, 2]


def test_a_second_job_sent_while_the_first_is_starting_still_waits_behind_others(
    serve, one_job_at_a_time, held, monkeypatch
):
    """Gradio takes A's first job from the waiting list, then prepares its inputs before the handler runs;
    A's second job, sent in that moment, must still go behind B's first."""
    from gradio.blocks import Blocks

    calls, _first, hold = held
    preparing, go_on, real_preprocess = threading.Event(), threading.Event(), Blocks.preprocess_data

    async def slow_preparation(self, *args, **kwargs):  # the first job's input preparation, made to last
        if not preparing.is_set():
            preparing.set()
            assert await asyncio.to_thread(go_on.wait, 120)
        return await real_preprocess(self, *args, **kwargs)

    monkeypatch.setattr(Blocks, "preprocess_data", slow_preparation)
    index = fn_index(one_job_at_a_time, "generate")
    with serve(one_job_at_a_time) as url:
        assert join(url, index, "203.0.113.1", 10).status_code == 200
        assert preparing.wait(timeout=120)  # A's first job has left the waiting list, not yet started
        assert join(url, index, "203.0.113.1", 11).status_code == 200
        assert join(url, index, "203.0.113.2", 20).status_code == 200
        go_on.set()
        hold.set()
        drained(one_job_at_a_time)
    assert calls == [10, 20, 11]


def test_the_rate_limit_counts_units_of_work_at_admission(serve, settings):
    from flux_demo.ui import create_demo

    demo = create_demo(dataclasses.replace(settings, trusted_proxies=1, rate_limit="2/minute"))
    index = fn_index(demo, "generate")
    one_unit = {"width": 512, "height": 512, "steps": 16}  # 16 steps × 0.25 MP / 4 = 1 unit
    with serve(demo) as url:
        client = Client(url, verbose=False, headers={"x-forwarded-for": "192.0.2.7"})
        for seed in (1, 2):
            client.predict(**{**QUICK, **one_unit, "seed": seed}, api_name="/generate")
        refused = join(url, index, "192.0.2.7", 3, **one_unit)
        assert refused.status_code == 429
        assert "작업량 2단위까지" in refused.json()["detail"] and int(refused.headers["retry-after"]) > 0
        # The API answers in English, and a refused job cost nothing: a cheap one still fits? No: 2 used.
        with pytest.raises(httpx.HTTPStatusError) as err:
            client.predict(**{**QUICK, "seed": 4}, api_name="/generate")
        assert err.value.response.status_code == 429
        assert "at most 2 units of work per minute" in err.value.response.json()["detail"]
        # Another visitor has their own budget.
        other = Client(url, verbose=False, headers={"x-forwarded-for": "192.0.2.8"})
        other.predict(**{**QUICK, **one_unit, "seed": 5}, api_name="/generate")


def test_a_keyword_call_v2_runs_and_is_priced_from_its_own_values(serve, settings):
    """`POST /call/v2/<api>` takes the values by name (no `data` list): admission prices those values and
    hands Gradio the body as sent."""
    from flux_demo.ui import create_demo

    demo = create_demo(dataclasses.replace(settings, trusted_proxies=1, rate_limit="2/minute"))
    headers = {"x-forwarded-for": "192.0.2.30"}
    with serve(demo) as url:
        base = url.rstrip("/") + "/gradio_api/call/v2/generate"
        joined = httpx.post(base, json=QUICK, headers=headers, timeout=60)
        assert joined.status_code == 200, joined.text[:300]
        with httpx.stream("GET", f"{base}/{joined.json()['event_id']}", timeout=120) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("event:")]
        assert "event: complete" in lines, lines[-4:]
        costly = {**QUICK, "width": 1024, "height": 1024, "steps": 16}  # 4 units, over the 2 per minute
        refused = httpx.post(base, json=costly, headers=headers, timeout=60)
        assert refused.status_code == 429 and refused.json()["code"] == "rate", refused.text[:300]


@pytest.mark.parametrize(
    ("api_name", "values", "expected"),
    [
        ("generate", {"model": "tiny-dev", "steps": 28, "width": 1024, "height": 1024}, 7.0),
        ("generate", {"model": "tiny-schnell", "steps": 4, "width": 256, "height": 256}, 1 / 16),
        ("typography", {"model": "tiny-schnell", "steps": 4, "width": 1024, "height": 1024}, 1 + OCR_UNITS),
        ("score_text", {"image": None, "expected": "OPEN"}, OCR_UNITS),
        (
            "compare",
            {"models": ["tiny-schnell", "tiny-dev", "tiny-klein"], "width": 1024, "height": 1024},
            units(1, 4, 1024, 1024) + units(1, 28, 1024, 1024) + units(1, 4, 1024, 1024),
        ),
        ("seed_sweep", {"models": ["tiny-schnell"], "seeds": 8, "width": 1024, "height": 1024}, 8.0),
        ("typography_suite", {"models": ["tiny-schnell", "tiny-dev"], "count": 2}, 2 * (1 + 7) / 16),
        # References admission cannot read (not files in the upload folder): each at the most, 1 MP.
        ("edit", {"model": "tiny-klein", "references": ["a", "b"], "steps": 4, "width": 0}, 1 / 16 + 2),
        ("trajectory", {"model": "tiny-dev", "steps": 28, "width": 512, "height": 512}, 28 * 0.25 / 4),
    ],
)
def test_each_endpoint_prices_its_work_from_the_request(demo, api_name, values, expected):
    fn = next(fn for fn in demo.fns.values() if fn.api_name == api_name)
    cost = declared_cost(fn.fn)
    assert cost is not None, f"{api_name} declares no cost: admission would let it through unpriced"
    assert cost(values) == pytest.approx(expected)


def test_compare_prices_the_steps_its_settings_rows_ask_for(demo):
    fn = next(fn for fn in demo.fns.values() if fn.api_name == "compare")
    rows = [["tiny-schnell", 16, 0.0], ["tiny-klein", 16, 1.0]]  # each model's most steps, not its 4
    values = {"models": ["tiny-schnell", "tiny-klein"], "width": 1024, "height": 1024}
    values["settings"] = {"headers": ["model", "steps", "guidance"], "data": rows}
    assert declared_cost(fn.fn)(values) == pytest.approx(2 * units(1, 16, 1024, 1024))


def test_edit_prices_the_pixels_its_references_add_to_every_step(demo, tmp_path):
    from PIL import Image

    references = []
    for number in range(10):
        path = tmp_path / f"reference-{number}.png"
        Image.new("RGB", (1024, 1024), (20 * number, 90, 200)).save(path)
        references.append({"path": str(path), "meta": {"_type": "gradio.FileData"}})
    fn = next(fn for fn in demo.fns.values() if fn.api_name == "edit")
    values = {"model": "tiny-klein", "references": references, "steps": 16, "width": 256, "height": 256}
    # Ten 1 MP references join all 16 steps of a 256² edit: at least the work of ten 1024² images.
    assert declared_cost(fn.fn)(values) >= units(10, 16, 1024, 1024)


def test_edit_prices_uploaded_references_by_their_headers(demo):
    """A reference uploaded through Gradio is priced at the size the pipeline conditions on: its own
    pixels, or 1 MP for a larger one, read from its header."""
    from gradio.utils import get_upload_folder
    from PIL import Image

    folder = Path(get_upload_folder()) / "test-admission-references"
    folder.mkdir(parents=True, exist_ok=True)
    small, large = folder / "small.png", folder / "large.png"
    Image.new("RGB", (256, 256)).save(small)
    Image.new("RGB", (2048, 1024)).save(large)
    fn = next(fn for fn in demo.fns.values() if fn.api_name == "edit")
    cost = declared_cost(fn.fn)
    values = {"model": "tiny-klein", "steps": 4, "width": 256, "height": 256}
    gallery = [{"image": {"path": str(small), "meta": {"_type": "gradio.FileData"}}, "caption": None}]
    assert cost({**values, "references": gallery}) == pytest.approx(2 * units(1, 4, 256, 256))
    files = [{"path": str(large), "meta": {"_type": "gradio.FileData"}}]
    assert cost({**values, "references": files}) == pytest.approx(units(1, 4, 256, 256) + 1)


def test_every_queued_gpu_event_declares_a_cost(demo):
    from flux_demo.ui.widgets import GPU_QUEUE, OCR_QUEUE

    for fn in demo.fns.values():
        if fn.queue and fn.concurrency_id in (GPU_QUEUE, OCR_QUEUE):
            assert declared_cost(fn.fn) is not None, fn.name


def test_a_round_one_positional_call_with_eight_values_still_works(server_url):
    """REST callers written before `previews` existed send 8 values to /generate."""
    base = server_url.rstrip("/") + "/gradio_api/call/generate"
    event = httpx.post(base, json={"data": list(QUICK.values())}, timeout=60).json()["event_id"]
    with httpx.stream("GET", f"{base}/{event}", timeout=120) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith(("event:", "data:"))]
    assert "event: complete" in lines, lines[-4:]
    assert parameter_values(lambda a, b: None, [1]) == {"a": 1}  # fewer values than parameters


# --- private events and memory per visitor -------------------------------------------------------


@pytest.fixture(scope="module")
def huge_header(tmp_path_factory):
    """A 13000² PNG: a few hundred KB on disk, 507 MB once decoded to RGB."""
    from PIL import Image

    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (13000, 13000)).save(path)
    return path


def upload(url: str, path, visitor: str = "198.51.100.50") -> dict:
    with open(path, "rb") as file:
        response = httpx.post(
            f"{url.rstrip('/')}/gradio_api/upload",
            files={"files": (path.name, file, "image/png")},
            headers={"x-forwarded-for": visitor},
            timeout=60,
        )
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def peak_rss_during(call) -> tuple[object, int]:
    """(what `call()` returned, the most resident memory this process gained while it ran, in bytes)."""
    import os

    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    start, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss() - start)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = call()
    finally:
        done.set()
        sampler.join()
    return result, peak[0]


def private_events(demo) -> dict[str, int]:
    return {fn.name: index for index, fn in demo.fns.items() if fn.api_name is None or not fn.show_api}


@pytest.mark.parametrize("event", ["painted_mask", "add_reference", "before_after", "mask_canvas", "restore"])
def test_private_events_refuse_a_huge_image_from_its_header_without_decoding(
    event, server_url, demo, huge_header
):
    big = upload(server_url, huge_header)
    gallery = [{"image": big, "caption": None}]
    inputs = {
        "painted_mask": [{"background": big, "layers": [big], "composite": big}, gallery],
        "add_reference": [big, []],
        "before_after": [big, gallery],
        "mask_canvas": [gallery],
        "restore": [big],
    }[event]
    index = next(i for i, fn in demo.fns.items() if fn.name == event)
    body = {"data": inputs, "fn_index": index, "session_hash": f"huge-{event}"}
    response, grown = peak_rss_during(
        lambda: httpx.post(f"{server_url.rstrip('/')}/gradio_api/run/predict", json=body, timeout=120)
    )
    assert "13000" in response.text, response.text[:300]  # refused, naming the size it read
    assert grown < 50 * 1024 * 1024, f"{event}: resident memory grew by {grown / 1e6:.0f} MB"


def test_ten_references_over_the_total_are_refused_from_their_headers(server_url, demo, tmp_path):
    from PIL import Image

    path = tmp_path / "large.png"
    Image.new("RGB", (4096, 2048)).save(path)  # 8.4 MP each: ten are 84 MP, over the 40 MP total
    reference = upload(server_url, path)
    index = fn_index(demo, "edit")
    values = ["the sign from image 1", [reference] * 10, "tiny-klein", 1, False, 1, 0, 0]
    body = {"data": values, "fn_index": index, "session_hash": "ten-references"}
    response, grown = peak_rss_during(
        lambda: httpx.post(f"{server_url.rstrip('/')}/gradio_api/queue/join", json=body, timeout=120)
    )
    assert response.status_code == 200  # admitted: the refusal comes from the references' headers
    events = httpx.get(
        f"{server_url.rstrip('/')}/gradio_api/queue/data",
        params={"session_hash": "ten-references"},
        timeout=120,
    ).text
    assert "megapixels in all" in events
    assert grown < 50 * 1024 * 1024, f"resident memory grew by {grown / 1e6:.0f} MB"


def test_two_hundred_sessions_sending_ten_megabytes_each_leave_memory_flat(server_url, demo):
    base = server_url.rstrip("/")
    index = fn_index(demo, "generate")
    sessions_before = len(demo.state_holder.session_data)
    # One 10 MB prompt, streamed by every request (the client holds it once, so memory growth is the
    # server's): {"fn_index": i, "session_hash": "s<n>", "data": ["xxx...", ...]}.
    big = b"x" * (10 * 1024 * 1024)
    rest = json.dumps(list(QUICK.values())[1:]).encode()[1:]  # '"tiny-schnell", 256, ...]'

    def body(session: int):
        yield f'{{"fn_index": {index}, "session_hash": "s{session}", "data": ["'.encode()
        yield big
        yield b'", ' + rest + b"}"

    def flood():
        codes = []
        with httpx.Client(timeout=60) as http:
            for session in range(200):
                try:
                    response = http.post(
                        f"{base}/gradio_api/queue/join",
                        content=body(session),
                        headers={"content-type": "application/json"},
                    )
                    codes.append(response.status_code)
                except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                    codes.append(413)  # refused before the body was read in full
        return codes

    import gc
    import tracemalloc

    tracemalloc.start()
    try:
        codes = flood()
        gc.collect()
        kept, _peak = tracemalloc.get_traced_memory()  # what the server still holds after the flood
    finally:
        tracemalloc.stop()
    assert set(codes) == {413}
    assert len(demo.state_holder.session_data) == sessions_before  # no session kept anything
    assert kept < 5 * 1024 * 1024, f"the server kept {kept / 1e6:.1f} MB after 200 sessions of 10 MB"


def test_previews_are_small_files_gone_after_the_run(server_url, settings, monkeypatch):
    import os
    import time
    from pathlib import Path

    from flux_demo.ui import live

    monkeypatch.setattr(live, "PREVIEW_KEEP_S", 0.5)  # a minute in the app
    previews = Path(os.environ["GRADIO_TEMP_DIR"]) / "previews"
    before = set(previews.iterdir()) if previews.exists() else set()
    client = Client(server_url, verbose=False)
    job = client.submit(
        **{**QUICK, "width": 1024, "height": 1024, "steps": 4, "previews": True}, api_name="/generate"
    )
    final = job.result(timeout=300)
    frames = [output[0] for output in job.outputs()[:-1]]
    sizes = [os.path.getsize(frame) for frame in frames]
    # Random tiny weights draw noise, the worst case for compression: a 1024² PNG of it is ~3 MB.
    assert len(frames) == 4 and all(size < 64 * 1024 for size in sizes), sizes
    assert os.path.getsize(final[0]) > 10 * max(sizes)

    def new_folders() -> set:
        return (set(previews.iterdir()) if previews.exists() else set()) - before

    deadline = time.monotonic() + 30
    while new_folders() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not new_folders()  # this run's frames are deleted after it ended


def test_mcp_edit_tool_takes_references_as_files(server_url, tmp_path):
    import asyncio
    import base64
    import concurrent.futures
    import io

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 30, 30)).save(buffer, format="PNG")
    reference = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    async def call_edit():
        async with streamablehttp_client(f"{server_url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                arguments = {"prompt": "the red square from image 1", "references": [reference]}
                arguments |= {"model": "tiny-klein", "seed": 3, "randomize_seed": False, "steps": 1}
                return tools, await session.call_tool("edit", arguments)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tools, result = pool.submit(asyncio.run, call_edit()).result(timeout=300)
    assert tools["edit"].inputSchema["properties"]["references"]["type"] == "array"
    assert not result.isError, result.content
    assert "flux-tiny-klein-3" in str(result.content)


def test_served_files_are_never_sniffed(server_url):
    response = httpx.get(server_url, timeout=60)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_short_run_goes_ahead_of_a_long_one_between_its_steps(serve, behind_proxy, monkeypatch):
    """A long run (each of its steps made to last 0.3 s) holds the GPU; another visitor's short run,
    sent while it runs, finishes before it (the long one passes its turn at its next step), and the long
    one's image is the image the same request gives alone."""
    from PIL import Image

    real_call, long_started = runner.text_to_image, threading.Event()

    def slow_steps_for_seed_10(replica, loaded, request, on_step_end):
        if request.seed != 10:
            return real_call(replica, loaded, request, on_step_end)

        def slow(pipeline, step, timestep, kwargs):
            long_started.set()
            time.sleep(0.3)
            return on_step_end(pipeline, step, timestep, kwargs)

        return real_call(replica, loaded, request, slow)

    monkeypatch.setattr(runner, "text_to_image", slow_steps_for_seed_10)
    long = {**QUICK, "steps": 12, "seed": 10, "model": "tiny-dev", "guidance": 3.5}
    with serve(behind_proxy) as url:
        attacker = Client(url, verbose=False, headers={"x-forwarded-for": "203.0.113.7"})
        visitor = Client(url, verbose=False, headers={"x-forwarded-for": "198.51.100.7"})
        together = attacker.submit(**long, api_name="/generate")
        assert long_started.wait(timeout=120)
        visitor.predict(**{**QUICK, "seed": 20}, api_name="/generate")
        assert not together.done(), "the short run waited for the long one to end"
        first = together.result(timeout=120)[0]
        alone = attacker.predict(**long, api_name="/generate")[0]
    with Image.open(first) as a, Image.open(alone) as b:
        assert a.tobytes() == b.tobytes()
