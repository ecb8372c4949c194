#!/usr/bin/env bash
# `berth build` of a 100 MB / 2,000-file context beside `docker build` and
# `buildah bud --layers` (where installed): cold (no cache), fully cached,
# and one file changed (the COPY and the RUN after it run again). Not part
# of CI; run by hand:
#   bash bench/build.sh            (RUNS=5 by default)
#
# Every tool builds the same Dockerfile on the same busybox base:
#   COPY . /app   then   RUN find /app -type f | wc -l > /count
# Docker is the engine scripts/test starts, or any that `docker info` reaches
# (its classic builder: BuildKit needs the buildx plugin, not packaged here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages busybox-static hyperfine python3
cargo build --quiet --release -p berth
berth="$PWD/target/release/berth"
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT

make_busybox_rootfs "$work/rootfs" "$work/busybox.tar"
"$berth" --root "$work/pristine" import "$work/busybox.tar" bench-base:1 >/dev/null
"$berth" --root "$work/pristine" save -o "$work/base-docker.tar" bench-base:1

# 2,000 files of 50 kB of pseudo-random bytes (fixed seed: the same context
# every run), in 40 directories.
ctx="$work/context"
python3 - "$ctx" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
for d in range(40):
    os.makedirs(f"{root}/dir{d:02}", exist_ok=True)
    for f in range(50):
        with open(f"{root}/dir{d:02}/file{f:02}.bin", "wb") as out:
            out.write(rng.randbytes(50_000))
PY
printf 'FROM bench-base:1\nCOPY . /app\nRUN find /app -type f | wc -l > /count\n' >"$ctx/Dockerfile"
echo "context: $(du -sh "$ctx" | cut -f1), $(find "$ctx" -type f | wc -l) files"

change_one="python3 -c \"import os; open('$ctx/dir00/file00.bin','ab').write(os.urandom(8))\""


root="$work/berth-root"
fresh_root="rm -rf $root && cp -a $work/pristine $root"
echo "== cold (no build cache)"
bench "berth build" "$fresh_root" "$berth --root $root build -q -t app $ctx"
echo "== fully cached"
"$berth" --root "$root" build -q -t app "$ctx" >/dev/null
bench "berth build" "true" "$berth --root $root build -q -t app $ctx"
echo "== one file changed"
bench "berth build" "$change_one" "$berth --root $root build -q -t app $ctx"

if docker info >/dev/null 2>&1; then
    docker load -q -i "$work/base-docker.tar" >/dev/null
    echo "== docker build: cold, cached, one file changed"
    bench "docker build --no-cache" "true" "docker build -q --no-cache -t bench-app $ctx"
    docker build -q -t bench-app "$ctx" >/dev/null
    bench "docker build (cached)" "true" "docker build -q -t bench-app $ctx"
    bench "docker build (one file changed)" "$change_one" "docker build -q -t bench-app $ctx"
    docker rmi -f bench-app bench-base:1 >/dev/null 2>&1 || true
else
    echo "(no Docker engine answers: docker build not measured)"
fi

if command -v buildah >/dev/null 2>&1; then
    b="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver overlay"
    $b pull -q "docker-archive:$work/base-docker.tar" >/dev/null
    $b tag "$($b images -q | head -1)" bench-base:1
    echo "== buildah bud --layers: cold, cached, one file changed"
    bench "buildah bud --layers --no-cache" "true" "$b bud -q --layers --no-cache --isolation chroot -t bench-app $ctx"
    $b bud -q --layers --isolation chroot -t bench-app "$ctx" >/dev/null
    bench "buildah bud --layers (cached)" "true" "$b bud -q --layers --isolation chroot -t bench-app $ctx"
    bench "buildah bud --layers (one file changed)" "$change_one" "$b bud -q --layers --isolation chroot -t bench-app $ctx"
else
    echo "(buildah not installed: not measured)"
fi
