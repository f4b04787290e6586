# The ebb image for people with Docker: the same image `scripts/image.sh build` writes without
# a daemon (target/image/ebb.oci.tar, the one built and tested on ebb's machines). This file is
# not built there: its base image (docker.io/library/rust) is not reachable from them, and
# there is no Docker daemon. Both fill the image with one implementation, `image.sh stage`:
# the release binary, the glibc libraries `ldd` names, /etc/passwd with nobody,
# /etc/nsswitch.conf and /etc/hosts.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/image.sh stage ebb /rootfs

FROM scratch
ARG VERSION=0.1.0
COPY --from=build /rootfs /
USER 65534:65534
ENV PATH=/usr/local/bin
ENTRYPOINT ["/usr/local/bin/ebb"]
LABEL org.opencontainers.image.title="ebb" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.description="ebb: queue-driven autoscaling for Kubernetes"
