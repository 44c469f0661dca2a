"""Hostile load: can one visitor take the demo from everyone else?

The app runs in its own process as behind a Space's proxy (`FLUX_DEMO_TRUSTED_PROXIES=1`, every visitor
its own X-Forwarded-For address) on tiny-schnell, tiny-dev and tiny-klein. In every phase 3 ordinary
visitors run `/generate` at the page's defaults through `gradio_client` (queue/join and SSE, as the page
does) for `--seconds`, each PNG checked against its own request (`load.run_load`), while:

* **quiet**: nobody else (before and after the attacks, to show the drift of a busy machine);
* **a flood**: one attacker address floods one expensive endpoint with its costliest request through the
  REST API (`POST /gradio_api/call/<api>`), from `--attacker-threads` threads that resubmit at once
  when a job ends and after `--attacker-pause` when refused, ignoring Retry-After. Each flood runs with
  `FLUX_DEMO_RATE_LIMIT` (the limit on) and, with `--without-limit`, again on a server without one (the
  per-visitor cap and the fair order alone);
* **review attacks**: the attacks of the hostile-visitor review, each from its own address: a 60 kB scene
  for the prompt helper, a huge score object and a 9,400² PNG for the private score views, dense 4096²
  pages for /score_text, a suite with one model listed 1,000 times, abandoned /call suite jobs, and
  /generate under forged X-Forwarded-For headers.

A phase ends when the ordinary visitors' last runs end; then the attacker stops, cancels its jobs, and a
probe job waits for the GPU slot to be free. Each phase uses fresh addresses, so the limiter's window and
the fair order's memory start empty. Writes benchmarks/results/hostile_load.json and prints tables.

    python benchmarks/hostile_load.py
    python benchmarks/hostile_load.py --floods generate,edit --seconds 30 --without-limit
"""

from __future__ import annotations

