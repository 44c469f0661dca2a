#!/usr/bin/env bash
# Space build rehearsal: install the app the way a Hugging Face Space builds it, on the Space's Python,
# then serve it and generate one image through gradio_client, then run the fast tests on that Python.
#
#   1. a virtual environment on Python $SPACE_PYTHON (the README front matter's python_version, which is
#      what ZeroGPU supports);
#   2. torch as requirements.txt asks for it (on Python 3.10 pip takes the CUDA build from PyPI, as a
#      Space does), then exactly requirements.txt, then gradio pinned to the front matter's sdk_version
#      (the Space builder installs gradio==sdk_version after requirements.txt), then requirements-dev.txt
#      for the tests;
#   3. `python app.py` on a free local port with the default offline models (the shipped nano weights,
#      loaded as the Space's diffusers loads them), one /generate call through gradio_client, then the
#      server is stopped;
#   4. `python -m pytest -m "not server and not browser and not slow"` on that interpreter.
#
# The system packages of packages.txt must already be installed (CI's .ci/run installs them).
#
# The environment is cached between runs under $FLUX_DEMO_SMOKE_CACHE, keyed on the requirements files,
# the interpreter's version and the ISO week: unchanged requirements reuse it for at most a week, then it
# is rebuilt so that new releases within the floors are picked up, as a fresh Space build would pick them
# up. A half-built environment is never reused. FLUX_DEMO_SMOKE_FRESH=1 rebuilds it now.
#
# Time on a 2-core machine with PyPI reachable (Python 3.10.13; other work shared the cores): building the
# environment 148 s from an empty pip cache (torch's CUDA build 82 s of it; 2 s when cached), server start
# 12-14 s, one image 7-9 s, the fast tests 130-420 s depending on the load. Whole runs: 440 s fresh, 469 s
# cached under a heavier load. Most of it is the fast tests.
#
# Environment:
#   FLUX_DEMO_SMOKE_PYTHON  interpreter to use (default: pyenv's $SPACE_PYTHON, else python3.10 on PATH)
#   FLUX_DEMO_SMOKE_CACHE   where environments are kept (default: ~/.cache/flux-demo/space-smoke)
#   FLUX_DEMO_SMOKE_FRESH   1: build a fresh environment even if a cached one matches
#   FLUX_DEMO_SMOKE_TESTS   0: skip the test step (install, serve and generate only)
set -euo pipefail
cd "$(dirname "$0")/.."

# Must equal `python_version` in README.md's front matter (tests/test_space_config.py checks it).
SPACE_PYTHON=3.10.13

export PIP_DISABLE_PIP_VERSION_CHECK=1
SECONDS=0
step() { printf '\n[space-smoke %4ds] %s\n' "$SECONDS" "$*"; }
fail() { printf '\n[space-smoke] FAILED: %s\n' "$*" >&2; exit 1; }

