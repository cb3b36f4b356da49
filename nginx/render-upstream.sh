#!/bin/sh
# Renders the two files nginx.conf includes that differ per stage:
#   render-upstream.sh          upstream.conf (http context): per pool being primary (the other pool
#                               its backup), one upstream block per generation of that pool
#                               (POOL_GENERATIONS), and where the switch dir is.
#                               Which block a request uses is decided per request from the switch
#                               dir (see nginx.conf), so a flip never needs a new upstream.conf.
#   render-upstream.sh routes   routes.conf (server context): the proxied locations with their
#                               timeouts: `/` (every path) and one per slow path prefix; and
#                               keepalive_timeout, longer than a fleet's load balancer idle timeout.
# The one renderer used by the host (bluegreen-apply), local mode and the tests. The timeouts'
# defaults, syntax and limits are core/proxy-settings.ts's, read from proxy-settings.sh beside this
# script (generated from core/ by `npm run generate`, shipped in the same nginx/ folder); core checks
# CDK context and local env with the same rules (test/unit/proxy-settings.test.ts runs both).
# Every input is checked in both modes, so a bad value fails whichever render runs first.
# POSIX sh on purpose: the host needs nothing but a shell to run it.
#
# Input (environment):
#   SWITCH_DIR       the switch dir as nginx sees it, absolute        (required)
#   BLUE_UPSTREAM    host:port of the blue pool                     (default app_blue:3000)
#   GREEN_UPSTREAM   host:port of the green pool                    (default app_green:3000)
#   MAX_FAILS        failed attempts that take the primary out      (default 1)
#   FAIL_TIMEOUT     how long it stays out before one probe request (default 5s)
#   UPSTREAM_KEEPALIVE idle keep-alive connections per worker, per block (default 64)
#   (the defaults of these five: proxy-settings.sh)
#   PROXY_CONNECT_TIMEOUT  connecting to a pool
#   PROXY_SEND_TIMEOUT     between two writes of the request
#   PROXY_READ_TIMEOUT     between two reads of the answer: what a hung pool costs
#   PROXY_NEXT_UPSTREAM_TIMEOUT  the failover window: a failed attempt is retried on the other
#                          pool only within it; longer than connect + read
#   SLOW_PATHS             comma-separated prefix:timeout, e.g. /reports/:30s,/upload/:60s: requests
#                          under a prefix may take that long between two reads (longest prefix
#                          wins); each longer than PROXY_NEXT_UPSTREAM_TIMEOUT  (default none)
#   STICKY_KEYS            comma-separated cookie:NAME / header:NAME, e.g. cookie:session,header:X-User:
#                          the keys a canary may stick on (switch-pool.sh --canary N --sticky KEY);
#                          rendered into routes.conf, since nginx takes no variable name at runtime
#                          (at most MAX_STICKY_KEYS; default none)
# Times: a whole number with ms or s, 1ms to 300s (DECISIONS.md, "Per-stage timeouts and slow paths").
# keepalive_timeout is not an input: it follows from the timeouts, by core/proxy-settings.ts's rule
# (keepaliveSeconds), with its margins from proxy-settings.sh: the load balancer's idle timeout is
# max(its default, the longest wait + a margin), and nginx holds an idle connection longer still.
# Output: the config on stdout. Bad input: a message on stderr, exit 2, nothing on stdout.
set -eu

fail() {
  printf 'render-upstream: %s\n' "$*" >&2
  exit 2
}

# One line or no match: grep matches line by line, so a value whose first line passed carried its
# other lines into the config (a whole location block of someone's choosing). A carriage return is
# refused with it (nginx takes it as white space between tokens).
CR=$(printf '\r')
matches() {
  case $1 in *'
'* | *"$CR"*) return 1 ;;
  esac
  printf '%s' "$1" | grep -Eq "$2"
}

# The settings' facts (defaults, patterns, limits, margins): generated from core, beside this script.
settings=$(dirname "$0")/proxy-settings.sh
[ -f "$settings" ] || fail "$settings is missing (generated from core/ by npm run generate, shipped next to this script)"
# shellcheck source-path=SCRIPTDIR source=proxy-settings.sh
. "$settings"

