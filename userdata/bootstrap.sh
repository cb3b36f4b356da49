#!/bin/bash
# Host bootstrap (Amazon Linux 2023), run once by the instance's user data after it has unpacked the
# stack's asset into /opt/bluegreen/{nginx,app,userdata} and written /etc/bluegreen/env.
# Any failure exits non-zero; the user data's exit trap then sends a FAILURE signal, and
# CloudFormation rolls back instead of reporting a half-built host as fine.
set -euo pipefail

log() { echo "bootstrap: $*"; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

home=/opt/bluegreen
# shellcheck disable=SC1091
. /etc/bluegreen/env
: "${STAGE:?}" "${AWS_REGION:?}" "${ACCESS_LOG_GROUP:?}" "${ERROR_LOG_GROUP:?}" "${METRICS_NAMESPACE:?}"

# Docker Compose v2 plugin, pinned. Checksums as published for this release (the same values the
# Docker Official Images pin in docker-library/docker versions.json).
COMPOSE_VERSION=2.29.6
declare -A COMPOSE_SHA256=(
  [x86_64]=cbafe95cca26f77e9271978ad81387dd888eb36e9fdfad3e6fa3b173fcfe9dae
  [aarch64]=fd39a8ad23303fc079449444a294ea4261f27ed55e22c0fb18a8a55cb550f7e1
)

log "packages"
dnf install -y -q docker amazon-cloudwatch-agent logrotate
systemctl enable --now docker

arch=$(uname -m)
sum=${COMPOSE_SHA256[$arch]:-}
[ -n "$sum" ] || { log "no pinned Docker Compose build for $arch"; exit 1; }
log "docker compose $COMPOSE_VERSION ($arch)"
tmp=$(mktemp)
curl -fsSL --retry 5 --retry-delay 2 -o "$tmp" \
  "https://github.com/docker/compose/releases/download/v${COMPOSE_VERSION}/docker-compose-linux-${arch}"
echo "$sum  $tmp" | sha256sum -c --quiet -
install -D -m 0755 "$tmp" /usr/local/lib/docker/cli-plugins/docker-compose
rm -f "$tmp"
docker compose version

log "layout"
# conf/ mirrors local mode: links to the repo's nginx files, plus the rendered upstream.conf.
mkdir -p "$home/conf" /var/log/bluegreen
for f in nginx.conf proxy-failover.conf listen.conf; do ln -sfn "../nginx/$f" "$home/conf/$f"; done
# A pool without a registry image builds app/; one with an image pulls it, and a failed pull fails.
compose_files=docker-compose.yml
[ -n "${BLUE_IMAGE:-}" ] || compose_files="$compose_files:docker-compose.build-blue.yml"
[ -n "${GREEN_IMAGE:-}" ] || compose_files="$compose_files:docker-compose.build-green.yml"
cat >"$home/userdata/.env" <<ENV
COMPOSE_PROJECT_NAME=bluegreen
COMPOSE_FILE=$compose_files
BLUE_IMAGE=${BLUE_IMAGE:-bluegreen-app:local}
GREEN_IMAGE=${GREEN_IMAGE:-bluegreen-app:local}
RELEASE_ID_BLUE=${RELEASE_ID_BLUE:-blue-1}
RELEASE_ID_GREEN=${RELEASE_ID_GREEN:-green-1}
ENV
# Only when set: an empty value would override the node default in docker-compose.yml.
if [ -n "${POOL_HEALTHCHECK:-}" ]; then echo "POOL_HEALTHCHECK='${POOL_HEALTHCHECK}'" >>"$home/userdata/.env"; fi
install -m 0755 "$home/userdata/bluegreen-apply.sh" /usr/local/bin/bluegreen-apply
install -m 0755 "$home/userdata/bluegreen-nginx.sh" /usr/local/bin/bluegreen-nginx
install -m 0644 "$home/userdata/logrotate.conf" /etc/logrotate.d/bluegreen

log "services"
install -m 0644 "$home/userdata/bluegreen.service" "$home/userdata/bluegreen-apply.service" \
  "$home/userdata/bluegreen-apply.timer" /etc/systemd/system/
systemctl daemon-reload
# bluegreen.service renders the upstream from SSM, then `docker compose up --wait`: it returns
# once both pools are healthy and nginx is up, or fails (and so does this script).
systemctl enable --now bluegreen.service
systemctl enable --now bluegreen-apply.timer

log "cloudwatch agent"
sed -e "s#__ACCESS_LOG_GROUP__#${ACCESS_LOG_GROUP}#" \
  -e "s#__ERROR_LOG_GROUP__#${ERROR_LOG_GROUP}#" \
  -e "s#__METRICS_NAMESPACE__#${METRICS_NAMESPACE}#" \
  "$home/userdata/cloudwatch-agent.json" >/opt/aws/amazon-cloudwatch-agent/etc/bluegreen.json
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/bluegreen.json

log "verify"
for _ in $(seq 1 30); do
  if curl -fsS -o /dev/null http://127.0.0.1:8080/version; then
    log "ready: $(curl -fsS http://127.0.0.1:8080/version)"
    exit 0
  fi
  sleep 2
done
log "nginx does not answer GET /version on :8080"
docker compose -f "$home/userdata/docker-compose.yml" ps || true
exit 1