front_matter_value() {  # the value of a top-level key in README.md's front matter
  awk -v key="$1" 'NR == 1 && $0 != "---" { exit } NR > 1 && $0 == "---" { exit }
    NR > 1 && index($0, key ":") == 1 { sub("^" key ":[ ]*", ""); gsub(/["'\'']/, ""); print; exit }' README.md
}

readme_python="$(front_matter_value python_version)"
sdk_version="$(front_matter_value sdk_version)"
[[ "$readme_python" == "$SPACE_PYTHON" ]] \
  || fail "README front matter python_version is '${readme_python}', this script rehearses ${SPACE_PYTHON}"
[[ -n "$sdk_version" ]] || fail "README front matter has no sdk_version"

# --- the interpreter -------------------------------------------------------------------------------
step "Python ${SPACE_PYTHON}"
python_bin="${FLUX_DEMO_SMOKE_PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  pyenv_root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  if [[ -x "$pyenv_root/versions/$SPACE_PYTHON/bin/python" ]]; then
    python_bin="$pyenv_root/versions/$SPACE_PYTHON/bin/python"
  else
    python_bin="$(command -v "python${SPACE_PYTHON%.*}" || true)"
  fi
fi
[[ -n "$python_bin" && -x "$python_bin" ]] \
  || fail "no Python ${SPACE_PYTHON} found (pyenv install ${SPACE_PYTHON}, or set FLUX_DEMO_SMOKE_PYTHON)"
found_version="$("$python_bin" -c 'import platform; print(platform.python_version())')"
[[ "${found_version%.*}" == "${SPACE_PYTHON%.*}" ]] \
  || fail "$python_bin is Python $found_version, not ${SPACE_PYTHON%.*}.x"
[[ "$found_version" == "$SPACE_PYTHON" ]] \
  || echo "note: $python_bin is Python $found_version; the Space runs $SPACE_PYTHON (same minor version)"
echo "$python_bin (Python $found_version)"

missing=()
# shellcheck disable=SC2013  # one package per word, as apt-get reads packages.txt
for package in $(cat packages.txt); do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
((${#missing[@]} == 0)) || fail "system packages from packages.txt missing: ${missing[*]} (apt-get install them)"

# --- the environment -------------------------------------------------------------------------------
cache_root="${FLUX_DEMO_SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-demo/space-smoke}"
key="$( { cat requirements.txt requirements-dev.txt; echo "python=$found_version sdk=$sdk_version";
          date -u +%G-W%V; } | sha256sum | cut -c1-16)"
venv="$cache_root/venv-$key"
py="$venv/bin/python"
if [[ "${FLUX_DEMO_SMOKE_FRESH:-0}" == "1" || ! -f "$venv/.complete" ]]; then
  step "fresh virtual environment $venv"
  rm -rf "$venv"
  # Older environments are superseded (each holds several GB of torch and CUDA libraries).
  if [[ -d "$cache_root" ]]; then
    find "$cache_root" -mindepth 1 -maxdepth 1 -name 'venv-*' -exec rm -rf {} +
  fi
  mkdir -p "$cache_root"
  "$python_bin" -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip

  torch_requirement="$(grep -E '^torch([<>=!~ ]|$)' requirements.txt | sed 's/#.*//' | tr -d ' ')"
  [[ -n "$torch_requirement" ]] || fail "requirements.txt names no torch requirement"
  step "pip install '$torch_requirement' (what a Space gets: the CUDA build from PyPI)"
  "$py" -m pip install --quiet "$torch_requirement"

  step "pip install -r requirements.txt"
  "$py" -m pip install --quiet -r requirements.txt

  step "pip install gradio==${sdk_version} (the front matter's sdk_version, as the Space builder pins it)"
  "$py" -m pip install --quiet "gradio[mcp]==${sdk_version}"

  step "pip install -r requirements-dev.txt (the test tools)"
  "$py" -m pip install --quiet -r requirements-dev.txt
  "$py" -m pip check
  touch "$venv/.complete"
else
  step "cached virtual environment $venv (same requirements, interpreter and week)"
  "$py" -m pip check
fi
"$py" - <<'EOF'
from importlib.metadata import version
names = ("torch", "diffusers", "transformers", "accelerate", "gradio", "gradio_client", "spaces", "huggingface_hub")
print("  ".join(f"{name}=={version(name)}" for name in names))
EOF

# --- serve and generate ----------------------------------------------------------------------------
work="$(mktemp -d -t flux-demo-space-smoke-XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$server_pid" 2>/dev/null || kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port/"
step "python app.py on $url (the default offline models: nano-schnell, nano-dev, nano-klein)"
# setsid: the server gets its own process group, so cleanup stops it and anything it started.
GRADIO_SERVER_NAME=127.0.0.1 GRADIO_SERVER_PORT="$port" GRADIO_ANALYTICS_ENABLED=False \
  GRADIO_TEMP_DIR="$work/gradio" FLUX_DEMO_TINY_DIR="$work/tiny-models" HF_HUB_OFFLINE=1 \
  FLUX_DEMO_MODELS= \
  setsid "$py" app.py >"$work/server.log" 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -n 40 "$work/server.log" >&2
    fail "python app.py exited before serving"
  fi
  if "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + 'config', timeout=2)" "$url" \
    2>/dev/null; then
    ready=1
    break
  fi
  sleep 1
done
((ready)) || { tail -n 40 "$work/server.log" >&2; fail "the server did not answer within 300 s"; }
echo "serving after ${SECONDS} s of this script"

step "one image through gradio_client: /generate on nano-schnell, 256x256, 4 steps, seed 1"
"$py" - "$url" <<'EOF' || { tail -n 40 "$work/server.log" >&2; fail "/generate through gradio_client"; }
import sys
import time

from gradio_client import Client
from PIL import Image

client = Client(sys.argv[1], verbose=False)
started = time.perf_counter()
image, seed, details = client.predict(
    prompt='a sign that says "FLUX"',
    model="nano-schnell",
    width=256,
    height=256,
    steps=4,
    guidance=0,
    seed=1,
    randomize_seed=False,
    api_name="/generate",
)
seconds = time.perf_counter() - started
path = image["path"] if isinstance(image, dict) else image
with Image.open(path) as png:
    png.load()
    assert png.format == "PNG", png.format
    assert png.size == (256, 256), png.size
    assert png.text, "the PNG carries no generation metadata"
assert int(seed) == 1, seed
print(f"PNG {png.size[0]}x{png.size[1]}, seed {seed}, {seconds:.2f} s; details: {details}")
EOF

cleanup_server() { kill -TERM -- "-$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
cleanup_server
server_pid=""
echo "server stopped"

# --- the fast tests on the Space's Python ----------------------------------------------------------
if [[ "${FLUX_DEMO_SMOKE_TESTS:-1}" != "0" ]]; then
  step "python -m pytest -m 'not server and not browser and not slow' on Python $found_version"
  "$py" -m pytest -m "not server and not browser and not slow" -q -p no:cacheprovider
fi

step "Space build rehearsal passed on Python $found_version in ${SECONDS} s"