switch_dir=${SWITCH_DIR:-}
blue=${BLUE_UPSTREAM:-app_blue:3000}
green=${GREEN_UPSTREAM:-app_green:3000}
max_fails=${MAX_FAILS:-1}
fail_timeout=${FAIL_TIMEOUT:-5s}
keepalive=${UPSTREAM_KEEPALIVE:-64}
connect_timeout=${PROXY_CONNECT_TIMEOUT:-$PROXY_CONNECT_TIMEOUT_DEFAULT}
send_timeout=${PROXY_SEND_TIMEOUT:-$PROXY_SEND_TIMEOUT_DEFAULT}
read_timeout=${PROXY_READ_TIMEOUT:-$PROXY_READ_TIMEOUT_DEFAULT}
next_timeout=${PROXY_NEXT_UPSTREAM_TIMEOUT:-$PROXY_NEXT_UPSTREAM_TIMEOUT_DEFAULT}
slow_paths=${SLOW_PATHS:-$SLOW_PATHS_DEFAULT}
# The most slow paths one stage may list (MAX_SLOW_PATHS): each is a location block, and a long
# list is a sign the default read timeout is wrong for the app.

mode=${1:-upstream}
case "$mode" in
  upstream | routes) [ $# -le 1 ] || fail "takes at most one argument (upstream or routes), got '$*'" ;;
  *) fail "unknown output '$mode': expected upstream (upstream.conf) or routes (routes.conf)" ;;
esac

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

# An nginx time in milliseconds: PROXY_TIME_RE (a whole number with ms or s, no leading zero, few
# enough digits that the shell's arithmetic cannot overflow), at most PROXY_MAX_TIME_MS.
time_ms() {
  case "$1" in
    *ms) echo "${1%ms}" ;;
    *) echo $((${1%s} * 1000)) ;;
  esac
}
check_time() {
  name=$1 value=$2
  if ! matches "$value" "$PROXY_TIME_RE" || [ "$(time_ms "$value")" -gt "$PROXY_MAX_TIME_MS" ]; then
    fail "$name must be an nginx time like 1s or 500ms, from 1ms to 300s, got '$value'"
  fi
}
check_time PROXY_CONNECT_TIMEOUT "$connect_timeout"
check_time PROXY_SEND_TIMEOUT "$send_timeout"
check_time PROXY_READ_TIMEOUT "$read_timeout"
check_time PROXY_NEXT_UPSTREAM_TIMEOUT "$next_timeout"
connect_ms=$(time_ms "$connect_timeout")
read_ms=$(time_ms "$read_timeout")
next_ms=$(time_ms "$next_timeout")
longest_ms=$read_ms
[ "$next_ms" -le "$longest_ms" ] || longest_ms=$next_ms
# nginx checks the window when an attempt has failed: an attempt that timed out after connect +
# read must still be inside it, or a hung primary is never retried on the backup (DECISIONS.md).
[ "$next_ms" -gt $((connect_ms + read_ms)) ] ||
  fail "PROXY_NEXT_UPSTREAM_TIMEOUT ($next_timeout) must be longer than PROXY_CONNECT_TIMEOUT + PROXY_READ_TIMEOUT ($connect_timeout + $read_timeout), or a pool that timed out is never retried on the other pool"

