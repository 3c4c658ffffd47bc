#!/bin/bash
# Sets up the container engine the tests use: rootful podman with runc, a local image
# `localhost/stroem-test:latest` built from Debian's static busybox, and podman's Docker API on a
# unix socket (for the Docker runner's tests). Idempotent: on a machine where it already ran it
# only restarts the API service. No registry is reachable from CI, so nothing here pulls.
#
# Why the engine configuration: this VM cannot raise hard rlimits (no CAP_SYS_RESOURCE) and
# mounts cgroups in hybrid mode, which crun rejects; runc works.
#
# Prints DOCKER_HOST=unix://…; stop the service with: kill "$(cat "$WORK/service.pid")".
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SOCK=${SOCK:-/tmp/stroem-podman.sock}
WORK=${WORK:-/tmp/stroem-ctr}

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! [ -x /bin/busybox ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc busybox-static >/dev/null
fi
mkdir -p /etc/containers "$WORK"
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF

if ! podman image exists localhost/stroem-test:latest; then
    rm -rf "$WORK/rootfs"
    mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/tmp" "$WORK/rootfs/etc"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    for applet in $("$WORK/rootfs/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$WORK/rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$WORK/rootfs/etc/passwd"
    tar -C "$WORK/rootfs" -c . \
        | podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - \
            localhost/stroem-test:latest >/dev/null
fi
podman run --rm --network none localhost/stroem-test:latest sh -c 'echo container-ok' >/dev/null

if [ -f "$WORK/service.pid" ]; then
    kill "$(cat "$WORK/service.pid")" 2>/dev/null || true
fi
rm -f "$SOCK"
nohup podman system service --time=0 "unix://$SOCK" >"$WORK/service.log" 2>&1 &
echo $! > "$WORK/service.pid"
for _ in $(seq 50); do
    curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null && break
    sleep 0.1
done
echo "DOCKER_HOST=unix://$SOCK"
