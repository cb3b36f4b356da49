#!/bin/sh
# Switches the active pool: render the upstream to a temp file, swap it in, `nginx -t`, graceful
# reload. Anything wrong (bad pool, failing test, failing reload) puts the previous file back, so
# the running nginx keeps serving its current config, and exits non-zero saying what was wrong.
# Running it again with the active pool is a no-op: no reload.
#
# Usage: switch-pool.sh <blue|green>
# Environment:
#   BLUEGREEN_CONF_DIR  the directory holding nginx.conf and upstream.conf   (required)
#   NGINX_CMD           how to run nginx when it is not a local binary, split on spaces,
#                       e.g. "docker compose -f /opt/bluegreen/docker-compose.yml exec -T nginx nginx"
#   NGINX_BIN, NGINX_PREFIX  otherwise: runs "$NGINX_BIN -p $NGINX_PREFIX -c $BLUEGREEN_CONF_DIR/nginx.conf"
#   plus the renderer's inputs (BLUE_UPSTREAM, GREEN_UPSTREAM, MAX_FAILS, ...): see render-upstream.sh
# Exit codes: 0 switched or already active, 1 nginx rejected the change, 2 bad input or busy.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
pool=${1:-}
dir=${BLUEGREEN_CONF_DIR:-}

say() { echo "switch-pool: $*"; }
fail() {
  code=$1
  shift
  echo "switch-pool: $*" >&2
  exit "$code"
}

[ -n "$dir" ] || fail 2 "BLUEGREEN_CONF_DIR is not set (the directory holding nginx.conf and upstream.conf)"
[ -d "$dir" ] || fail 2 "BLUEGREEN_CONF_DIR '$dir' is not a directory"
[ -n "${NGINX_CMD:-}" ] || [ -n "${NGINX_PREFIX:-}" ] || fail 2 "set NGINX_CMD, or NGINX_PREFIX (nginx -p) for a local nginx"

current=$dir/upstream.conf
new=$dir/.upstream.conf.new
prev=$dir/.upstream.conf.prev
lock=$dir/.switch.lock

# One switch at a time: two overlapping switches could each restore the other's file.
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || fail 2 "another switch holds $lock for over 10 s; if none is running, remove it"
  sleep 0.2
done
trap 'rm -f "$new" "$new.err"; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM

if ! ACTIVE_POOL=$pool sh "$here/render-upstream.sh" >"$new" 2>"$new.err"; then
  cat "$new.err" >&2
  fail 2 "not switched: nginx keeps serving its current config"
fi

if [ -f "$current" ] && cmp -s "$new" "$current"; then
  say "$pool is already the active pool; nothing changed, no reload"
  exit 0
fi

nginx_run() {
  if [ -n "${NGINX_CMD:-}" ]; then
    # NGINX_CMD is a command line on purpose (`docker compose exec ...`), so split it.
    # shellcheck disable=SC2086
    $NGINX_CMD "$@"
  else
    "${NGINX_BIN:-nginx}" -p "$NGINX_PREFIX" -c "$dir/nginx.conf" "$@"
  fi
}

restore() {
  if [ -f "$prev" ]; then mv -f "$prev" "$current"; else rm -f "$current"; fi
}

if [ -f "$current" ]; then cp -p "$current" "$prev"; else rm -f "$prev"; fi
# rename(2) is atomic: nginx never reads a half-written upstream.conf.
mv -f "$new" "$current"

if ! out=$(nginx_run -t 2>&1); then
  restore
  printf '%s\n' "$out" >&2
  fail 1 "nginx -t rejected the config for '$pool'; restored the previous upstream.conf, nginx keeps serving it"
fi
if ! out=$(nginx_run -s reload 2>&1); then
  restore
  printf '%s\n' "$out" >&2
  fail 1 "nginx reload failed; restored the previous upstream.conf, nginx keeps serving it"
fi
rm -f "$prev"
say "active pool is now $pool (config tested, nginx reloaded gracefully)"
