# syntax=docker/dockerfile:1
# The inferbench image: one static-ish binary (`inferbench mock|router|run|...`) on distroless.
#   docker build -t inferbench .
#   docker run --rm -p 8000:8000 inferbench mock --host 0.0.0.0 --port 8000
#   docker run --rm -v "$PWD/results:/work/results" inferbench run --target http://HOST:8000
# The mock and router bind 127.0.0.1 by default: pass --host 0.0.0.0 inside a container.
# scripts/check-dockerfile checks this file against the workspace (it cannot be built offline).

# --- build -----------------------------------------------------------------------------------
# The official Rust image at the workspace's rust-version (Cargo.toml [workspace.package]; the
# MSRV-aware resolver keeps Cargo.lock within it), on Debian 12 (bookworm), the same glibc as the
# runtime image below.
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# No debuginfo in the image (the workspace's release profile keeps some for local profiling);
# with debug off, cargo also strips the standard library's debuginfo.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
# rusqlite builds SQLite from source (bundled, static); there is no TLS, so no OpenSSL.
# The cache mounts keep the registry and target/ between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin inferbench \
    && install -D -m 0755 target/release/inferbench /out/inferbench \
    && mkdir -p /out/work/results

# --- runtime ---------------------------------------------------------------------------------
# The binary needs only glibc (libc, libm) and libgcc_s (ldd), which the distroless "cc" image
# has. Its :nonroot variant runs as UID/GID 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/inferbench /usr/local/bin/inferbench
# A working directory the non-root user can write: `inferbench run` writes results/ here.
COPY --from=build --chown=65532:65532 /out/work /work
WORKDIR /work
USER 65532:65532
# The default ports of `inferbench mock` (8000) and `inferbench router` (8080).
EXPOSE 8000 8080
ENTRYPOINT ["/usr/local/bin/inferbench"]
CMD ["--help"]
