# syntax=docker/dockerfile:1
#
# fluxhook's images: one target per binary, each holding that binary alone.
#
#   docker build --target fluxhook-receiver -t fluxhook-receiver:dev .
#   docker build --target fluxhook-register -t fluxhook-register:dev .
#
# docs/deploy.md shows how to run them.

# The toolchain CI builds with (Cargo.toml's rust-version is the minimum).
# On Alpine the host target is x86_64- or aarch64-unknown-linux-musl, whose
# binaries are statically linked: they need no libc in the final image.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# C headers for ring's assembly and C sources (rustls' crypto provider).
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# The command .ci/run builds the release binaries with (crates/fluxhook-manifests
# checks the two agree). The caches keep crates and build output between
# builds; the binaries are copied out of the cached target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin fluxhook-receiver --bin fluxhook-register \
    && mkdir /out \
    && cp target/release/fluxhook-receiver target/release/fluxhook-register /out/

# Nothing but the binary, run as nobody (65534:65534) as Flux's images run
# (fluxcd/notification-controller v1.9.3 Dockerfile: USER 65534:65534); a
# numeric user lets the kubelet check runAsNonRoot. The binary writes no
# file, so a read-only root filesystem suits it. No CA bundle is needed: Git
# hosts and OIDC issuers are verified against the Mozilla roots compiled in
# (webpki-roots, through reqwest's rustls-tls), the Kubernetes API against the
# CA of the ServiceAccount or kubeconfig.
FROM scratch AS fluxhook-register
COPY --from=build /out/fluxhook-register /usr/local/bin/fluxhook-register
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/fluxhook-register"]

# Last, so that a plain `docker build .` builds the receiver.
FROM scratch AS fluxhook-receiver
COPY --from=build /out/fluxhook-receiver /usr/local/bin/fluxhook-receiver
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/fluxhook-receiver"]
