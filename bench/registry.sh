#!/usr/bin/env bash
# Push and pull of a ~100 MB image against a local docker-registry, berth
# beside `skopeo copy` (and `docker push`/`docker pull` when an engine
# answers): cold (nothing in the registry / nothing local) and warm (every
# layer already there). Loopback only. Not part of CI; run by hand:
#   bash bench/registry.sh            (RUNS=5 by default)
#
# What each side does, so the numbers compare like with like:
# - push: berth compresses the stored (uncompressed) layer and uploads it;
#   skopeo reads the same layer from `berth save --format oci` and compresses
#   it too. Warm: both find the blob in the registry (berth by the digest it
#   recorded, skopeo through its blob-info cache).
# - pull: berth downloads, verifies, keeps the compressed blob and unpacks
#   it into its store. skopeo is measured twice: to an OCI layout directory
#   (download and verify, no unpacking: less work than berth) and into
#   containers-storage, as `podman pull` does (download, verify, unpack: the
#   same work).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages busybox-static skopeo docker-registry hyperfine curl
cargo build --quiet --release -p berth
berth="$PWD/target/release/berth"
work=$(mktemp -d /tmp/berth-bench-registry.XXXXXX)
port=$((20000 + RANDOM % 20000))
host="127.0.0.1:$port"
export DOCKER_CONFIG="$work/docker-config"

cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $host
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
cleanup() {
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
    # containers-storage leaves its overlay mounts behind.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -fs "http://$host/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done

# The image: busybox plus ~100 MB of this machine's own /usr (libraries,
# binaries, data: what application images hold), the first files in sorted
# order so a machine gives the same image every run.
make_busybox_rootfs "$work/rootfs" "$work/busybox.tar"
find /usr/lib /usr/share -xdev -type f -size -20M -printf '%s %p\n' 2>/dev/null | sort -k2 |
    awk '{ total += $1; if (total <= 100000000) print $2 }' >"$work/files.txt"
tar --numeric-owner --owner=0 --group=0 -cf - -T "$work/files.txt" 2>/dev/null | tar -C "$work/rootfs" -xf -
tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf "$work/image.tar" .
image="$host/bench/app:v1"
"$berth" --root "$work/pristine" import "$work/image.tar" "$image" >/dev/null
"$berth" --root "$work/pristine" save --format oci -o "$work/image-oci.tar" "$image"
echo "image: $(du -h "$work/image.tar" | cut -f1) uncompressed, one layer"

reset_registry="rm -rf $work/registry/docker"
fresh_push_root="rm -rf $work/push-root && cp -a $work/pristine $work/push-root"
# A cold pull goes to a new directory each run, and nothing is deleted in
# between: ext4 slows the creation of inodes right after many were deleted
# (its recently-deleted check), which would charge the unpacking side for
# the previous run's cleanup.
# Each run also starts with the page cache dropped: what a previous run left
# there (or freed) otherwise decides how fast this run's writes are.
fresh_pull_root="echo $work/cold-\$(date +%s%N) >$work/cold.path; sync; echo 3 >/proc/sys/vm/drop_caches"
cold_root="\$(cat $work/cold.path)"


echo "== push, cold (empty registry)"
bench "berth push" "$reset_registry; $fresh_push_root" \
    "$berth --root $work/push-root push -q $image"
bench "skopeo copy oci-archive: -> docker://" "$reset_registry" \
    "skopeo copy -q --dest-tls-verify=false oci-archive:$work/image-oci.tar docker://$host/bench/skopeo:v1"

layer_size() { # repository:tag -> size of its first layer blob
    curl -fs -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" \
        "http://$host/v2/${1%:*}/manifests/${1##*:}" | grep -o '"size": *[0-9]*' | sed -n 2p | grep -o '[0-9]*$'
}

echo "== push, warm (every blob in the registry)"
"$berth" --root "$work/pristine" push -q "$image" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci-archive:$work/image-oci.tar" "docker://$host/bench/skopeo:v1"
echo "compressed layer: berth $(layer_size bench/app:v1) bytes, skopeo $(layer_size bench/skopeo:v1) bytes"
bench "berth push" "true" "$berth --root $work/pristine push -q $image"
bench "skopeo copy oci-archive: -> docker://" "true" \
    "skopeo copy -q --dest-tls-verify=false oci-archive:$work/image-oci.tar docker://$host/bench/skopeo:v1"

# ext4 passes over inodes freed in the last 30 s (dirty_expire_centisecs)
# when it makes new ones; the push phase above just freed thousands.
sleep 31
echo "== pull, cold (nothing local)"
bench "berth pull" "$fresh_pull_root" "$berth --root $cold_root/berth pull -q $image"
bench "skopeo copy docker:// -> oci: (no unpack)" "$fresh_pull_root" \
    "skopeo copy -q --src-tls-verify=false docker://$image oci:$cold_root-skopeo:v1"
bench "skopeo copy docker:// -> containers-storage: (unpacks)" "$fresh_pull_root" \
    "skopeo copy -q --src-tls-verify=false docker://$image containers-storage:[overlay@$cold_root-cs/root+$cold_root-cs/run]$image"

echo "== pull, warm (everything local)"
"$berth" --root "$work/pull-root" pull -q "$image" >/dev/null 2>&1 || true
skopeo copy -q --src-tls-verify=false "docker://$image" "oci:$work/skopeo-dir:v1" >/dev/null 2>&1 || true
bench "berth pull" "true" "$berth --root $work/pull-root pull -q $image"
bench "skopeo copy docker:// -> oci:" "true" \
    "skopeo copy -q --src-tls-verify=false docker://$image oci:$work/skopeo-dir:v1"

if docker info >/dev/null 2>&1; then
    echo "== docker (engine answers)"
    docker load -q -i <("$berth" --root "$work/pristine" save "$image") >/dev/null
    bench "docker push, cold" "$reset_registry" "docker push -q $image"
    bench "docker push, warm" "true" "docker push -q $image"
    bench "docker pull, cold" "docker rmi -f $image; sync; echo 3 >/proc/sys/vm/drop_caches" "docker pull -q $image"
else
    echo "(no Docker engine answers: docker push/pull not measured)"
fi
