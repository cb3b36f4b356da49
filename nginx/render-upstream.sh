#!/bin/sh
# Renders upstream.conf (http context) for nginx.conf: the active pool is the primary, the other
# the backup. The one renderer used by the host (bluegreen-apply), local mode and the tests.
# POSIX sh on purpose: the host needs nothing but a shell to run it.
#
# Input (environment):
#   ACTIVE_POOL      blue | green                                   (required)
#   BLUE_UPSTREAM    host:port of the blue pool                     (default app_blue:3000)
#   GREEN_UPSTREAM   host:port of the green pool                    (default app_green:3000)
#   MAX_FAILS        failed attempts that take the primary out      (default 1)
#   FAIL_TIMEOUT     how long it stays out before one probe request (default 5s)
#   UPSTREAM_KEEPALIVE idle keep-alive connections per worker       (default 64)
# Output: the config on stdout. Bad input: a message on stderr, exit 2, nothing on stdout.
set -eu

fail() {
  echo "render-upstream: $*" >&2
  exit 2
}

matches() { printf '%s' "$1" | grep -Eq "$2"; }

pool=${ACTIVE_POOL:-}
blue=${BLUE_UPSTREAM:-app_blue:3000}
green=${GREEN_UPSTREAM:-app_green:3000}
max_fails=${MAX_FAILS:-1}
fail_timeout=${FAIL_TIMEOUT:-5s}
keepalive=${UPSTREAM_KEEPALIVE:-64}

case "$pool" in
  blue | green) ;;
  '') fail "ACTIVE_POOL is not set; expected blue or green" ;;
  *) fail "ACTIVE_POOL must be blue or green, got '$pool'" ;;
esac
for pair in "BLUE_UPSTREAM=$blue" "GREEN_UPSTREAM=$green"; do
  name=${pair%%=*}
  value=${pair#*=}
  matches "$value" '^[A-Za-z0-9._-]+:[0-9]{1,5}$' || fail "$name must be host:port, got '$value'"
done
matches "$max_fails" '^[0-9]+$' || fail "MAX_FAILS must be a whole number, got '$max_fails'"
matches "$fail_timeout" '^[0-9]+(ms|s)?$' || fail "FAIL_TIMEOUT must be an nginx time like 5s or 500ms, got '$fail_timeout'"
matches "$keepalive" '^[0-9]+$' || fail "UPSTREAM_KEEPALIVE must be a whole number, got '$keepalive'"

if [ "$pool" = blue ]; then
  primary=$blue backup=$green backup_pool=green
else
  primary=$green backup=$blue backup_pool=blue
fi

cat <<CONF
# Rendered by render-upstream.sh: do not edit; switch pools with switch-pool.sh.
# active_pool=$pool
upstream bluegreen_pools {
    server $primary max_fails=$max_fails fail_timeout=$fail_timeout; # $pool (active)
    # The backup is never marked down: when it is the only pool left, taking it out would turn
    # one failed attempt into "no live upstreams" 502s for every request until fail_timeout.
    server $backup backup max_fails=0; # $backup_pool (backup)
    keepalive $keepalive;
}

# The configured primary, logged with every request as active_pool.
map \$request_method \$bluegreen_active_pool {
    default "$pool";
}
CONF
