#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine of this kind: system packages,
# a virtualenv in .venv, and the package with its extras. Idempotent: re-running skips what is done.
#   scripts/bootstrap.sh            runtime only (serve)
#   scripts/bootstrap.sh dev        plus training, test and browser-test tools
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-runtime}"

apt_packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core)  # WeasyPrint renders PDFs
if [[ $profile == dev ]]; then
  apt_packages+=(chromium poppler-utils)  # browser tests; pdftoppm/pdftotext for report checks
  # npm fetches axe-core for the accessibility checks. Machines of this kind ship Node.js with its own
  # npm, which Debian's npm package conflicts with, so Debian's is installed only when none is there.
  command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
  apt_packages+=(wrk)  # the benchmark's load generator (python -m bench)
  apt_packages+=(iptables)  # a test drops the packets of a database connection, as a network cut does
  # tests/ops/test_image.py makes the runtime image's virtualenv with Debian's Python 3.11, as the base image's
  apt_packages+=(python3.11 python3.11-venv)
  # tests/ops/test_docker_image.py builds the image with Docker's engine, on a base image made with debootstrap;
  # tests/ops/test_compose.py runs compose.yaml with Compose (Debian's docker-compose, 1.29)
  apt_packages+=(docker.io debootstrap docker-compose)
fi
sudo_cmd=""
[[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$profile-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [[ $profile == dev ]]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
# Byte-compile the service's own package: machines of this kind set PYTHONDONTWRITEBYTECODE=1, so without
# this every start compiles ~100 modules from source (0.2 s of a 1.2 s start-up). Stale files are ignored
# by Python (it checks the source's time), so re-running after an edit is enough.
.venv/bin/python -m compileall -q screening >/dev/null

if [[ $profile == dev ]] && ! docker info >/dev/null 2>&1; then
  # Machines of this kind run no service manager, so Debian's package leaves its daemon stopped: start it, once.
  # Where it cannot run, the Docker test says why (and fails in CI, which sets SCREENING_REQUIRE_DOCKER=1).
  dockerd_log="${TMPDIR:-/tmp}/screening-dockerd.log"
  $sudo_cmd setsid dockerd </dev/null >"$dockerd_log" 2>&1 &
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || echo "dockerd did not start (its log: $dockerd_log)" >&2
fi

if [[ $profile == dev ]]; then
  # axe-core for the browser tests' accessibility checks, pinned in package-lock.json (npm registry only).
  npm_stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
  if [[ ! -f $npm_stamp ]]; then
    npm ci --no-audit --no-fund --silent
    touch "$npm_stamp"
  fi
fi
