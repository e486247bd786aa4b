#!/usr/bin/env sh
# Seed 001, method 2 (Kong Gateway 3.8 or later): creates the global opentelemetry plugin
# through the Admin API with the guide's curl command, exporting with the guide's
# authentication header (step 4's `headers: X-Auth-Token`).
#
#   HTTP_ENDPOINT   the Managed Service for OpenTelemetry HTTP endpoint
#                   (default: a local collector, http://127.0.0.1:4318/v1/traces)
#   SERVICE_NAME    the application name shown in the console (default kong-dev)
#   AUTH_TOKEN      the X-Auth-Token value (default secret-token, as in the guide)
#   KONG_ADMIN_URL  the Admin API (default http://localhost:8001)
set -eu
HTTP_ENDPOINT="${HTTP_ENDPOINT:-http://127.0.0.1:4318/v1/traces}"
SERVICE_NAME="${SERVICE_NAME:-kong-dev}"
AUTH_TOKEN="${AUTH_TOKEN:-secret-token}"
KONG_ADMIN_URL="${KONG_ADMIN_URL:-http://localhost:8001}"

curl -sS --fail-with-body -X POST "$KONG_ADMIN_URL/plugins/" \
--header "accept: application/json" \
--header "Content-Type: application/json" \
--data '
{
  "name": "opentelemetry",
  "config": {
    "traces_endpoint": "'"$HTTP_ENDPOINT"'",
    "headers": {
      "X-Auth-Token": "'"$AUTH_TOKEN"'"
    },
    "resource_attributes": {
      "service.name": "'"$SERVICE_NAME"'"
    }
  }
}'
echo
