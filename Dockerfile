# The ebb binary in a small image, as the Helm charts expect it (`ebb producer`, `ebb consumer`).
# Untested here (no Docker on the build machines): scripts/bootstrap.sh builds it for kind.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ebb

FROM debian:bookworm-slim
COPY --from=build /src/target/release/ebb /usr/local/bin/ebb
USER 65534:65534
ENTRYPOINT ["ebb"]
