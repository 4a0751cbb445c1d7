# The longin image, for manifests/docker-compose.yml: `docker build -t longin .`
# (not built by the test suite: this machine cannot pull the base images).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin longin

FROM debian:bookworm-slim
# wget: the compose healthcheck; ca-certificates: registries and git over TLS;
# git and openssh-client: builds from spec.source (fetches, deploy keys).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates wget git openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/longin /usr/local/bin/longin
ENV LONGIN_DATA_DIR=/var/lib/longin \
    LONGIN_LISTEN=0.0.0.0:8080
VOLUME /var/lib/longin
EXPOSE 8080
ENTRYPOINT ["longin"]
CMD ["serve"]
