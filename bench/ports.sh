#!/usr/bin/env bash
# Published-port proxy: latency and throughput through `berth run -p`, beside
# Docker's `docker run -p` (docker-proxy) when a Docker engine answers.
# Loopback only. Not part of CI; run by hand: bash bench/ports.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages busybox-static wrk hyperfine curl
cargo build --quiet --release -p berth
berth="$PWD/target/release/berth"
work=$(mktemp -d /tmp/berth-bench-ports.XXXXXX)
export BERTH_ROOT="$work/root"
trap '"$berth" rm -f bench-web >/dev/null 2>&1 || true; docker rm -f bench-web >/dev/null 2>&1 || true' EXIT

make_busybox_rootfs "$work/rootfs" "$work/busybox.tar"
"$berth" import "$work/busybox.tar" busybox:bench >/dev/null
mkdir -p "$work/site"
head -c 1048576 /dev/urandom >"$work/site/1m.bin"
echo hello >"$work/site/index.html"

run_bench() { # name url
    echo "== $1: latency (small page), 10 s, 4 connections"
    wrk -t2 -c4 -d10s "$2/index.html" | sed -n '3,4p;7p'
    echo "== $1: throughput (1 MiB file), 10 s, 4 connections"
    wrk -t2 -c4 -d10s "$2/1m.bin" | sed -n '7,8p'
}

"$berth" run -d --name bench-web -p 127.0.0.1:18081:80 -v "$work/site:/www:ro" busybox:bench httpd -f -p 80 -h /www >/dev/null
sleep 1
run_bench "berth -p" http://127.0.0.1:18081

if docker info >/dev/null 2>&1; then
    docker load -q -i <("$berth" save busybox:bench) >/dev/null
    docker run -d --name bench-web -p 127.0.0.1:18082:80 -v "$work/site:/www:ro" busybox:bench httpd -f -p 80 -h /www >/dev/null
    sleep 1
    # An engine started without its bridge and iptables (as scripts/test
    # starts one) cannot publish ports.
    run_bench "docker -p" http://127.0.0.1:18082 || echo "(docker -p not measured: this engine does not publish ports)"
else
    echo "(no Docker engine answers: docker -p not measured)"
fi
