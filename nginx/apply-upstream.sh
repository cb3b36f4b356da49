#!/bin/sh
# Applies a real config change (pool addresses, failure accounting, keep-alive, switch dir, timeouts,
# slow paths): render upstream.conf and routes.conf to temp files, and only if one differs, swap
# them in, `nginx -t`, graceful reload. Anything wrong (bad input, failing test, failing reload)
# puts the previous files back, so the running nginx keeps serving its current config, and exits
# non-zero saying what was wrong.
# Pool flips and the canary share are not config: switch-pool.sh changes them without a reload.
#
# Usage: apply-upstream.sh
# Environment:
#   BLUEGREEN_CONF_DIR  the directory holding nginx.conf, upstream.conf and routes.conf (required)
#   NGINX_CMD           how to run nginx when it is not a local binary, split on spaces,
#                       e.g. "docker compose -f /opt/bluegreen/docker-compose.yml exec -T nginx nginx"
#   NGINX_BIN, NGINX_PREFIX  otherwise: runs "$NGINX_BIN -p $NGINX_PREFIX -c $BLUEGREEN_CONF_DIR/nginx.conf"
#   plus the renderer's inputs (SWITCH_DIR, BLUE_UPSTREAM, GREEN_UPSTREAM, MAX_FAILS, PROXY_*_TIMEOUT,
#   SLOW_PATHS, ...): see render-upstream.sh
# Exit codes: 0 applied or unchanged, 1 nginx rejected the change (previous config restored),
# 2 bad input or busy (nothing changed).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${BLUEGREEN_CONF_DIR:-}

say() { printf 'apply-upstream: %s\n' "$*"; }
fail() {
  code=$1
  shift
  printf 'apply-upstream: %s\n' "$*" >&2
  exit "$code"
}

[ $# -eq 0 ] || fail 2 "takes no arguments (flip pools with switch-pool.sh); got '$*'"
[ -n "$dir" ] || fail 2 "BLUEGREEN_CONF_DIR is not set (the directory holding nginx.conf and upstream.conf)"
[ -d "$dir" ] || fail 2 "BLUEGREEN_CONF_DIR '$dir' is not a directory"
[ -n "${NGINX_CMD:-}" ] || [ -n "${NGINX_PREFIX:-}" ] || fail 2 "set NGINX_CMD, or NGINX_PREFIX (nginx -p) for a local nginx"

# The rendered files, each with the renderer's output name (render-upstream.sh <output>).
files="upstream routes"
lock=$dir/.apply.lock

# One apply at a time: two overlapping applies could each restore the other's file.
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || fail 2 "another apply holds $lock for over 10 s; if none is running, remove it"
  sleep 0.2
done
trap 'for f in $files; do rm -f "$dir/.$f.conf.new" "$dir/.$f.conf.err"; done; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM

changed=
for f in $files; do
  if ! sh "$here/render-upstream.sh" "$f" >"$dir/.$f.conf.new" 2>"$dir/.$f.conf.err"; then
    cat "$dir/.$f.conf.err" >&2
    fail 2 "not applied: nginx keeps serving its current config"
  fi
  if ! [ -f "$dir/$f.conf" ] || ! cmp -s "$dir/.$f.conf.new" "$dir/$f.conf"; then
    changed="${changed:+$changed and }$f.conf"
  fi
done

if [ -z "$changed" ]; then
  say "upstream.conf and routes.conf are unchanged; no reload"
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
  for f in $files; do
    if [ -f "$dir/.$f.conf.prev" ]; then mv -f "$dir/.$f.conf.prev" "$dir/$f.conf"; else rm -f "$dir/$f.conf"; fi
  done
}

# Both files are swapped (unchanged ones get the same bytes): nginx reads them only at -t and reload.
for f in $files; do
  if [ -f "$dir/$f.conf" ]; then cp -p "$dir/$f.conf" "$dir/.$f.conf.prev"; else rm -f "$dir/.$f.conf.prev"; fi
  # rename(2) is atomic: nginx never reads a half-written file.
  mv -f "$dir/.$f.conf.new" "$dir/$f.conf"
done

if ! out=$(nginx_run -t 2>&1); then
  restore
  printf '%s\n' "$out" >&2
  fail 1 "nginx -t rejected the new $changed; restored the previous one, nginx keeps serving it"
fi
if ! out=$(nginx_run -s reload 2>&1); then
  restore
  printf '%s\n' "$out" >&2
  fail 1 "nginx reload failed; restored the previous $changed, nginx keeps serving it"
fi
for f in $files; do rm -f "$dir/.$f.conf.prev"; done
say "$changed updated (config tested, nginx reloaded gracefully)"
