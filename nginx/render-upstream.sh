#!/bin/sh
# Renders upstream.conf (http context) for nginx.conf: one upstream block per pool being primary
# (the other pool its backup), and where the switch dir is. Which block a request uses is decided
# per request from the switch dir (see nginx.conf), so a flip never needs a new upstream.conf.
# The one renderer used by the host (bluegreen-apply), local mode and the tests.
# POSIX sh on purpose: the host needs nothing but a shell to run it.
#
# Input (environment):
#   SWITCH_DIR       the switch dir as nginx sees it, absolute        (required)
#   BLUE_UPSTREAM    host:port of the blue pool                     (default app_blue:3000)
#   GREEN_UPSTREAM   host:port of the green pool                    (default app_green:3000)
#   MAX_FAILS        failed attempts that take the primary out      (default 1)
#   FAIL_TIMEOUT     how long it stays out before one probe request (default 5s)
#   UPSTREAM_KEEPALIVE idle keep-alive connections per worker, per block (default 64)
# Output: the config on stdout. Bad input: a message on stderr, exit 2, nothing on stdout.
set -eu

fail() {
  echo "render-upstream: $*" >&2
  exit 2
}

matches() { printf '%s' "$1" | grep -Eq "$2"; }

switch_dir=${SWITCH_DIR:-}
blue=${BLUE_UPSTREAM:-app_blue:3000}
green=${GREEN_UPSTREAM:-app_green:3000}
max_fails=${MAX_FAILS:-1}
fail_timeout=${FAIL_TIMEOUT:-5s}
keepalive=${UPSTREAM_KEEPALIVE:-64}

[ -n "$switch_dir" ] || fail "SWITCH_DIR is not set; expected the switch dir's absolute path as nginx sees it"
# The value lands inside a quoted nginx string: a quote, space, brace or variable sign could
# change the config, so only plain path characters pass.
matches "$switch_dir" '^/[A-Za-z0-9._/@+-]*$' || fail "SWITCH_DIR must be an absolute path of letters, digits and ._/@+-, got '$switch_dir'"
switch_dir=${switch_dir%/}
[ -n "$switch_dir" ] || fail "SWITCH_DIR must not be /"
for pair in "BLUE_UPSTREAM=$blue" "GREEN_UPSTREAM=$green"; do
  name=${pair%%=*}
  value=${pair#*=}
  matches "$value" '^[A-Za-z0-9._-]+:[0-9]{1,5}$' || fail "$name must be host:port, got '$value'"
done
matches "$max_fails" '^[0-9]+$' || fail "MAX_FAILS must be a whole number, got '$max_fails'"
matches "$fail_timeout" '^[0-9]+(ms|s)?$' || fail "FAIL_TIMEOUT must be an nginx time like 5s or 500ms, got '$fail_timeout'"
matches "$keepalive" '^[0-9]+$' || fail "UPSTREAM_KEEPALIVE must be a whole number, got '$keepalive'"

block() {
  primary_pool=$1 primary=$2 backup_pool=$3 backup=$4
  cat <<CONF
upstream bluegreen_$primary_pool {
    server $primary max_fails=$max_fails fail_timeout=$fail_timeout; # $primary_pool (primary)
    # The backup is never marked down: when it is the only pool left, taking it out would turn
    # one failed attempt into "no live upstreams" 502s for every request until fail_timeout.
    server $backup backup max_fails=0; # $backup_pool (backup)
    keepalive $keepalive;
}
CONF
}

cat <<CONF
# Rendered by render-upstream.sh: do not edit. Flip pools and set the canary share with
# switch-pool.sh (no reload); change this file with apply-upstream.sh.
# Both blocks are always here: a request picks one by its primary pool (nginx.conf).
CONF
block blue "$blue" green "$green"
echo
block green "$green" blue "$blue"
cat <<CONF

# Where nginx looks, per request, for green-active and canary/ (switch-pool.sh writes them).
map \$request_method \$bluegreen_switch_dir {
    default "$switch_dir";
}
CONF
