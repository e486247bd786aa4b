#!/usr/bin/env sh
# Runs otelpipe-gateway on seed 000's decK files, unchanged except for the hosts, which come
# from the environment:
#   COLLECTOR_HOST  where the collector listens (default 127.0.0.1; the seed's is the
#                   in-cluster collector-kong-collector.opentelemetry-operator-system.svc.cluster.local)
#   UPSTREAM_HOST   if set, replaces the seed's coupon/inventory/pricing.default upstream hosts
#   PLUGINS         the plugins file (default kong-plugins.yaml; kong-plugins-traces.yaml for step 7)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT INT TERM
seed_collector=collector-kong-collector.opentelemetry-operator-system.svc.cluster.local
sed "s/$seed_collector/${COLLECTOR_HOST:-127.0.0.1}/g" "$here/${PLUGINS:-kong-plugins.yaml}" >"$out/kong-plugins.yaml"
if [ -n "${UPSTREAM_HOST:-}" ]; then
  sed -E "s/host: (coupon|inventory|pricing)\.default$/host: $UPSTREAM_HOST/" \
    "$here/kong-services-routes.yaml" >"$out/kong-services-routes.yaml"
else
  cp "$here/kong-services-routes.yaml" "$out/kong-services-routes.yaml"
fi
KONG_TRACING_INSTRUMENTATIONS="${KONG_TRACING_INSTRUMENTATIONS:-all}" \
KONG_TRACING_SAMPLING_RATE="${KONG_TRACING_SAMPLING_RATE:-1.0}" \
KONG_STATUS_LISTEN="${KONG_STATUS_LISTEN:-0.0.0.0:8100}" \
  cargo run -p otelpipe-gateway --release -- \
    --config "$out/kong-services-routes.yaml" --config "$out/kong-plugins.yaml"
