#!/usr/bin/env bash
# Make a Docker engine available for rewardkit-code's sandbox tests, then build the
# sandbox image offline (no registry) from this machine's Python.
#   - installs docker.io with apt-get when dockerd is missing (needs root),
#   - starts dockerd in the background when `docker info` does not answer,
#   - waits (bounded, DOCKER_WAIT_SECONDS, default 60) until `docker info` works,
#   - runs `rewardkit-code sandbox build-image` and `sandbox check`.
# Exits non-zero with a clear message if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

WAIT="${DOCKER_WAIT_SECONDS:-60}"
LOG="${DOCKERD_LOG:-/tmp/rewardkit-dockerd.log}"

say() { echo "[docker.sh] $*"; }
die() { echo "[docker.sh] ERROR: $*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
    say "a Docker engine already answers"
else
    if ! command -v dockerd >/dev/null 2>&1; then
        [ "$(id -u)" = "0" ] || die "dockerd is missing and installing docker.io needs root"
        say "installing docker.io with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || die "apt-get update failed"
        apt-get install -y -qq docker.io >/dev/null || die "apt-get install docker.io failed"
    fi
    command -v docker >/dev/null 2>&1 || die "the docker client is missing (expected with docker.io)"
    wait_engine() {
        for _ in $(seq "$WAIT"); do
            docker info >/dev/null 2>&1 && return 0
            sleep 1
        done
        return 1
    }
    started=""
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        say "starting dockerd in the background (log: $LOG)"
        nohup dockerd >"$LOG" 2>&1 </dev/null &
        started=$!
    fi
    if ! wait_engine; then
        if [ -n "$started" ]; then
            # overlayfs is not available everywhere (nested containers): retry with vfs
            say "dockerd did not answer within ${WAIT}s; retrying with --storage-driver=vfs"
            kill "$started" 2>/dev/null || true
            wait "$started" 2>/dev/null || true
            nohup dockerd --storage-driver=vfs >>"$LOG" 2>&1 </dev/null &
        fi
        wait_engine || {
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            die "the Docker engine did not answer within ${WAIT}s (see $LOG)"
        }
    fi
    say "Docker engine is up"
fi

say "building the sandbox image offline from the host interpreter"
uv run --no-sync rewardkit-code sandbox build-image || die "building the sandbox image failed"
uv run --no-sync rewardkit-code sandbox check --backend docker \
    --image rewardkit-code-sandbox:latest || die "the sandbox image does not run programs"
say "done"
