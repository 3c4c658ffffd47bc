# Strøm's one container image: `stroem serve` or `stroem work`, chosen by STROEM_ROLE.
#
# Built from local inputs only, so it builds where no image registry is reachable (CI here):
# `cargo xtask image` builds the static (musl) binary and assembles its root filesystem under
# dist/image/rootfs — the binary, Debian's static busybox as /bin/sh and the common tools, CA
# certificates, a `stroem` user and the default configuration — and then runs
#   podman build --format docker -t stroem:VERSION .     (or `docker build`)
# A release pipeline does the same per architecture; docs/deploying.md shows how, and a
# multi-stage variant for pipelines that build the binary inside Docker.
FROM scratch

COPY dist/image/rootfs/ /
# The data volume belongs to the unprivileged user the image runs as.
COPY --chown=10001:10001 dist/image/data/ /var/lib/stroem/

ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    STROEM_ROLE=serve \
    STROEM_CONFIG=/etc/stroem/stroem.yaml \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    HOME=/var/lib/stroem

USER 10001:10001
WORKDIR /var/lib/stroem
VOLUME ["/var/lib/stroem"]
EXPOSE 8080

# `stroem healthcheck` asks GET /healthz of this container's server (STROEM_ROLE=serve) or of
# the worker's server_url (STROEM_ROLE=work). Podman keeps it only with `--format docker`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/stroem", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/stroem"]
