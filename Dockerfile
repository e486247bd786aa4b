# One image with both binaries: the collector `otelpipe` and the gateway `otelpipe-gateway`
# (and the demo's `demo-shop` and `demo-traffic`, for docker-compose.yml).
#
#   docker build -t otelpipe:0.1.0 .
#   docker run --rm -p 4317:4317 -p 4318:4318 otelpipe:0.1.0                 # embedded default config
#   docker run --rm -v $PWD/config:/conf otelpipe:0.1.0 --config=/conf/jaeger.yaml
#   docker run --rm --entrypoint otelpipe-gateway -v $PWD/examples/compose:/kong \
#     -p 8000:8000 -p 8100:8100 otelpipe:0.1.0 --config=/kong/kong.yaml
#
# As an OpenTelemetry Operator collector image (`spec.image`), the operator's
# `--config=/conf/collector.yaml` arguments replace CMD and go to the otelpipe entrypoint.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p otelpipe -p otelpipe-gateway -p otelpipe-demo --bins \
    && mkdir -p /out \
    && cp target/release/otelpipe target/release/otelpipe-gateway \
       target/release/demo-shop target/release/demo-traffic /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 otelpipe \
    && useradd --system --uid 10001 --gid otelpipe --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin otelpipe \
    && install -d -o otelpipe -g otelpipe /var/lib/otelpipe
COPY --from=build /out/otelpipe /out/otelpipe-gateway /out/demo-shop /out/demo-traffic /usr/local/bin/
COPY config/ /etc/otelpipe/
# Listeners of the shipped configs bind every interface inside the container.
ENV OTELPIPE_LISTEN_HOST=0.0.0.0 \
    KONG_PROXY_LISTEN=0.0.0.0:8000 \
    KONG_STATUS_LISTEN=0.0.0.0:8100
USER 10001:10001
WORKDIR /var/lib/otelpipe
# Collector: OTLP gRPC, OTLP HTTP, own metrics, prometheus exporter, health_check, tcplog.
# Gateway: proxy, Admin API, Status API.
EXPOSE 4317 4318 8888 8889 13133 54525 8000 8001 8100
ENTRYPOINT ["otelpipe"]
CMD []