# SLOW_PATHS: checked whole before anything is printed. A prefix lands in a location line, so only
# plain path characters pass (SLOW_PATH_PREFIX_RE: no space, brace, semicolon, quote or variable sign).
slow_count=0
seen=' '
if [ -n "$slow_paths" ]; then
  matches "$slow_paths" '^[^[:space:]]+$' || fail "SLOW_PATHS must be prefix:timeout pairs separated by commas, without spaces, e.g. /reports/:30s,/upload/:60s, got '$slow_paths'"
  rest=$slow_paths,
  while [ -n "$rest" ]; do
    entry=${rest%%,*}
    rest=${rest#*,}
    case "$entry" in
      '') fail "SLOW_PATHS has an empty entry (two commas in a row, or one at an end), got '$slow_paths'" ;;
      *:*) ;;
      *) fail "SLOW_PATHS entry '$entry' must be prefix:timeout, e.g. /reports/:30s" ;;
    esac
    prefix=${entry%:*}
    timeout=${entry##*:}
    matches "$prefix" "$SLOW_PATH_PREFIX_RE" || fail "SLOW_PATHS prefix '$prefix' must start with / and hold only letters, digits and ._~/@+-"
    [ "$prefix" != / ] || fail "SLOW_PATHS prefix '/' is every path: raise PROXY_READ_TIMEOUT instead"
    case "$seen" in
      *" $prefix "*) fail "SLOW_PATHS lists '$prefix' twice" ;;
    esac
    seen="$seen$prefix "
    check_time "SLOW_PATHS timeout of '$prefix'" "$timeout"
    [ "$(time_ms "$timeout")" -le "$longest_ms" ] || longest_ms=$(time_ms "$timeout")
    # Longer than the failover window: a slow request that timed out is past the window and is not
    # re-run on the other pool (DECISIONS.md, "Per-stage timeouts and slow paths").
    [ "$(time_ms "$timeout")" -gt "$next_ms" ] ||
      fail "SLOW_PATHS timeout of '$prefix' ($timeout) must be longer than PROXY_NEXT_UPSTREAM_TIMEOUT ($next_timeout); for shorter waits raise PROXY_READ_TIMEOUT"
    slow_count=$((slow_count + 1))
    [ "$slow_count" -le "$MAX_SLOW_PATHS" ] || fail "SLOW_PATHS lists more than $MAX_SLOW_PATHS prefixes"
  done
fi

# STICKY_KEYS: checked whole before anything is printed. A name lands in an nginx variable name and
# in a file name, so only plain name characters pass (STICKY_KEY_RE). Header names are lowercased
# (HTTP header names are case-insensitive; switch-pool.sh lowercases them the same way).
sticky_keys=${STICKY_KEYS:-$STICKY_KEYS_DEFAULT}
sticky_list=
sticky_count=0
if [ -n "$sticky_keys" ]; then
  matches "$sticky_keys" '^[^[:space:]]+$' || fail "STICKY_KEYS must be cookie:NAME or header:NAME keys separated by commas, without spaces, e.g. cookie:session,header:X-User, got '$sticky_keys'"
  rest=$sticky_keys,
  while [ -n "$rest" ]; do
    entry=${rest%%,*}
    rest=${rest#*,}
    [ -n "$entry" ] || fail "STICKY_KEYS has an empty entry (two commas in a row, or one at an end), got '$sticky_keys'"
    matches "$entry" "$STICKY_KEY_RE" || fail "STICKY_KEYS entry must be cookie:NAME (letters, digits, _) or header:NAME (letters, digits, -), at most 64 characters, got '$entry'"
    case "$entry" in header:*) entry=header:$(printf '%s' "${entry#header:}" | tr '[:upper:]' '[:lower:]') ;; esac
    case " $sticky_list " in
      *" $entry "*) fail "STICKY_KEYS lists '$entry' twice" ;;
    esac
    sticky_list="$sticky_list${sticky_list:+ }$entry"
    sticky_count=$((sticky_count + 1))
    [ "$sticky_count" -le "$MAX_STICKY_KEYS" ] || fail "STICKY_KEYS lists more than $MAX_STICKY_KEYS keys"
  done
fi

if [ "$mode" = routes ]; then
  # The load balancer's default idle timeout, or the longest wait (rounded up) + the wait margin;
  # then the keep-alive margin more (core/proxy-settings.ts keepaliveSeconds).
  idle_s=$(((longest_ms + 999) / 1000 + WAIT_MARGIN_SECONDS))
  [ "$idle_s" -ge "$LB_IDLE_DEFAULT_SECONDS" ] || idle_s=$LB_IDLE_DEFAULT_SECONDS
  keepalive_s=$((idle_s + KEEPALIVE_MARGIN_SECONDS))
  location() {
    cat <<CONF
location $1 {
    include proxy-failover.conf;
    proxy_connect_timeout $connect_timeout;
    proxy_send_timeout $send_timeout;
    proxy_read_timeout $2;
    proxy_next_upstream_timeout $next_timeout;
    # A variable naming an upstream block (bluegreen_<primary pool>_<its generation>, set per request
    # in nginx.conf): nginx picks the block by name, no resolver.
    proxy_pass http://\$bluegreen_upstream;
}
CONF
  }
  cat <<CONF
