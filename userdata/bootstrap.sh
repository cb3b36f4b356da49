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
# jq, flock (util-linux): bluegreen-apply reads the pool state (JSON) and locks. amazon-ecr-credential-helper: token-free
# pulls from the stage's ECR repository with the instance role (no `docker login` that expires).
dnf install -y -q docker amazon-cloudwatch-agent logrotate jq util-linux amazon-ecr-credential-helper
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

log "registry login"
# credHelpers, not credsStore: only the stage's registry goes through the helper; public images
# (nginx) are pulled anonymously as before. Merged into any config already there.
if [ -n "${ECR_REGISTRY:-}" ]; then
  mkdir -p /root/.docker
  config=/root/.docker/config.json
  [ -s "$config" ] || echo '{}' >"$config"
  jq --arg r "$ECR_REGISTRY" '.credHelpers[$r] = "ecr-login"' "$config" >"$config.tmp"
  mv -f "$config.tmp" "$config"
  chmod 0600 "$config"
  log "docker pulls from $ECR_REGISTRY with the instance role (docker-credential-ecr-login)"
else
  log "ECR_REGISTRY is not set: registry images must be public"
fi

log "layout"
# bluegreen-apply --no-reload (bluegreen.service, below) writes the rest from SSM: conf/ links and
# upstream.conf, the switch dir, the Compose .env, each pool's env file and image. Pool images and
# releases are not in /etc/bluegreen/env: they live in SSM (/bluegreen/<stage>/pools/...).
mkdir -p "$home/conf" "$home/switch" /var/lib/bluegreen/pools /var/log/bluegreen
install -m 0755 "$home/userdata/bluegreen-apply.sh" /usr/local/bin/bluegreen-apply
install -m 0755 "$home/userdata/bluegreen-nginx.sh" /usr/local/bin/bluegreen-nginx
install -m 0755 "$home/userdata/bluegreen-log-reopen.sh" /usr/local/bin/bluegreen-log-reopen
install -m 0644 "$home/userdata/logrotate.conf" /etc/logrotate.d/bluegreen

# AL2023 has no cron: logrotate runs only from logrotate.timer. Were it disabled (a hardened AMI, a
# changed preset), nothing would rotate and /var/log/bluegreen would grow until the disk is full,
# so the timer is enabled here and the bootstrap fails if it cannot be. `logrotate -d` reads the
# configuration without touching a file: a broken one fails here, not on the first night.
ensure_log_rotation() {
  local conf=$1
  logrotate -d "$conf" >/dev/null 2>&1 || {
    log "logrotate rejects $conf: $(logrotate -d "$conf" 2>&1 | grep -m1 -i error || echo 'see logrotate -d')"
    return 1
  }
  if ! systemctl is-enabled --quiet logrotate.timer; then
    log "logrotate.timer is $(systemctl is-enabled logrotate.timer 2>&1 || true): enabling it"
    systemctl enable --now logrotate.timer || {
      log "cannot enable logrotate.timer: the logs in /var/log/bluegreen would never rotate"
      return 1
    }
  fi
  systemctl is-active --quiet logrotate.timer || systemctl start logrotate.timer || {
    log "cannot start logrotate.timer: the logs in /var/log/bluegreen would never rotate"
    return 1
  }
  log "logrotate.timer enabled and active; $conf accepted"
}
log "log rotation"
ensure_log_rotation /etc/logrotate.d/bluegreen

log "services"
install -m 0644 "$home/userdata/bluegreen.service" "$home/userdata/bluegreen-apply.service" \
  "$home/userdata/bluegreen-apply.timer" /etc/systemd/system/
systemctl daemon-reload
# First boot: bluegreen.service runs `bluegreen-apply --no-reload` (everything from SSM: active pool,
# canary, each pool's image/release/env; app/ built for bluegreen-app:local, registry images pulled),
# then `docker compose up --wait`: it returns once both pools are healthy and nginx is up, or fails
# (and so does this script).
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
