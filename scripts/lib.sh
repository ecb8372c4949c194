# Shared by the scripts: installs Debian packages that are missing.
# shellcheck shell=bash

# ensure_packages PKG...: apt-get install the packages not yet installed.
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# make_busybox_rootfs DIR TAR: a minimal root filesystem from Debian's
# busybox-static (the binary, its applet links, /etc/passwd and /etc/group).
make_busybox_rootfs() {
    local dir=$1 tar=$2
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/etc" "$dir/root" "$dir/tmp"
    chmod 1777 "$dir/tmp"
    chmod 700 "$dir/root"
    cp /bin/busybox "$dir/bin/busybox"
    local applet
    for applet in $("$dir/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf "$tar" .
}

# start_private_dockerd DIR: a Docker engine of our own for interoperability
# tests, on a private socket with no networking of its own (no bridge, no
# iptables), stopped when the calling script exits. Exports DOCKER_HOST when the
# engine answers; otherwise warns and leaves the Docker tests to skip.
start_private_dockerd() {
    local dir=$1
    command -v dockerd >/dev/null 2>&1 || { echo "dockerd not installed; Docker interop tests will skip" >&2; return 0; }
    mkdir -p "$dir"
    local sock="$dir/docker.sock"
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        --host "unix://$sock" --bridge=none --iptables=false --ip-masq=false \
        >"$dir/dockerd.log" 2>&1 &
    local pid=$!
    # The engine goes with the caller, and so does everything it kept.
    trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf '$dir'" EXIT
    local i
    for i in $(seq 1 60); do
        if DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then
            export DOCKER_HOST="unix://$sock"
            return 0
        fi
        sleep 1
    done
    echo "dockerd did not start (see $dir/dockerd.log); Docker interop tests will skip" >&2
    tail -5 "$dir/dockerd.log" >&2 || true
}

# bench NAME PREPARE COMMAND: time COMMAND $RUNS times (5 by default), PREPARE
# before each run; with hyperfine when installed, else with bash's time.
bench() {
    local runs=${RUNS:-5}
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine --runs "$runs" --style basic --prepare "$2" -n "$1" "$3"
        return
    fi
    local i
    echo "Benchmark: $1 ($runs runs)"
    for i in $(seq 1 "$runs"); do
        bash -c "$2" >/dev/null 2>&1
        TIMEFORMAT="  %R s"
        time bash -c "$3" >/dev/null 2>&1
    done
}