import argparse
import base64
import collections
import io
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `flux_demo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.load import run_load

SERVED = "tiny-schnell,tiny-dev,tiny-klein"
ORDINARY_STEPS = 4  # the page's default for its first model, tiny-schnell (at 256², its default size)
RUNS_PER_VISITOR = 500  # an upper bound: a phase ends by time
LEAD_S = 2.0  # the flood starts first, so ordinary visitors meet it at its worst


# --- hostile inputs of the review ---------------------------------------------------------------------


def dense_page(side: int = 4096) -> bytes:
    """A PNG page of dense small text, the slowest thing to OCR."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (side, side), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.truetype("DejaVuSans.ttf", 28)
    for y in range(0, side, 34):
        draw.text((8, y), "lorem ipsum dolor sit amet consectetur adipiscing " * 5, font=font, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png(side: int = 9400) -> bytes:
    """A PNG of `side`² pixels that compresses to a few hundred kB (a memory bomb once decoded)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def dependency_for(config: dict, elem_id: str, trigger: str) -> int:
    """The id of the event that `trigger` on the component with `elem_id` fires (private ones too)."""
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    return next(
        i
        for i, dependency in enumerate(config["dependencies"])
        if [component, trigger] in [list(t) for t in dependency["targets"]]
    )


def proxy_header(client_address: str) -> dict:
    """What a Space's front-end proxy sends on: any client-written entries, then the address it saw."""
    return {"X-Forwarded-For": f"6.6.6.6, {client_address}"}


class Attacker(threading.Thread):
    """Repeats one attack until `stop` is set or `limit` attempts are made; counts outcomes."""

    def __init__(self, name: str, attack, stop: threading.Event, limit: int = 200):
        super().__init__(name=name, daemon=True)
        self.attack, self.stop, self.limit = attack, stop, limit
        self.attempts, self.refused, self.failures = 0, 0, []

    def run(self) -> None:
        while not self.stop.is_set() and self.attempts < self.limit:
            self.attempts += 1
            try:
                if not self.attack():
                    self.refused += 1
            except Exception as err:  # counted: an attack that breaks the client is still an attack
                self.refused += 1
                if len(self.failures) < 3:
                    self.failures.append(f"{type(err).__name__}: {str(err)[:160]}")
            self.stop.wait(0.05)


def attacks(url: str) -> dict:
    """name -> a callable making one attack; True when the server accepted it, False when refused.
    Each attack comes from its own address, as the proxy reports it."""
    import httpx
    from gradio_client import Client, handle_file

    base = url.rstrip("/") + "/gradio_api"
    config = httpx.get(url.rstrip("/") + "/config", timeout=30).json()
    write_prompt = dependency_for(config, "typo-write", "click")
    boxes = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "score-boxes")
    show_score = next(i for i, d in enumerate(config["dependencies"]) if boxes in d["outputs"])
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    (folder / "dense.png").write_bytes(dense_page())
    bomb = "data:image/png;base64," + base64.b64encode(huge_png()).decode()
    client = Client(url, verbose=False, headers=proxy_header("203.0.113.4"))

    def post(path: str, body: dict, address: str, headers: dict | None = None) -> bool:
        sent = {**proxy_header(address), **(headers or {})}
        response = httpx.post(base + path, json=body, headers=sent, timeout=60)
        return response.status_code == 200

    def scene_60kb() -> bool:
        data = ["HELLO", "\" 'x" * 15_000]
        return post(
            "/run/predict", {"data": data, "fn_index": write_prompt, "session_hash": "h1"}, "203.0.113.11"
        )

    def score_object() -> bool:
        scores = {"targets": [{"target": "x" * 24_000, "recognised": "y" * 24_000}], "boxes": []}
        return post(
            "/queue/join",
            {"data": [None, scores], "fn_index": show_score, "session_hash": "h2"},
            "203.0.113.12",
        )

    def decompression_bomb() -> bool:
        image = {"url": bomb, "meta": {"_type": "gradio.FileData"}}
        return post(
            "/queue/join", {"data": [image, {}], "fn_index": show_score, "session_hash": "h3"}, "203.0.113.13"
        )

    def dense_text_page() -> bool:
        client.predict(image=handle_file(str(folder / "dense.png")), expected="lorem", api_name="/score_text")
        return True

    def repeated_models() -> bool:
        body = {"data": [["tiny-schnell"] * 1000, 48, [], 0]}
        return post("/call/typography_suite", body, "203.0.113.14")

    def abandoned_call() -> bool:
        return post("/call/typography_suite", {"data": [["tiny-schnell"], 4, [], 0]}, "203.0.113.15")

    def forged_forwarded_for() -> bool:
        # The client writes a new address each time; the proxy still appends the one it saw.
        forged = {"X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}.1, 203.0.113.5"}
        body = {"data": ["forged", "tiny-schnell", 256, 256, 1, 0, 1, False]}
        return post("/call/generate", body, "203.0.113.5", forged)

    return {
        "60 kB scene to the prompt helper": scene_60kb,
        "48 kB score object to the score views": score_object,
        "9,400² PNG to the score views": decompression_bomb,
        "dense 4096² page to /score_text": dense_text_page,
        "suite with one model 1,000 times": repeated_models,
        "abandoned /call suite jobs": abandoned_call,
        "forged X-Forwarded-For on /generate": forged_forwarded_for,
    }


class ReviewAttacks:
    """The review's attacks, each in its own thread, for one phase."""

    def __init__(self, url: str):
        self.stop_event = threading.Event()
        self.attackers = [Attacker(name, attack, self.stop_event) for name, attack in attacks(url).items()]

    def start(self) -> None:
        for attacker in self.attackers:
            attacker.start()

    def stop(self) -> None:
        self.stop_event.set()
        for attacker in self.attackers:
            attacker.join(timeout=120)

    def summary(self) -> dict:
        return {
            a.name: {"attempts": a.attempts, "refused": a.refused, "sample_failures": a.failures}
            for a in self.attackers
        }


# --- floods -------------------------------------------------------------------------------------------


@dataclass
class Flood:
    """One endpoint's costliest request, sent again and again."""

    name: str
    api: str
    what: str
    data: list


def flood_requests(models: list[str], side: int, references: list[dict]) -> list[Flood]:
    """The costliest request of each expensive endpoint: the largest size, the most steps, seeds, images
    and references it accepts (`side` caps the size, for short trial runs)."""
    from flux_demo.comparison import MAX_SWEEP_SEEDS
    from flux_demo.models import MODELS
    from flux_demo.typography.suite import MAX_SUITE_IMAGES

    prompt = 'A night market with neon signs that say "OPEN" and "SALE", crowds, rain'
    klein = MODELS["tiny-klein"]
    most_steps = [[key, MODELS[key].max_steps, MODELS[key].default_guidance] for key in models]
    settings = {"headers": ["model", "steps", "guidance"], "data": most_steps}
    count = MAX_SUITE_IMAGES // len(models)
    return [
        Flood(
            "/generate",
            "generate",
            f"tiny-klein {side}², {klein.max_steps} steps",
            [prompt, klein.key, side, side, klein.max_steps, klein.default_guidance, 1, False],
        ),
        Flood(
            "/compare",
            "compare",
            f"{len(models)} models at {side}², each at its most steps",
            [prompt, models, 1, side, side, settings, False],
        ),
        Flood(
            "/seed_sweep",
            "seed_sweep",
            f"{MAX_SWEEP_SEEDS} seeds × {len(models)} models at {side}²",
            [prompt, models, 1, MAX_SWEEP_SEEDS, side, side],
        ),
        Flood(
            "/typography_suite",
            "typography_suite",
            f"{count} prompts × {len(models)} models ({MAX_SUITE_IMAGES} images)",
            [models, count, [], 1],
        ),
        Flood(
            "/edit",
            "edit",
            f"{len(references)} references of 512², tiny-klein, {klein.max_steps} steps, their size (0 × 0)",
            [prompt, references, klein.key, 1, False, klein.max_steps, 0, 0],
        ),
    ]


def prices(floods: list[Flood]) -> dict[str, float]:
    """Each flood's price in units of work, as admission reads it from the endpoint's declared cost."""
    from flux_demo.services.admission import declared_cost, parameter_values
    from flux_demo.ui import create_demo

    fns = {fn.api_name: fn.fn for fn in create_demo().fns.values()}
    return {
        flood.name: round(declared_cost(fns[flood.api])(parameter_values(fns[flood.api], flood.data)), 3)
        for flood in floods
    }


def upload_references(url: str, address: str, count: int = 10, side: int = 512) -> list[dict]:
    """`count` distinct side² PNG references uploaded as `address`, as /edit's FileData values."""
    import httpx
    from PIL import Image, ImageDraw

    references = []
    for number in range(count):
        image = Image.new("RGB", (side, side), (25 * number, 120, 255 - 25 * number))
        ImageDraw.Draw(image).ellipse((40 + 10 * number, 60, side - 60, side - 40), fill=(240, 200, 30))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        response = httpx.post(
            url.rstrip("/") + "/gradio_api/upload",
            files={"files": (f"reference-{number}.png", buffer.getvalue(), "image/png")},
            headers=proxy_header(address),
            timeout=60,
        )
        response.raise_for_status()
        path = response.json()[0]
        references.append({"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}})
    return references


def refusal_kind(response) -> str:
    """How the server turned a job away: admission's 429 by its code ("rate" with Retry-After 0 means
    the job alone costs more than a visitor's whole budget), Gradio's 503 queue-full, or another status."""
    if response.status_code == 429:
        code = response.json().get("code", "?")
        over_budget = code == "rate" and response.headers.get("retry-after") == "0"
        return "refused: over the whole budget" if over_budget else f"refused: {code}"
    if response.status_code == 503:
        return "queue full"
    return f"HTTP {response.status_code}"


def job_outcome(kind: str, data: str) -> str:
    """How a /call job ended, from its last SSE event: a cancelled job ends "complete" with no outputs."""
    if kind == "error":
        return "failed"
    return "cancelled at the end" if data == "null" else "completed"


class FloodAttacker:
    """One address sending `flood` as fast as it can from `threads` threads (see the module docstring)."""

    def __init__(self, url: str, flood: Flood, address: str, threads: int, pause: float):
        import httpx

        self.base, self.flood, self.address = url.rstrip("/") + "/gradio_api", flood, address
        self.threads_wanted, self.pause = threads, pause
        config = httpx.get(url.rstrip("/") + "/config", timeout=30).json()
        self.fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == flood.api)
        self.stop_event, self.lock = threading.Event(), threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.job_seconds: list[float] = []
        self.errors: list[str] = []
        self.in_flight: dict[int, str] = {}
        self.threads = [threading.Thread(target=self._flood, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending, cancel the jobs still waiting or running (as `gradio_client`'s cancel does)."""
        import httpx

        self.stop_event.set()
        with self.lock:
            events = list(self.in_flight.values())
        for event in events:
            body = {"session_hash": event, "fn_index": self.fn_index, "event_id": event}
            httpx.post(self.base + "/cancel", json=body, headers=proxy_header(self.address), timeout=30)
        for thread in self.threads:
            thread.join(timeout=120)

    def _flood(self, number: int) -> None:
        import httpx

        timeout = httpx.Timeout(60, read=120)  # Gradio's SSE sends a heartbeat every 15 s
        with httpx.Client(headers=proxy_header(self.address), timeout=timeout) as http:
            while not self.stop_event.is_set():
                try:
                    response = http.post(f"{self.base}/call/{self.flood.api}", json={"data": self.flood.data})
                    if response.status_code != 200:
                        self._count(refusal_kind(response))
                        self.stop_event.wait(self.pause)
                        continue
                    self._count("accepted")
                    self._follow(http, number, response.json()["event_id"])
                except httpx.HTTPError as err:  # counted; the flood goes on
                    self._count("client errors")
                    self._note(f"{type(err).__name__}: {err}")
                    self.stop_event.wait(self.pause)

    def _follow(self, http, number: int, event: str) -> None:
        """Read the job's SSE stream to its end; count how it ended and how long it took."""
        with self.lock:
            self.in_flight[number] = event
        began, outcome = time.perf_counter(), "cancelled at the end"  # the stream closed early
        try:
            with http.stream("GET", f"{self.base}/call/{self.flood.api}/{event}") as stream:
                kind = None
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        kind = line.partition(":")[2].strip()
                    elif line.startswith("data:") and kind in ("complete", "error"):
                        outcome = job_outcome(kind, line.partition(":")[2].strip())
                        if outcome == "failed":
                            self._note(line)
                        break
        finally:
            with self.lock:
                self.in_flight.pop(number, None)
        self._count(outcome)
        if outcome == "completed":
            with self.lock:
                self.job_seconds.append(time.perf_counter() - began)

    def _count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def _note(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 3:
                self.errors.append(text[:200])

    def summary(self) -> dict:
        return {
            "address": self.address,
            "threads": self.threads_wanted,
            "outcomes": dict(self.counts),
            # From joining to the result, in the order they ended; the first ran at once (an empty queue).
            "job_seconds": [round(s, 1) for s in self.job_seconds],
            "first_job_s": round(self.job_seconds[0], 1) if self.job_seconds else None,
            "sample_errors": self.errors,
        }


# --- phases -------------------------------------------------------------------------------------------


class Addresses:
    """Fresh proxy addresses for every phase's visitors, attacker and probe."""

    def __init__(self):
        self.phase = 0

    def next_phase(self) -> int:
        self.phase += 1
        return self.phase

    def ordinary(self, client: int) -> str:
        return f"198.51.100.{(10 * self.phase + client) % 250 + 1}"

    def attacker(self) -> str:
        return f"203.0.113.{100 + self.phase}"

    def probe(self) -> str:
        return f"192.0.2.{self.phase}"


def settle(url: str, address: str) -> None:
    """Wait until the GPU slot is free: one small job from a fresh visitor (first in the fair order)."""
    from gradio_client import Client

    Client(url, verbose=False, headers=proxy_header(address)).predict(
        **harness.generate_args(steps=1), api_name="/generate"
    )


def run_phase(url: str, addresses: Addresses, args, attack=None) -> dict:
    """Ordinary visitors for `args.seconds` with `attack` (started first, stopped after them) or alone."""
    addresses.next_phase()
    load_before = os.getloadavg()[0]
    if attack is not None:
        attack.start()
        time.sleep(LEAD_S)
    report = run_load(
        url,
        args.clients,
        RUNS_PER_VISITOR,
        steps=ORDINARY_STEPS,
        headers_for=lambda n: proxy_header(addresses.ordinary(n)),
        seconds=args.seconds,
    )
    if attack is not None:
        attack.stop()
    settle(url, addresses.probe())
    ordinary = report.as_dict()
    ordinary.pop("requests_per_client")  # the phase ends by time
    return {
        "ordinary": ordinary,
        "attacker": None if attack is None else attack.summary(),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def server_env(workdir: Path, rate_limit: str | None) -> dict[str, str]:
    from flux_demo.config import default_tiny_dir

    tiny_dir = Path(os.environ.get("FLUX_DEMO_TINY_DIR") or default_tiny_dir())  # built once, kept
    env = harness.offline_env(workdir, tiny_dir=tiny_dir)
    # As behind a Space's proxy: one trusted hop, every visitor its own address.
    env.update({"FLUX_DEMO_MODELS": SERVED, "FLUX_DEMO_TRUSTED_PROXIES": "1"})
    env.pop("FLUX_DEMO_RATE_LIMIT", None)
    if rate_limit:
        env["FLUX_DEMO_RATE_LIMIT"] = rate_limit
    return env


def peak_rss_mb(pid: int) -> float:
    """The server process's peak resident memory so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kilobytes / 1024)


def warm_up(url: str) -> None:
    """Load every served model before the clock starts."""
    from gradio_client import Client

    client = Client(url, verbose=False, headers=proxy_header("192.0.2.250"))
    for model in SERVED.split(","):
        client.predict(**harness.generate_args(model=model, steps=1), api_name="/generate")


def run_server(workdir: Path, rate_limit: str | None, floods: list[str], args) -> dict:
    """One server: quiet, each flood, the review attacks (with the limit on), quiet again."""
    phases, addresses = {}, Addresses()
    with harness.app_process(server_env(workdir, rate_limit)) as (url, process, _start, _ready):
        warm_up(url)
        references = upload_references(url, "192.0.2.251")
        chosen = [f for f in flood_requests(SERVED.split(","), args.side, references) if f.api in floods]
        phases["quiet"] = run_phase(url, addresses, args)
        print(f"quiet: {summary_line(phases['quiet'])}", flush=True)
        for flood in chosen:
            attacker = FloodAttacker(
                url, flood, addresses.attacker(), args.attacker_threads, args.attacker_pause
            )
            phase = run_phase(url, addresses, args, attacker)
            phase["flood"] = {"endpoint": flood.name, "request": flood.what}
            phases[f"{flood.name} flood"] = phase
            print(f"{flood.name} flood: {summary_line(phase)}", flush=True)
        if rate_limit and not args.skip_review:
            phases["review attacks"] = run_phase(url, addresses, args, ReviewAttacks(url))
            print(f"review attacks: {summary_line(phases['review attacks'])}", flush=True)
        phases["quiet again"] = run_phase(url, addresses, args)
        print(f"quiet again: {summary_line(phases['quiet again'])}", flush=True)
        return {"rate_limit": rate_limit, "phases": phases, "peak_rss_mb": peak_rss_mb(process.pid)}


def summary_line(phase: dict) -> str:
    ordinary, latency = phase["ordinary"], phase["ordinary"]["latency"] or {}
    return f"served {ordinary['ok']}/{ordinary['requests']}, p95 {latency.get('p95_ms')} ms"


# --- report -------------------------------------------------------------------------------------------


def seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 1)


def rows(server: dict, label: str) -> list[list]:
    """One table row per phase: ordinary visitors, then what the attacker got."""
    quiet_p95 = (server["phases"]["quiet"]["ordinary"]["latency"] or {}).get("p95_ms")
    table = []
    for name, phase in server["phases"].items():
        ordinary, attacker = phase["ordinary"], phase["attacker"] or {}
        latency = ordinary["latency"] or {}
        p95 = latency.get("p95_ms")
        outcomes = attacker.get("outcomes", {})
        refused = {k.removeprefix("refused: "): v for k, v in outcomes.items() if k.startswith("refused")}
        is_flood = "flood" in phase
        table.append(
            [
                f"{name} ({label})",
                f"{ordinary['ok']}/{ordinary['requests']}",
                ordinary["queue_full"] + len(ordinary["errors"]),
                ordinary["mixups"],
                seconds(latency.get("p50_ms")),
                seconds(p95),
                round(p95 / quiet_p95, 1) if p95 and quiet_p95 else None,
                outcomes.get("accepted", "") if is_flood else "",
                refused.get("busy", "") if is_flood else "",
                refused.get("rate", "") if is_flood else "",
                refused.get("over the whole budget", "") if is_flood else "",
                outcomes.get("queue full", "") if is_flood else "",
                attacker.get("first_job_s", "") or "",
                f"{phase['load_average'][0]}→{phase['load_average'][1]}",
            ]
        )
    return table


HEADERS = [
    "phase",
    "served",
    "refused/errors",
    "mix-ups",
    "p50 s",
    "p95 s",
    "p95 ÷ quiet",
    "attacker accepted",
    "429 busy",
    "429 rate",
    "429 over budget",
    "503 full",
    "one attacker job s",
    "load avg",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=3, help="ordinary visitors")
    parser.add_argument("--seconds", type=float, default=60, help="ordinary visitors' time per phase")
    parser.add_argument("--rate-limit", default="20/minute", help="FLUX_DEMO_RATE_LIMIT, as on a Space")
    parser.add_argument("--floods", default="generate,compare,seed_sweep,typography_suite,edit")
    parser.add_argument("--side", type=int, default=2048, help="largest image side the floods ask for")
    parser.add_argument("--attacker-threads", type=int, default=4)
    parser.add_argument("--attacker-pause", type=float, default=0.05, help="seconds after a refusal")
    parser.add_argument("--without-limit", action="store_true", help="the floods again with no rate limit")
    parser.add_argument("--skip-review", action="store_true", help="leave out the review's attacks")
    args = parser.parse_args()
    floods = [name.strip() for name in args.floods.split(",") if name.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="flux-demo-hostile-"))
    os.environ.update(server_env(workdir, args.rate_limit))
    price = prices(flood_requests(SERVED.split(","), args.side, [{}] * 10))
    began = time.perf_counter()
    servers = {"limit on": run_server(workdir, args.rate_limit, floods, args)}
    if args.without_limit:
        servers["no rate limit"] = run_server(workdir, None, floods, args)
    payload = {
        "served_models": SERVED,
        "ordinary": {"clients": args.clients, "seconds_per_phase": args.seconds, "steps": ORDINARY_STEPS},
        "attacker": {"threads": args.attacker_threads, "pause_after_refusal_s": args.attacker_pause},
        "rate_limit": args.rate_limit,
        "max_queued_per_visitor": int(os.environ.get("FLUX_DEMO_MAX_QUEUED_PER_VISITOR", 2)),
        "flood_units": price,
        "servers": servers,
        "wall_s": round(time.perf_counter() - began),
    }
    path = harness.write_results("hostile_load", payload)
    harness.print_table(["flood", "units of work (admission's price)"], [[k, v] for k, v in price.items()])
    print()
    labels = {"limit on": args.rate_limit, "no rate limit": "no limit"}
    harness.print_table(HEADERS, [row for name, s in servers.items() for row in rows(s, labels[name])])
    review = servers["limit on"]["phases"].get("review attacks")
    if review:
        print()
        harness.print_table(
            ["review attack", "attempts", "refused"],
            [[name, a["attempts"], a["refused"]] for name, a in review["attacker"].items()],
        )
    print({name: s["peak_rss_mb"] for name, s in servers.items()}, "MB peak RSS of the server")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
