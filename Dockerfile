# One image with every Taproom binary: `taproom` (any one service: `taproom users serve`, ..., or the
# local stack) and the per-service `taproom-users`, `taproom-beers`, `taproom-orders`,
# `taproom-router`, plus schema/ (the router's supergraph: /app/schema/supergraph.graphql).
# Build: docker build -t taproom:0.1.0 .   Run one service: docker run taproom:0.1.0 users serve
# deploy/kubernetes/ runs it on Kubernetes.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
      -p taproom -p taproom-users -p taproom-beers -p taproom-orders -p taproom-router \
 && mkdir /out \
 && cp target/release/taproom target/release/taproom-users target/release/taproom-beers \
       target/release/taproom-orders target/release/taproom-router /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 taproom \
 && useradd --uid 10001 --gid taproom --no-create-home --shell /usr/sbin/nologin taproom
COPY --from=build /out/ /usr/local/bin/
COPY schema/ /app/schema/
WORKDIR /app
USER 10001:10001
# Every service is configured by env variables (README.md, "Configuration"); LISTEN must be
# 0.0.0.0:<port> in a container.
ENTRYPOINT ["taproom"]
CMD ["--help"]