# Rendered by render-upstream.sh routes: do not edit. Change the settings (CDK context, or the
# environment in local mode) and apply them with apply-upstream.sh.
# An idle keep-alive connection stays open longer than a load balancer in front keeps it (${idle_s} s
# there): the balancer closes it first, never reusing one nginx is closing (a 502 no log line shows).
keepalive_timeout ${keepalive_s}s;
CONF
  if [ -n "$sticky_list" ]; then
    cat <<CONF

# Sticky canary keys (STICKY_KEYS). Server-level rewrite directives run in order: nginx.conf includes
# this file after clearing \$bluegreen_sticky_value and before the canary check. When the canary dir
# holds sticky.<kind>.<name> (switch-pool.sh --canary N --sticky <kind>:<name>), a request carrying
# that key is put in its bucket by the key's value, so one client stays on one side for the whole
# canary; a request without it is split per request, as without a sticky key.
CONF
    for key in $sticky_list; do
      kind=${key%%:*}
      name=${key#*:}
      if [ "$kind" = cookie ]; then variable=\$cookie_$name; else variable=\$http_$(printf '%s' "$name" | tr '-' '_'); fi
      cat <<CONF
if (-f \$bluegreen_switch_dir/canary/sticky.$kind.$name) {
    set \$bluegreen_sticky_value $variable;
}
CONF
    done
  fi
  cat <<CONF

# Every path: a failed attempt (error, timeout, 5xx) is retried on the other pool within
# $next_timeout, two attempts at most, each $connect_timeout to connect + $read_timeout between reads.
CONF
  location / "$read_timeout"
  rest=${slow_paths:+$slow_paths,}
  while [ -n "$rest" ]; do
    entry=${rest%%,*}
    rest=${rest#*,}
    cat <<CONF

# Slow path: up to ${entry##*:} between two reads. Quick failures (refused, reset, a 5xx within
# $next_timeout) still go to the other pool; an attempt that ran past $next_timeout is not re-run.
CONF
    location "${entry%:*}" "${entry##*:}"
  done
  exit 0
fi

block() {
  primary_pool=$1 primary=$2 backup_pool=$3 backup=$4 generation=$5
  cat <<CONF
upstream bluegreen_${primary_pool}_$generation {
    server $primary max_fails=$max_fails fail_timeout=$fail_timeout; # $primary_pool (primary)
    server $backup backup max_fails=0; # $backup_pool (backup)
    keepalive $keepalive;
}
CONF
}

cat <<CONF
# Rendered by render-upstream.sh: do not edit. Flip pools, set the canary share and start a pool's
# next generation with switch-pool.sh (no reload); change this file with apply-upstream.sh.
# Every block is always here: a request picks one by its primary pool and that pool's generation
# (nginx.conf). The blocks of one primary pool are the same servers; each keeps its own passive health
# state (max_fails/fail_timeout), so a pool moved to its next generation (switch-pool.sh --fresh, once
# a new process serves it) starts with none of what nginx learned about the old process.
# The backup is never marked down (max_fails=0): when it is the only pool left, taking it out would
# turn one failed attempt into "no live upstreams" 502s for every request until fail_timeout.
CONF
first=yes
for pair in "blue $blue green $green" "green $green blue $blue"; do
  # shellcheck disable=SC2086 # four words: primary pool, its address, backup pool, its address
  set -- $pair
  for generation in $POOL_GENERATIONS; do
    [ "$first" = yes ] || echo
    first=no
    block "$1" "$2" "$3" "$4" "$generation"
  done
done
for pair in "blue $blue" "green $green"; do
  # shellcheck disable=SC2086 # two words: the pool, its address
  set -- $pair
  cat <<CONF

# Preview of $1 (nginx.conf): a request carrying the preview token goes to $1 alone. One server and
# no backup: nginx never retries it elsewhere, and never marks a lone server down.
upstream bluegreen_preview_$1 {
    server $2; # $1 (preview, no backup)
    keepalive $keepalive;
}
CONF
done
cat <<CONF

# Where nginx looks, per request, for green-active, canary/, the generation flags and the preview
# file (switch-pool.sh writes them).
map \$request_method \$bluegreen_switch_dir {
    default "$switch_dir";
}
CONF
