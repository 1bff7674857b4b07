# syntax=docker/dockerfile:1
#
# chainsink's container image.
#
#   docker build -t chainsink:local --build-arg VERSION="$(git describe --tags --always --dirty)" .
#   docker run --rm chainsink:local version
#   docker run --rm -e CHAINSINK_DATABASE_URL=postgres://... chainsink:local migrate up
#   docker run -d -p 9090:9090 -e CHAINSINK_DATABASE_URL=... -e CHAINSINK_BROKERS=... \
#       -e CHAINSINK_TOPICS=blocks:bundle chainsink:local run
#
# Every flag is also an environment variable, CHAINSINK_<FLAG> (see `chainsink --help`); docker-compose.yml
# beside this file runs the whole stack (Kafka, Postgres, migrations, chainsink).
#
# glibc, not musl: confluent-kafka-go links a static librdkafka that it bundles prebuilt for glibc Linux
# (amd64 and arm64). Build and runtime must therefore both be glibc images, and the same Debian release
# (bookworm, glibc 2.36), so the binary never needs a newer glibc than the runtime has. An alpine (musl) image
# would need `go build -tags musl` in an alpine builder; we don't do that.
#
# Multi-arch: build natively per platform (e.g. `docker buildx build --platform linux/amd64,linux/arm64`, which
# runs the arm64 builder under emulation). The builder stage deliberately has no --platform=$BUILDPLATFORM:
# cross-compiling cgo would need a cross gcc and librdkafka for the target.

############################ build ############################
FROM golang:1.26-bookworm AS build
# go.mod asks for go 1.26.8: the 1.26 tag tracks the newest 1.26.x (an older one would fetch the toolchain).

# The golang image already has gcc and libc6-dev, which cgo needs (confluent-kafka-go and go-ethereum's
# secp256k1/blst are C). Pin the caches to the paths the cache mounts below use: the golang image's own
# GOPATH is /go, so without this the module cache would sit outside its mount.
ENV CGO_ENABLED=1 \
    GOMODCACHE=/root/go/pkg/mod \
    GOCACHE=/root/.cache/go-build

WORKDIR /src

# Modules first, keyed on go.mod/go.sum only: they land in the cache mount, which the build step reuses.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod \
    go mod download

COPY . .

ARG VERSION=dev
# .git is not in the build context (.dockerignore), so the version comes only from VERSION.
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X github.com/chainsink/chainsink/internal/cli.Version=${VERSION}" \
        -o /out/chainsink ./cmd/chainsink \
 && /out/chainsink version

############################ runtime ############################
FROM debian:bookworm-slim

ARG VERSION=dev
LABEL org.opencontainers.image.title="chainsink" \
      org.opencontainers.image.description="ETL indexer for EVM chains: Kafka -> decode -> PostgreSQL, exactly once" \
      org.opencontainers.image.source="https://github.com/chainsink/chainsink" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# ca-certificates: TLS to Kafka (librdkafka's bundled OpenSSL probes /etc/ssl/certs) and to Postgres
# (sslmode=verify-full). Nothing else: the binary links only libc and libm, which the base image has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Health checks without curl or wget: deploy/chainsink-healthcheck speaks HTTP through bash's /dev/tcp (bash
# is part of bookworm-slim), so the image gains no package and no CVEs to track. There is deliberately no
# HEALTHCHECK instruction: the same image also runs one-shot commands (`migrate up`, `version`) that serve no
# HTTP, so the check belongs to the service that runs `chainsink run` (see docker-compose.yml; in Kubernetes
# use httpGet probes on /healthz and /readyz instead).
COPY --chmod=0755 deploy/chainsink-healthcheck /usr/local/bin/chainsink-healthcheck
COPY --from=build /out/chainsink /usr/local/bin/chainsink
# The binary embeds the ABIs of abi/abis, some under GPL: ship their licenses and sources with it.
COPY LICENSE /usr/share/doc/chainsink/
COPY abi/abis/SOURCES.md /usr/share/doc/chainsink/abis/
COPY abi/abis/LICENSES /usr/share/doc/chainsink/abis/LICENSES

# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it. /etc/chainsink is where
# --contracts and --abi-dir files are mounted by convention (read-only is fine: chainsink writes no files).
RUN groupadd --system --gid 10001 chainsink \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin chainsink \
 && mkdir -p /etc/chainsink
USER 10001:10001

# `chainsink run` serves /metrics, /healthz and /readyz here; the variable is ignored by the other commands.
ENV CHAINSINK_METRICS_ADDR=:9090
EXPOSE 9090

# chainsink handles SIGTERM itself (flushes within --shutdown-timeout, default 30s, then exits 0), so it runs
# as PID 1 without an init; give `docker stop` more than that: `docker stop -t 45`, stop_grace_period: 45s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["chainsink"]
CMD ["run"]
