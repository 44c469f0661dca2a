"""Hostile load: ordinary visitors' latency with and without attackers, peak memory, lost results, mix-ups.

Ordinary visitors run `load.run_load` (every PNG checked against its own request) twice: once on a quiet
server, then while attacker threads repeat, for a bounded time, the attacks of the hostile-visitor
review: a 60 kB scene for the prompt helper, a huge score object for the private score views, a
9,400² PNG for them, dense 4096² text pages for /score_text, a suite with one model listed 1,000 times,
abandoned /call suite jobs, and rate-limit requests under forged X-Forwarded-For headers. Writes
benchmarks/results/hostile_load.json and prints a table.

    python benchmarks/hostile_load.py --clients 4 --requests 6 --seconds 60
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `flux_demo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.load import run_load


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


def proxy_header(client_address: str) -> dict:
    """What a Space's front-end proxy sends on: any client-written entries, then the address it saw."""
    return {"X-Forwarded-For": f"6.6.6.6, {client_address}"}


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


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=6, help="requests per ordinary client and phase")
    parser.add_argument("--seconds", type=float, default=90, help="upper bound on the attacked phase")
    parser.add_argument(
        "--rate-limit", default="20/minute", help="FLUX_DEMO_RATE_LIMIT, as on a public Space"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="flux-demo-hostile-"))
    os.environ.update(harness.offline_env(workdir))
    # As behind a Space's proxy: one trusted hop, every visitor its own address.
    os.environ.update({"FLUX_DEMO_RATE_LIMIT": args.rate_limit, "FLUX_DEMO_TRUSTED_PROXIES": "1"})
    with harness.app_in_process() as url:
        from gradio_client import Client

        Client(url, verbose=False, headers=proxy_header("198.51.100.250")).predict(
            **harness.generate_args(steps=1), api_name="/generate"
        )

        def visitor_headers(number: int) -> dict:
            return proxy_header(f"198.51.100.{number}")

        quiet = run_load(url, args.clients, args.requests, steps=4, headers_for=visitor_headers)
        rss_quiet = peak_rss_mb()
        stop = threading.Event()
        attackers = [Attacker(name, attack, stop) for name, attack in attacks(url).items()]
        for attacker in attackers:
            attacker.start()
        time.sleep(2)  # let the attacks land first
        timer = threading.Timer(args.seconds, stop.set)
        timer.start()
        attacked = run_load(url, args.clients, args.requests, steps=4, headers_for=visitor_headers)
        stop.set()
        timer.cancel()
        for attacker in attackers:
            attacker.join(timeout=120)
        rss_attacked = peak_rss_mb()

    phases = {"quiet": quiet.as_dict(), "attacked": attacked.as_dict()}
    p95 = {name: (phase["latency"] or {}).get("p95_ms") for name, phase in phases.items()}
    payload = {
        "rate_limit": args.rate_limit,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "phases": phases,
        "p95_ratio_attacked_over_quiet": round(p95["attacked"] / p95["quiet"], 2)
        if p95["quiet"] and p95["attacked"]
        else None,
        "peak_rss_mb": {"after quiet phase": round(rss_quiet), "after attacked phase": round(rss_attacked)},
        "attacks": {
            a.name: {"attempts": a.attempts, "refused": a.refused, "sample_failures": a.failures}
            for a in attackers
        },
    }
    path = harness.write_results("hostile_load", payload)
    rows = []
    for name, phase in phases.items():
        latency = phase["latency"] or {}
        lost = phase["requests"] - phase["ok"] - phase["queue_full"]
        rows.append([name, phase["ok"], lost, phase["mixups"], latency.get("p50_ms"), latency.get("p95_ms")])
    harness.print_table(["ordinary visitors", "ok", "lost", "mix-ups", "p50 ms", "p95 ms"], rows)
    harness.print_table(
        ["attack", "attempts", "refused"],
        [[a.name, a.attempts, a.refused] for a in attackers],
    )
    print(json.dumps({"p95 ratio": payload["p95_ratio_attacked_over_quiet"], **payload["peak_rss_mb"]}))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
