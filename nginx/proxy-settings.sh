# Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.
# The proxy settings' defaults, syntax and limits (core/proxy-settings.ts), for render-upstream.sh,
# and switch-pool.sh, which source this file from their own directory. Assignments only.
# shellcheck shell=sh disable=SC2034

# Each setting's default, named after the variable that carries it (PROXY_SETTINGS).
PROXY_CONNECT_TIMEOUT_DEFAULT='500ms'
PROXY_SEND_TIMEOUT_DEFAULT='2s'
PROXY_READ_TIMEOUT_DEFAULT='1s'
PROXY_NEXT_UPSTREAM_TIMEOUT_DEFAULT='3s'
SLOW_PATHS_DEFAULT=''
STICKY_KEYS_DEFAULT=''
# A time: a whole number with ms or s, no leading zero (POSIX ERE, TIME_PATTERN), at most MAX_TIME_MS.
PROXY_TIME_RE='^[1-9][0-9]{0,5}(ms|s)$'
PROXY_MAX_TIME_MS='300000'
# A slow path prefix: plain path characters only (POSIX ERE, PREFIX_PATTERN); at most this many.
SLOW_PATH_PREFIX_RE='^/[A-Za-z0-9._~/@+-]*$'
MAX_SLOW_PATHS='20'
# A sticky canary key, cookie:NAME or header:NAME (POSIX ERE, core/canary.ts STICKY_KEY_PATTERN); a
# stage declares at most MAX_STICKY_KEYS (STICKY_KEYS). A canary share (CANARY_SHARE_PATTERN).
STICKY_KEY_RE='^(cookie:[A-Za-z0-9_]{1,64}|header:[A-Za-z0-9][A-Za-z0-9-]{0,63})$'
MAX_STICKY_KEYS='4'
CANARY_SHARE_RE='^(0|[1-9][0-9]?)$'
# A preview token (POSIX ERE, core/preview.ts PREVIEW_TOKEN_PATTERN): part of a file name nginx checks.
PREVIEW_TOKEN_RE='^[A-Za-z0-9_-]{32}$'
# A pool's generations, in order (POOL_GENERATIONS): one upstream block each per primary pool;
# switch-pool.sh --fresh moves a pool to the next, after the last back to the first.
POOL_GENERATIONS='a b c d'
# keepalive_timeout (keepaliveSeconds): the load balancer's idle timeout is max(its default, the
# longest wait + WAIT_MARGIN_SECONDS); nginx holds an idle connection KEEPALIVE_MARGIN_SECONDS longer.
LB_IDLE_DEFAULT_SECONDS='60'
WAIT_MARGIN_SECONDS='5'
KEEPALIVE_MARGIN_SECONDS='15'
