#!/bin/sh
# bluegreen-apply: make nginx serve the pool that SSM /bluegreen/<stage>/active-pool names.
# Run by SSM Run Command when the parameter changes (EventBridge), by a systemd timer every minute
# as a safety net, and at boot. Idempotent: when the pool is already active, nothing is reloaded.
#
# Usage: bluegreen-apply [--no-reload]
#   --no-reload  only render upstream.conf (boot, before nginx runs)
# Environment (the host sets these in /etc/bluegreen/env; tests set them directly):
#   STAGE             the stage                                  (required)
#   AWS_REGION        region of the parameter
#   BLUEGREEN_HOME    where nginx/, app/, userdata/ and conf/ live (default /opt/bluegreen)
#   BLUEGREEN_CONF_DIR, NGINX_CMD or NGINX_BIN + NGINX_PREFIX: passed to switch-pool.sh
#                     (default: conf/ under BLUEGREEN_HOME, nginx through bluegreen-nginx)
# Exit codes: 0 applied or already active, 1 nginx refused, 2 bad parameter value, 3 SSM unreadable.
set -eu

env_file=${BLUEGREEN_ENV_FILE:-/etc/bluegreen/env}
if [ -f "$env_file" ]; then
  # shellcheck disable=SC1090
  . "$env_file"
fi

say() { echo "bluegreen-apply: $*"; }
fail() {
  code=$1
  shift
  echo "bluegreen-apply: $*" >&2
  exit "$code"
}

reload=yes
case "${1:-}" in
  --no-reload) reload=no ;;
  '') ;;
  *) fail 2 "unknown argument '$1' (usage: bluegreen-apply [--no-reload])" ;;
esac

stage=${STAGE:-}
[ -n "$stage" ] || fail 2 "STAGE is not set (expected in $env_file)"
home=${BLUEGREEN_HOME:-/opt/bluegreen}
param=/bluegreen/$stage/active-pool

if ! value=$(aws ssm get-parameter --name "$param" --query Parameter.Value --output text 2>&1); then
  fail 3 "could not read $param: $value; nginx keeps serving its current config"
fi
# The parameter has an allowed pattern, but nothing stops an older or emulated SSM from holding
# anything: the host checks again before it renders.
case "$value" in
  blue | green) ;;
  *) fail 2 "$param is '$value', not blue or green: refusing it; nginx keeps serving its current config" ;;
esac

BLUEGREEN_CONF_DIR=${BLUEGREEN_CONF_DIR:-$home/conf}
export BLUEGREEN_CONF_DIR
if [ "$reload" = no ]; then
  ACTIVE_POOL=$value sh "$home/nginx/render-upstream.sh" >"$BLUEGREEN_CONF_DIR/.upstream.conf.boot"
  mv -f "$BLUEGREEN_CONF_DIR/.upstream.conf.boot" "$BLUEGREEN_CONF_DIR/upstream.conf"
  say "rendered upstream.conf for $value (no reload)"
  exit 0
fi
if [ -z "${NGINX_CMD:-}" ] && [ -z "${NGINX_PREFIX:-}" ]; then
  NGINX_CMD=/usr/local/bin/bluegreen-nginx
  export NGINX_CMD
fi
say "$param = $value"
exec sh "$home/nginx/switch-pool.sh" "$value"
