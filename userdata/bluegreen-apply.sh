#!/bin/sh
# bluegreen-apply: the host agent. Makes the host run what SSM says (DECISIONS "The host agent reconciles pools"):
#   - the active pool and the canary share: files in the switch dir (nginx/switch-pool.sh, no reload);
#   - per pool, the desired image/release/env/options (/bluegreen/<stage>/pools/<pool>/{image,release,env,options}):
#     a pool that differs and is NOT active is reconciled: pull (a failed pull leaves it as it was)
#     -> recreate only its container -> health gate (the agent probes /healthz through the pool's
#     own port every GATE_PROBE_MS, bounded by the pool's start period) -> its next generation in nginx
#     (switch-pool.sh --fresh) -> smoke through its own port (/version answers the desired
#     release); a failed gate puts the previous release back (and freshens it again). The active
#     pool is never recreated: a difference there is reported;
#   - nginx's pool addresses: when a container's address differs from upstream.conf,
#     nginx/apply-upstream.sh (nginx -t + graceful reload; the old config keeps serving on failure);
#   - nginx's timeouts and slow paths (PROXY_*_TIMEOUT, SLOW_PATHS in /etc/bluegreen/env): rendered
#     into routes.conf by apply-upstream.sh, which reloads only when the rendered files changed.
# Run by SSM Run Command (the release CLI, EventBridge on parameter changes), a systemd timer every
# minute (safety net), and at boot (--no-reload). Idempotent: nothing changed, nothing touched.
#
# Usage: bluegreen-apply [--no-reload] [--retry] [--no-deploy]
#        bluegreen-apply --pre-promote <base64 of CMD> [--pre-promote-timeout <seconds>]
#        bluegreen-apply --preview
#   --no-reload  boot: nginx and the pools are not running yet. Writes everything they start from
#                (switch dir, upstream.conf, Compose .env, pool env files, images) and starts nothing.
#   --retry      try a desired pool state again that failed before (the timer does not, so a failing
#                release is not redeployed every minute; new parameter versions are tried anyway).
#   --no-deploy  never start a pool on a desired state it does not run yet (the timer, a fleet's
#                pool-switch rule): a release's deploy is paced by its own Run Command
#                (--max-concurrency, --max-errors), which a run on every host would bypass. The rest
#                (nginx, the active pool, the canary share, a pool restarted on what it runs) as usual.
#   --preview    only this: read the preview parameter (a SecureString, /bluegreen/<stage>/preview:
#                `<pool> <token>` or `off`; core/preview.ts) and make the switch dir's preview file
#                say the same (switch-pool.sh --preview, the token on stdin). Run by the release CLI
#                on every host; never part of the per-minute read. A preview also ends here without
#                being asked: when its pool is redeployed, or becomes active (switch-pool.sh).
#   --pre-promote  a release's release phase (core/pre-promote.ts), instead of a reconcile: CMD (the
#                base64 is decoded here, never spliced into a shell line) runs once with `sh -c` inside
#                the idle pool's running container (docker exec: the container's env is the command's),
#                only when that container runs the pool's desired state (its gate passed), killed after
#                --pre-promote-timeout (default 600 s). Prints one step line and one
#                `pre-promote-output=<base64 of the last lines>` line; exit 1 when CMD failed.
# Prints `step=<name> pool=<blue|green|-> ok=<true|false> detail=...` per step (the release CLI reads
# these from Run Command output) and `bluegreen-apply: ...` lines for people.
# Exit codes: 0 ok, 1 a step failed, 2 a bad parameter value (that part is left as it was),
# 3 SSM unreadable (nothing changed).
#
# Environment (the host's /etc/bluegreen/env sets STAGE, AWS_REGION, ECR_REGISTRY, *_PARAM; tests
# set them directly):
#   STAGE                the stage (required); parameter names default to /bluegreen/$STAGE/...
#                        (userdata/facts.sh bluegreen_parameter_names)
#   ACTIVE_POOL_PARAM, CANARY_PARAM, {BLUE,GREEN}_{IMAGE,RELEASE,ENV,OPTIONS}_PARAM  exact parameter names
#   LEDGER_TABLE, LEDGER_HEAD_KEY  fleet hosts only: the stage's release ledger (DynamoDB) and its
#                        head item's key as `aws dynamodb get-item --key` takes it (both set by the
#                        stack from core/release-ledger.ts); a brand-new host boots from the record there
#   BLUEGREEN_HOME       nginx/, app/, userdata/, conf/, switch/         (default /opt/bluegreen)
#   BLUEGREEN_STATE_DIR  pools/<pool>.{env,applied,failed}, the lock     (default /var/lib/bluegreen)
#   BLUEGREEN_LOG_DIR    nginx's logs                                    (default /var/log/bluegreen)
#   BLUEGREEN_PROJECT    Compose project name                            (default bluegreen)
#   BLUEGREEN_SUBNET, BLUE_ADDR, GREEN_ADDR  the pools' network and fixed addresses
#                        (default 192.168.213.0/24, .11, .12)
#   BLUEGREEN_PUBLISH_ADDR, BLUEGREEN_HTTP_PORT, BLUE_PORT, GREEN_PORT  published ports
#                        (default 0.0.0.0, then facts.sh PORT_NGINX, PORT_BLUE, PORT_GREEN);
#                        smoke tests use 127.0.0.1:<pool port>
#   NGINX_IMAGE, POOL_HEALTHCHECK  passed to Compose when set
#   BASE_IMAGE           app/'s base image for the bluegreen-app:local build (default: the Dockerfile's)
#   SWITCH_DIR           the switch dir as this shell sees it            (default $BLUEGREEN_HOME/switch)
#   NGINX_SWITCH_DIR     the switch dir as nginx sees it (default /etc/bluegreen/switch in Compose;
#                        $SWITCH_DIR for a local nginx, i.e. when NGINX_PREFIX is set)
#   BLUEGREEN_CONF_DIR, NGINX_CMD or NGINX_BIN + NGINX_PREFIX: for apply-upstream.sh
#                        (default conf/ under BLUEGREEN_HOME, nginx through userdata/bluegreen-nginx.sh)
#   BLUEGREEN_MANAGE_POOLS  no = no containers here (local nginx tests): active pool and canary only;
#                        BLUE_UPSTREAM/GREEN_UPSTREAM then come from the environment
#   BLUEGREEN_SECRETS_DIR  each pool's pinned secrets as Compose reads them, <pool>.env: must be a
#                        tmpfs (never the disk), 0700/0600     (default /run/bluegreen/secrets)
#   BOOT_SECRETS_RETRY_SECONDS  the waits between tries of a pool's secrets at boot (default "2 5 10")
# Facts shared with the TypeScript side (value patterns, parameter names, default ports, the step
# line's format, the release record's states) are not kept here: $BLUEGREEN_HOME/userdata/facts.sh,
# generated from core/ by `npm run generate`, beside pool-env.json in the userdata asset.
set -eu

env_file=${BLUEGREEN_ENV_FILE:-/etc/bluegreen/env}
if [ -f "$env_file" ]; then
  # shellcheck disable=SC1090
  . "$env_file"
fi

# printf, never echo, for anything holding a value: dash's echo turns a backslash-n in a value into a
# line break, and a line that starts with step= is read by the release CLI as a step.
say() { printf 'bluegreen-apply: %s\n' "$*"; }
fail() {
  code=$1
  shift
  printf 'bluegreen-apply: %s\n' "$*" >&2
  exit "$code"
}
# One line, whatever the detail holds (command output can span lines).
oneline() { printf '%s' "$*" | tr '\r\n\t' '   ' | sed 's/  */ /g; s/ $//'; }
failed_steps=0
bad_values=0
step() {
  # shellcheck disable=SC2059 # the format is the step line's, from facts.sh
  printf "$STEP_LINE_PRINTF" "$1" "$2" "$3" "$(oneline "$4")"
  if [ "$3" != true ]; then failed_steps=$((failed_steps + 1)); fi
}
# The exit code every run ends with: 2 a bad parameter value, 1 a failed step, else 0.
finish() {
  if [ "$bad_values" -gt 0 ]; then exit 2; fi
  if [ "$failed_steps" -gt 0 ]; then exit 1; fi
  exit 0
}

boot=no
retry=no
deploy=yes
preview_only=no
pre_b64=
pre_timeout=
usage='bluegreen-apply [--no-reload] [--retry] [--no-deploy] | --pre-promote <base64> [--pre-promote-timeout <s>] | --preview'
while [ "$#" -gt 0 ]; do
  case "$1" in
    --no-reload) boot=yes ;;
    --retry) retry=yes ;;
    --no-deploy) deploy=no ;;
    --preview) preview_only=yes ;;
    --pre-promote | --pre-promote-timeout)
      [ "$#" -ge 2 ] || fail 2 "$1 needs a value (usage: $usage)"
      if [ "$1" = --pre-promote ]; then pre_b64=$2; else pre_timeout=$2; fi
      shift
      ;;
    *) fail 2 "unknown argument '$1' (usage: $usage)" ;;
  esac
  shift
done

stage=${STAGE:-}
[ -n "$stage" ] || fail 2 "STAGE is not set (expected in $env_file)"
# systemd and Run Command may start us without HOME: docker finds its config (ECR credential
# helper) under $HOME/.docker.
HOME=${HOME:-/root}
export HOME

home=${BLUEGREEN_HOME:-/opt/bluegreen}
# Never run with empty patterns or names: without its facts the agent does nothing.
facts=$home/userdata/facts.sh
[ -f "$facts" ] || fail 2 "$facts is missing (generated from core/ by npm run generate, shipped in the userdata asset); nothing was changed"
# shellcheck source-path=SCRIPTDIR source=facts.sh
. "$facts"
if [ -n "$pre_b64" ] || [ -n "$pre_timeout" ]; then
  [ -n "$pre_b64" ] || fail 2 "--pre-promote-timeout needs --pre-promote"
  if [ "$boot" = yes ] || [ "$deploy" = no ] || [ "$retry" = yes ]; then
    fail 2 "--pre-promote runs alone (not with --no-reload, --no-deploy or --retry)"
  fi
  printf '%s' "$pre_b64" | grep -Eq "$PRE_PROMOTE_B64_RE" ||
    fail 2 "--pre-promote must be the command in base64 (at most the length PRE_PROMOTE_B64_RE allows); nothing was run"
  pre_timeout=${pre_timeout:-600}
  case "$pre_timeout" in '' | *[!0-9]* | 0*) fail 2 "--pre-promote-timeout must be whole seconds 1-$PRE_PROMOTE_MAX_TIMEOUT_SECONDS, got '$pre_timeout'" ;; esac
  [ "$pre_timeout" -le "$PRE_PROMOTE_MAX_TIMEOUT_SECONDS" ] ||
    fail 2 "--pre-promote-timeout must be whole seconds 1-$PRE_PROMOTE_MAX_TIMEOUT_SECONDS, got '$pre_timeout'"
fi
state=${BLUEGREEN_STATE_DIR:-/var/lib/bluegreen}
logs=${BLUEGREEN_LOG_DIR:-/var/log/bluegreen}
project=${BLUEGREEN_PROJECT:-bluegreen}
subnet=${BLUEGREEN_SUBNET:-192.168.213.0/24}
net_base=${subnet%/*}
net_base=${net_base%.*}
blue_addr=${BLUE_ADDR:-$net_base.11}
green_addr=${GREEN_ADDR:-$net_base.12}
blue_port=${BLUE_PORT:-$PORT_BLUE}
green_port=${GREEN_PORT:-$PORT_GREEN}
manage=${BLUEGREEN_MANAGE_POOLS:-yes}
secrets_dir=${BLUEGREEN_SECRETS_DIR:-/run/bluegreen/secrets}
local_image=$DEFAULT_APP_IMAGE
BLUEGREEN_CONF_DIR=${BLUEGREEN_CONF_DIR:-$home/conf}
SWITCH_DIR=${SWITCH_DIR:-$home/switch}
if [ -n "${NGINX_PREFIX:-}" ]; then
  nginx_switch=${NGINX_SWITCH_DIR:-$SWITCH_DIR}
else
  nginx_switch=${NGINX_SWITCH_DIR:-/etc/bluegreen/switch}
  NGINX_CMD=${NGINX_CMD:-sh $home/userdata/bluegreen-nginx.sh}
  export NGINX_CMD
fi
export BLUEGREEN_CONF_DIR SWITCH_DIR BLUEGREEN_HOME="$home"

# The parameter names (*_PARAM from /etc/bluegreen/env, else the stage's, from facts.sh).
bluegreen_parameter_names "$stage"
root=$PARAM_ROOT
p_active=${ACTIVE_POOL_PARAM:-$PARAM_ACTIVE_POOL}
p_canary=${CANARY_PARAM:-$PARAM_CANARY_PERCENT}
p_blue_image=${BLUE_IMAGE_PARAM:-$PARAM_BLUE_IMAGE}
p_blue_release=${BLUE_RELEASE_PARAM:-$PARAM_BLUE_RELEASE}
p_blue_env=${BLUE_ENV_PARAM:-$PARAM_BLUE_ENV}
p_blue_options=${BLUE_OPTIONS_PARAM:-$PARAM_BLUE_OPTIONS}
p_green_image=${GREEN_IMAGE_PARAM:-$PARAM_GREEN_IMAGE}
p_green_release=${GREEN_RELEASE_PARAM:-$PARAM_GREEN_RELEASE}
p_green_env=${GREEN_ENV_PARAM:-$PARAM_GREEN_ENV}
p_preview=${PREVIEW_PARAM:-$PARAM_PREVIEW}
p_green_options=${GREEN_OPTIONS_PARAM:-$PARAM_GREEN_OPTIONS}

# Values are checked against the parameters' AllowedPattern (facts.sh *_RE, core/patterns.ts
# POOL_STATE_PATTERNS) with matches <value> <pattern>.
# A value with a line break never matches (grep would match it line by line, and it would split a
# line of Compose's .env in two); nor one with a carriage return (nginx/render-upstream.sh's rule).
CR=$(printf '\r')
matches() {
  case $1 in *'
'* | *"$CR"*) return 1 ;;
  esac
  printf '%s' "$1" | grep -Eq "$2"
}

# A pool env (JSON text) -> its env file lines (stdout, exit 0), or why it is refused (stdout, exit 1).
# The rule is userdata/pool-env.json, the release CLI's too (core/pool-env.ts).
pool_env() {
  pe_out=$(printf '%s' "$1" | jq -rRs --slurpfile rule "$home/userdata/pool-env.json" -f "$home/userdata/pool-env.jq" 2>/dev/null) ||
    pe_out="refused: could not be checked (jq failed on $home/userdata/pool-env.jq)"
  case $pe_out in
    ok) return 0 ;;
    "ok
"*)
      printf '%s\n' "${pe_out#ok?}"
      return 0
      ;;
    "refused: "*) printf '%s\n' "${pe_out#refused: }" ;;
    *) printf '%s\n' "could not be checked (pool-env.jq printed neither ok nor refused)" ;;
  esac
  return 1
}

# A pool's options (JSON text) -> the same options as one line of JSON, keys sorted (stdout, exit 0),
# or why they are refused (stdout, exit 1). The rule is userdata/pool-options.json (core/pool-options.ts).
pool_options() {
  po_out=$(printf '%s' "$1" | jq -rRs --slurpfile rule "$home/userdata/pool-options.json" -f "$home/userdata/pool-options.jq" 2>/dev/null) ||
    po_out="refused: could not be checked (jq failed on $home/userdata/pool-options.jq)"
  case $po_out in
    "ok
"*)
      printf '%s\n' "${po_out#ok?}"
      return 0
      ;;
    "refused: "*) printf '%s\n' "${po_out#refused: }" ;;
    *) printf '%s\n' "could not be checked (pool-options.jq printed neither ok nor refused)" ;;
  esac
  return 1
}
# pool_compose_times <pool> <options>: the Compose .env lines of a pool's health check and drain
# times (BLUE_HEALTH_START_PERIOD=10s, ...), from its options (checked), each absent one at its
# default (pool-options.json; docker-compose.yml has the same defaults).
pool_compose_times() {
  printf '%s' "$2" | jq -r --arg p "$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')" \
    --slurpfile rule "$home/userdata/pool-options.json" \
    '. as $o | $rule[0].seconds | to_entries[] | "\($p)_\(.value.compose)=\($o[.key] // .value.default)s"'
}

# --- secrets (README "Secrets") ----------------------------------------------------------------------
# A pool's pinned secrets (its options' secrets: NAME -> a Parameter Store version, or a Secrets
# Manager ARN[:json key]) are fetched when the pool is (re)created and given to Compose as an env file
# in $secrets_dir, a tmpfs: never on the disk, gone at reboot (the boot run fetches them again). No
# value is ever an argument of a command (the process list shows those), printed, or put in a step.
# fetch_secrets <pool> <options> <file>: writes the file (0600) or prints why not (exit 1).
fetch_secrets() {
  fs_refs=$(printf '%s' "$2" | jq -r '(.secrets // {}) | to_entries[] | "\(.key) \(.value)"')
  rm -f "$3"
  [ -n "$fs_refs" ] || return 0
  fs_fs=$(stat -f -c %T "$secrets_dir" 2>/dev/null || true)
  case "$fs_fs" in
    tmpfs | ramfs) ;;
    *)
      printf '%s\n' "$secrets_dir is not a tmpfs (${fs_fs:-missing}): secrets are never written to the disk"
      return 1
      ;;
  esac
  fs_objs=
  fs_batch=
  fs_count=0
  # Parameter Store: name:version, at most 10 names a call (GetParameters' limit), decrypted.
  for fs_ref in $(printf '%s\n' "$fs_refs" | awk '$2 !~ /^arn:/ {print $1 ":" $2}'); do
    fs_batch="$fs_batch $PARAM_ROOT/secrets/$fs_ref"
    fs_count=$((fs_count + 1))
    if [ "$fs_count" -eq 10 ]; then
      fs_obj=$(fetch_parameter_secrets "$fs_batch") || { printf '%s\n' "$fs_obj"; return 1; }
      fs_objs="$fs_objs$fs_obj
"
      fs_batch='' fs_count=0
    fi
  done
  if [ -n "$fs_batch" ]; then
    fs_obj=$(fetch_parameter_secrets "$fs_batch") || { printf '%s\n' "$fs_obj"; return 1; }
    fs_objs="$fs_objs$fs_obj
"
  fi
  # Secrets Manager: the version the release pinned (or, pinned before releases did, the current
  # one), or one key of its JSON.
  for fs_line in $(printf '%s\n' "$fs_refs" | awk '$2 ~ /^arn:/ {print $1 "=" $2}'); do
    fs_name=${fs_line%%=*}
    fs_ref=${fs_line#*=}
    # The ARN has six colons; a seventh starts the JSON key; a pin has nine: <ARN>:<key>::<version id>.
    fs_arn=$(printf '%s' "$fs_ref" | cut -d: -f1-7)
    fs_key=$(printf '%s' "$fs_ref" | cut -s -d: -f8)
    fs_version=$(printf '%s' "$fs_ref" | cut -s -d: -f10)
    if ! fs_out=$(aws secretsmanager get-secret-value --secret-id "$fs_arn" ${fs_version:+--version-id "$fs_version"} --output json 2>&1); then
      printf '%s\n' "secret $fs_name: could not read $fs_arn${fs_version:+ version $fs_version} from Secrets Manager: $(oneline "$fs_out" | cut -c1-300)"
      return 1
    fi
    if ! fs_obj=$(printf '%s' "$fs_out" | jq -ce --arg n "$fs_name" --arg k "$fs_key" \
      '.SecretString | if type != "string" then error("no SecretString") elif $k == "" then {($n): .}
       else (fromjson | .[$k]) as $v | if ($v | type) == "string" then {($n): $v} else error("no string key") end end' 2>/dev/null); then
      printf '%s\n' "secret $fs_name: $fs_arn has no string ${fs_key:+key $fs_key in its JSON }SecretString"
      return 1
    fi
    fs_out=''
    fs_objs="$fs_objs$fs_obj
"
  done
  # The env file's grammar and its writer (pool-env.jq): a value Compose cannot carry is refused.
  if ! fs_lines=$(pool_env "$(printf '%s' "$fs_objs" | jq -cs 'add // {}')"); then
    printf '%s\n' "secrets refused: $fs_lines"
    return 1
  fi
  (umask 077 && printf '%s\n' "$fs_lines" >"$3")
  fs_lines='' fs_objs=''
}
# fetch_parameter_secrets "<name:version> ...": one decrypted get-parameters call -> {NAME: value}.
fetch_parameter_secrets() {
  # shellcheck disable=SC2086 # a word list on purpose
  if ! fp_out=$(aws ssm get-parameters --with-decryption --names $1 --output json 2>&1); then
    printf '%s\n' "could not read secrets from SSM: $(oneline "$fp_out" | cut -c1-300)"
    return 1
  fi
  fp_missing=$(printf '%s' "$fp_out" | jq -r '(.InvalidParameters // []) | join(" ")')
  if [ -n "$fp_missing" ]; then
    fp_out=''
    printf '%s\n' "secrets not found (name:version): $fp_missing"
    return 1
  fi
  printf '%s' "$fp_out" | jq -c --arg root "$PARAM_ROOT/secrets/" \
    '[.Parameters[] | {key: (.Name | ltrimstr($root) | sub(":[0-9]+$"; "")), value: .Value}] | from_entries'
  fp_out=''
}
# The names and pins of a pool's secrets, for steps: NAME@v3, NAME@secrets-manager.
secret_names() {
  printf '%s' "$1" | jq -r '[(.secrets // {}) | to_entries[] | "\(.key)@\(if .value | test("^[0-9]+$") then "v" + .value
    else (.value | split(":")) as $p | if ($p | length) == 10 then "secrets-manager:" + $p[9][0:8] else "secrets-manager" end end)"] | join(", ")'
}
# The secrets dir: a tmpfs only root reads, created 0700 when missing (on a host /run is a tmpfs),
# with each pool's file in it, empty when the pool has no secrets: Compose needs the file to exist.
prepare_secrets_dir() {
  (umask 077 && mkdir -p "$secrets_dir" && for sp in blue green; do
    [ -f "$secrets_dir/$sp.env" ] || : >"$secrets_dir/$sp.env"
  done)
}

# Host-level image settings from /etc/bluegreen/env: NGINX_IMAGE (Compose's nginx) and BASE_IMAGE
# (the base of app/'s build), e.g. a registry mirror or a digest pin (name:tag@sha256:<64 hex>).
# Checked like the pool images; a bad one stops the run before anything is touched.
# check_host_image <name> <value>; the callers pass the value through a command substitution, as the
# check always read it (a trailing line break is dropped before the check).
check_host_image() {
  if [ -n "$2" ] && ! matches "$2" "$IMAGE_RE"; then
    fail 2 "$1 is '$(oneline "$2")', not an image reference like nginx:1.30-alpine or nginx:1.30-alpine@sha256:<64 hex>; nothing was changed"
  fi
}
check_host_image NGINX_IMAGE "$(printf '%s' "${NGINX_IMAGE:-}")"
check_host_image BASE_IMAGE "$(printf '%s' "${BASE_IMAGE:-}")"

# POOL_HEALTHCHECK goes into Compose's .env between single quotes, as a pool env's values do.
if [ -n "${POOL_HEALTHCHECK:-}" ] && ! out=$(pool_env "$(jq -n --arg v "$POOL_HEALTHCHECK" '{POOL_HEALTHCHECK: $v}')"); then
  fail 2 "POOL_HEALTHCHECK is '$(oneline "$POOL_HEALTHCHECK")': $out; nothing was changed"
fi

other() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }

# --- per-pool values ------------------------------------------------------------------------------
# POSIX sh has no arrays: one plain variable per pool and value, reached through an explicit case
# over the two pools (a pool name here is always blue or green: the active pool is checked first).
#   desired, from SSM and validated: <pool>_valid (yes|no), <pool>_image, <pool>_release,
#     <pool>_envlines (its env file's lines), <pool>_versions (the four parameters' versions),
#     <pool>_options (its options: one line of JSON, keys sorted; {} when none);
#   started: <pool>_start_image, <pool>_start_release, <pool>_start_options, what Compose starts the
#     pool with (the .env lines, beside pools/<pool>.env; its secrets): what it runs (its .applied),
#     or desired when nothing was applied yet; a deploy and the boot change them.
NO_OPTIONS='{}'
blue_valid='' blue_image='' blue_release='' blue_envlines='' blue_versions='' blue_options=$NO_OPTIONS
blue_start_image='' blue_start_release='' blue_start_options=$NO_OPTIONS
green_valid='' green_image='' green_release='' green_envlines='' green_versions='' green_options=$NO_OPTIONS
green_start_image='' green_start_release='' green_start_options=$NO_OPTIONS''
# pool_get <pool> <value>: prints it (empty when never set).
pool_get() {
  case $1.$2 in
    blue.valid) printf '%s' "$blue_valid" ;;
    blue.image) printf '%s' "$blue_image" ;;
    blue.release) printf '%s' "$blue_release" ;;
    blue.envlines) printf '%s' "$blue_envlines" ;;
    blue.versions) printf '%s' "$blue_versions" ;;
    blue.options) printf '%s' "$blue_options" ;;
    blue.start_options) printf '%s' "$blue_start_options" ;;
    blue.start_image) printf '%s' "$blue_start_image" ;;
    blue.start_release) printf '%s' "$blue_start_release" ;;
    green.valid) printf '%s' "$green_valid" ;;
    green.image) printf '%s' "$green_image" ;;
    green.release) printf '%s' "$green_release" ;;
    green.envlines) printf '%s' "$green_envlines" ;;
    green.versions) printf '%s' "$green_versions" ;;
    green.options) printf '%s' "$green_options" ;;
    green.start_options) printf '%s' "$green_start_options" ;;
    green.start_image) printf '%s' "$green_start_image" ;;
    green.start_release) printf '%s' "$green_start_release" ;;
    *) fail 1 "pool_get: no value '$2' for pool '$1'" ;;
  esac
}
# set_invalid <pool>: its desired state was refused.
set_invalid() {
  case $1 in
    blue) blue_valid=no ;;
    green) green_valid=no ;;
  esac
}
# set_desired <pool> <image> <release> <envlines> <versions> <options>: a desired state that passed the checks.
set_desired() {
  case $1 in
    blue) blue_valid=yes blue_image=$2 blue_release=$3 blue_envlines=$4 blue_versions=$5 blue_options=$6 ;;
    green) green_valid=yes green_image=$2 green_release=$3 green_envlines=$4 green_versions=$5 green_options=$6 ;;
  esac
}
# set_start <pool> <image> <release> <options>: what Compose starts the pool with from now on.
set_start() {
  case $1 in
    blue) blue_start_image=$2 blue_start_release=$3 blue_start_options=${4:-$NO_OPTIONS} ;;
    green) green_start_image=$2 green_start_release=$3 green_start_options=${4:-$NO_OPTIONS} ;;
  esac
}
# The parameter names of a pool's desired state: sets p_image, p_release, p_env, p_options.
pool_params() {
  case $1 in
    blue) p_image=$p_blue_image p_release=$p_blue_release p_env=$p_blue_env p_options=$p_blue_options ;;
    green) p_image=$p_green_image p_release=$p_green_release p_env=$p_green_env p_options=$p_green_options ;;
  esac
}

# --- layout (host): what nginx and Compose read must exist even when SSM cannot be read ---------
prepare_layout() {
  mkdir -p "$state/pools" "$SWITCH_DIR"
  [ "$manage" != no ] || return 0
  mkdir -p "$BLUEGREEN_CONF_DIR" "$logs"
  if [ "$BLUEGREEN_CONF_DIR" = "$home/conf" ]; then
    # conf/ mirrors local mode: links to the asset's nginx files, plus the rendered upstream.conf.
    for f in "$home"/nginx/*.conf; do
      [ -e "$f" ] || continue
      name=${f##*/}
      [ "$name" = upstream.conf ] || ln -sfn "../nginx/$name" "$BLUEGREEN_CONF_DIR/$name"
    done
  fi
  for pool in blue green; do
    [ -f "$state/pools/$pool.env" ] || : >"$state/pools/$pool.env"
  done
  prepare_secrets_dir
}
prepare_layout

# One run at a time: the timer, Run Command and an operator never overlap. A run waits for the
# one holding the lock (a release deploy takes a minute or two), then reconciles what is left.
lock=$state/apply.lock
exec 9>"$lock"
trap 'rm -f "$state/.built.$$"' EXIT
if ! flock -w "${BLUEGREEN_LOCK_TIMEOUT:-600}" 9; then
  fail 1 "another bluegreen-apply still holds $lock; try again later"
fi

# --- docker/compose helpers ---------------------------------------------------------------------
compose() {
  # The .env beside docker-compose.yml holds everything Compose interpolates; variables with the
  # same names in our own environment (an older /etc/bluegreen/env) must not override it.
  (cd "$home/userdata" && env -u COMPOSE_FILE -u COMPOSE_PROJECT_NAME -u BLUE_IMAGE -u GREEN_IMAGE \
    -u RELEASE_ID_BLUE -u RELEASE_ID_GREEN docker compose "$@")
}
# The pool's container, by Compose's labels (docker ps: much faster than `compose ps`).
container_id() {
  docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=app_$1" 2>/dev/null | head -n1
}
container_addr() {
  id=$(container_id "$1")
  [ -n "$id" ] || return 0
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$id" 2>/dev/null | awk '{print $1}'
}
# The address upstream.conf holds for a pool: its server line in its own (primary) block.
upstream_addr() {
  [ -f "$BLUEGREEN_CONF_DIR/upstream.conf" ] || return 0
  sed -n "s/^[[:space:]]*server[[:space:]]\{1,\}\([^[:space:]:]*\):[0-9]*[[:space:]].*# $1 (primary).*/\1/p" "$BLUEGREEN_CONF_DIR/upstream.conf" | head -n1
}

# --- nginx's files --------------------------------------------------------------------------------
# render-upstream.sh as nginx sees the switch dir: upstream.conf (the pools' fixed addresses when
# pools are managed here) or, with `routes`, routes.conf. Stdout: the rendered file.
render_upstream_conf() {
  if [ "$manage" != no ]; then
    SWITCH_DIR=$nginx_switch BLUE_UPSTREAM=$blue_addr:3000 GREEN_UPSTREAM=$green_addr:3000 \
      sh "$home/nginx/render-upstream.sh"
  else
    SWITCH_DIR=$nginx_switch sh "$home/nginx/render-upstream.sh"
  fi
}
render_routes_conf() { SWITCH_DIR=$nginx_switch sh "$home/nginx/render-upstream.sh" routes; }
render_fallback() {
  # Boot without SSM: nginx must still start, with the addresses it would get anyway.
  if [ "$boot" = yes ] && [ "$manage" != no ] && [ ! -f "$BLUEGREEN_CONF_DIR/upstream.conf" ]; then
    render_upstream_conf >"$BLUEGREEN_CONF_DIR/.upstream.conf.boot" &&
      mv -f "$BLUEGREEN_CONF_DIR/.upstream.conf.boot" "$BLUEGREEN_CONF_DIR/upstream.conf"
  fi
  if [ "$boot" = yes ] && [ "$manage" != no ] && [ ! -f "$BLUEGREEN_CONF_DIR/routes.conf" ]; then
    render_routes_conf >"$BLUEGREEN_CONF_DIR/.routes.conf.boot" &&
      mv -f "$BLUEGREEN_CONF_DIR/.routes.conf.boot" "$BLUEGREEN_CONF_DIR/routes.conf"
  fi
}

# --- read the pool state -------------------------------------------------------------------------
# One get-parameters call for every name this host reads: sets json, or stops (exit 3) with nothing
# changed (at boot, nginx's files are rendered first so that it can start).
read_ssm() {
  names="$p_active $p_canary"
  if [ "$manage" != no ]; then
    names="$names $p_blue_image $p_blue_release $p_blue_env $p_blue_options $p_green_image $p_green_release $p_green_env $p_green_options"
  fi
  # shellcheck disable=SC2086 # names is a word list on purpose
  if ! json=$(aws ssm get-parameters --names $names --output json 2>&1); then
    render_fallback
    fail 3 "could not read the pool state from SSM ($root): $(oneline "$json"); nginx keeps serving its current config"
  fi
  # A stack from before pool options has no options parameters: no options ({}).
  missing=$(printf '%s' "$json" | jq -r --arg b "$p_blue_options" --arg g "$p_green_options" \
    '(.InvalidParameters // []) - [$b, $g] | join(" ")')
  if [ -n "$missing" ]; then
    render_fallback
    case " $missing " in
      *" $p_active "*) fail 3 "could not read $p_active: ParameterNotFound; nginx keeps serving its current config" ;;
      *) fail 3 "could not read $missing: ParameterNotFound; nothing changed" ;;
    esac
  fi
}
value() { printf '%s' "$json" | jq -r --arg n "$1" '.Parameters[] | select(.Name == $n) | .Value'; }
version() { printf '%s' "$json" | jq -r --arg n "$1" '.Parameters[] | select(.Name == $n) | .Version'; }

# The active pool: sets active and idle, or stops (exit 2).
read_active() {
  active=$(value "$p_active")
  # The parameter has an allowed pattern, but nothing stops an older or emulated SSM from holding
  # anything: the host checks again before it acts.
  matches "$active" "$ACTIVE_POOL_RE" ||
    fail 2 "$p_active is '$active', not blue or green: refusing it; nginx keeps serving its current config"
  idle=$(other "$active")
}
# The canary share: `<share>` or, for a sticky canary, `<share> <kind>:<name>` (core/canary.ts).
# Sets canary (the share), canary_sticky (the key, a header's name lowercased, or empty), and
# canary_ok=no when the value is refused: not the pattern, or a key this host's nginx was not
# rendered to read (STICKY_KEYS in /etc/bluegreen/env, the stage's stickyKeys context).
read_canary() {
  canary_value=$(value "$p_canary")
  canary_ok=yes
  canary=${canary_value%% *}
  canary_sticky=
  if ! matches "$canary_value" "$CANARY_PERCENT_RE"; then
    canary_ok=no
    bad_values=$((bad_values + 1))
    step canary "$idle" false "$p_canary is '$canary_value', not a whole number 0-99 (optionally followed by a space and cookie:NAME or header:NAME): refused; the canary share stays as it is"
    return
  fi
  case "$canary_value" in
    *' '*) canary_sticky=$(lower_header "${canary_value#* }") ;;
  esac
  [ -n "$canary_sticky" ] || return 0
  declared=
  for k in $(printf '%s' "${STICKY_KEYS:-}" | tr ',' ' '); do declared="$declared $(lower_header "$k")"; done
  case "$declared " in
    *" $canary_sticky "*) ;;
    *)
      canary_ok=no
      bad_values=$((bad_values + 1))
      step canary "$idle" false "$p_canary is '$canary_value': $canary_sticky is not one of this stage's sticky keys (STICKY_KEYS: ${STICKY_KEYS:-none}; the stickyKeys context), so nginx here cannot read it: refused; the canary share stays as it is"
      ;;
  esac
}
# A sticky key with a header's name lowercased (HTTP header names are case-insensitive; routes.conf
# and switch-pool.sh use the lowercase name).
lower_header() {
  case "$1" in
    header:*) printf 'header:%s\n' "$(printf '%s' "${1#header:}" | tr '[:upper:]' '[:lower:]')" ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# A pool's desired image/release/env/options, validated: set_desired, or set_invalid and a refused step (a
# bad value leaves that pool as it is).
read_desired() {
  pool=$1
  pool_params "$pool"
  image=$(value "$p_image")
  release=$(value "$p_release")
  envjson=$(value "$p_env")
  optjson=$(value "$p_options")
  problem=
  matches "$image" "$IMAGE_RE" || problem="$p_image is '$image', not an image reference"
  [ -n "$problem" ] || matches "$release" "$RELEASE_RE" || problem="$p_release is '$release', not a release id ($RELEASE_RE)"
  envlines=
  if [ -z "$problem" ]; then
    # The env file's grammar and its writer in one (pool-env.jq): the lines come only from an env
    # the rule accepts, so what Compose reads is what was checked.
    if out=$(pool_env "$envjson"); then envlines=$out; else problem="$p_env is not usable: $out"; fi
  fi
  options=$NO_OPTIONS
  if [ -z "$problem" ] && [ -n "$optjson" ]; then
    if out=$(pool_options "$optjson"); then options=$out; else problem="$p_options is not usable: $out"; fi
  fi
  if [ -n "$problem" ]; then
    bad_values=$((bad_values + 1))
    set_invalid "$pool"
    step validate "$pool" false "$problem: refused; the pool is left as it is"
    return
  fi
  set_desired "$pool" "$image" "$release" "$envlines" \
    "$(version "$p_image"),$(version "$p_release"),$(version "$p_env"),$(version "$p_options")" "$options"
}

# --- pool state files ------------------------------------------------------------------------------
# pools/<pool>.applied: what the pool's container was last started with (image, release, env_sha and,
# with options, options_sha and the options: secrets' names and pinned versions, never a value).
# pools/<pool>.failed:  a desired state that failed (key, versions, reason), not retried by the timer.
field() { if [ -f "$1" ]; then sed -n "s/^$2=//p" "$1" | head -n1; fi; }
sha() { printf '%s' "$1" | sha256sum | cut -c1-16; }
# No options ({}) have no sha: a pool applied before options existed still runs its desired state.
options_sha() { if [ -z "$1" ] || [ "$1" = "$NO_OPTIONS" ]; then printf ''; else sha "$1"; fi; }
desired_key() { printf '%s\n' "$(pool_get "$1" image) $(pool_get "$1" release) $(sha "$(pool_get "$1" envlines)") $(options_sha "$(pool_get "$1" options)")"; }
applied_key() {
  f=$state/pools/$1.applied
  [ -f "$f" ] || return 0
  printf '%s\n' "$(field "$f" image) $(field "$f" release) $(field "$f" env_sha) $(field "$f" options_sha)"
}
# write_applied <pool> <image> <release> <envlines> <options> [note]
write_applied() {
  {
    printf 'image=%s\nrelease=%s\nenv_sha=%s\nat=%s\n' "$2" "$3" "$(sha "$4")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    [ -z "$(options_sha "$5")" ] || printf 'options_sha=%s\noptions=%s\n' "$(options_sha "$5")" "$5"
    [ -z "${6:-}" ] || printf 'note=%s\n' "$6"
  } >"$state/pools/$1.applied.tmp"
  mv -f "$state/pools/$1.applied.tmp" "$state/pools/$1.applied"
}
remember_failure() {
  printf 'key=%s\nversions=%s\nrelease=%s\nreason=%s\nat=%s\n' "$(desired_key "$1")" "$(pool_get "$1" versions)" \
    "$(pool_get "$1" release)" "$(oneline "$2")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$state/pools/$1.failed"
}
# Whether the pool's desired state (these very parameter versions) failed before and is not to be
# tried again (no --retry).
failed_before() {
  [ "$retry" = no ] && [ "$(field "$state/pools/$1.failed" key)" = "$(desired_key "$1")" ] &&
    [ "$(field "$state/pools/$1.failed" versions)" = "$(pool_get "$1" versions)" ]
}

# What Compose starts the pool with at first: what it runs (its .applied), or its desired state when
# nothing was applied yet; app/'s build and <pool>-1 when neither says.
init_start() {
  f=$state/pools/$1.applied
  if [ -f "$f" ]; then
    s_image=$(field "$f" image)
    s_release=$(field "$f" release)
    s_options=$(field "$f" options)
  else
    s_image=$(pool_get "$1" image)
    s_release=$(pool_get "$1" release)
    s_options=$(pool_get "$1" options)
  fi
  set_start "$1" "${s_image:-$local_image}" "${s_release:-$1-1}" "${s_options:-$NO_OPTIONS}"
}

write_compose_env() {
  f=$home/userdata/.env
  {
    printf '%s\n' "# Written by bluegreen-apply from /etc/bluegreen/env and the pool state it applied: do not edit."
    printf '%s\n' "COMPOSE_PROJECT_NAME=$project"
    printf '%s\n' "COMPOSE_FILE=docker-compose.yml"
    printf '%s\n' "BLUEGREEN_HOME=$home"
    printf '%s\n' "BLUEGREEN_STATE_DIR=$state"
    printf '%s\n' "BLUEGREEN_LOG_DIR=$logs"
    printf '%s\n' "BLUEGREEN_SECRETS_DIR=$secrets_dir"
    printf '%s\n' "BLUEGREEN_SUBNET=$subnet"
    printf '%s\n' "BLUE_ADDR=$blue_addr"
    printf '%s\n' "GREEN_ADDR=$green_addr"
    printf '%s\n' "BLUEGREEN_PUBLISH_ADDR=${BLUEGREEN_PUBLISH_ADDR:-0.0.0.0}"
    printf '%s\n' "BLUEGREEN_HTTP_PORT=${BLUEGREEN_HTTP_PORT:-$PORT_NGINX}"
    printf '%s\n' "BLUE_PORT=$blue_port"
    printf '%s\n' "GREEN_PORT=$green_port"
    [ -z "${NGINX_IMAGE:-}" ] || printf '%s\n' "NGINX_IMAGE=$NGINX_IMAGE"
    # Only when set: an empty value would override the node default in docker-compose.yml.
    [ -z "${POOL_HEALTHCHECK:-}" ] || printf '%s\n' "POOL_HEALTHCHECK='$POOL_HEALTHCHECK'"
    printf '%s\n' "BLUE_IMAGE=$blue_start_image"
    printf '%s\n' "RELEASE_ID_BLUE=$blue_start_release"
    printf '%s\n' "GREEN_IMAGE=$green_start_image"
    printf '%s\n' "RELEASE_ID_GREEN=$green_start_release"
    # Each pool's health check and drain times (its options, else the defaults).
    pool_compose_times blue "$blue_start_options"
    pool_compose_times green "$green_start_options"
    # The pools' app log (docker-compose.yml's awslogs options): the stack's group, this host's id
    # (the instance id cloud-init saved; the tests set BLUEGREEN_HOST_ID) in each stream's name.
    printf '%s\n' "APP_LOG_GROUP=${APP_LOG_GROUP:-}"
    printf '%s\n' "APP_LOG_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
    printf '%s\n' "BLUEGREEN_HOST_ID=${BLUEGREEN_HOST_ID:-$(cat /var/lib/cloud/data/instance-id 2>/dev/null || hostname)}"
    [ -z "${APP_LOG_ENDPOINT:-}" ] || printf '%s\n' "APP_LOG_ENDPOINT=$APP_LOG_ENDPOINT"
  } >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

# start_with <pool> <image> <release> <envlines> <options> <note>: the pool starts with these (the
# .env values and its env file).
start_with() {
  set_start "$1" "$2" "$3" "$5"
  printf '%s\n' "$4" | sed '/^$/d' >"$state/pools/$1.env"
  write_applied "$1" "$2" "$3" "$4" "$5" "$6"
}

# --- images -----------------------------------------------------------------------------------------
# app/ as bluegreen-app:local, FROM the Dockerfile's BASE_IMAGE or the environment's.
build_app() {
  if [ -n "${BASE_IMAGE:-}" ]; then
    docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$local_image" "$home/app"
  else
    docker build -q -t "$local_image" "$home/app"
  fi
}

# Pull the image (or build app/ for bluegreen-app:local). Fails without touching the pool.
prepare_image() {
  if [ "$1" = "$local_image" ]; then
    # Once per run (both pools may use it).
    if [ -f "$state/.built.$$" ]; then
      printf '%s\n' "$local_image built from app/"
      return 0
    fi
    out=$(build_app 2>&1) || {
      printf '%s\n' "build of $local_image from app/ failed: $(printf '%s\n' "$out" | tail -n 3)"
      return 1
    }
    : >"$state/.built.$$"
    printf '%s\n' "$local_image built from app/"
  else
    out=$(docker pull -q "$1" 2>&1) || {
      printf '%s\n' "pull of $1 failed: $(printf '%s\n' "$out" | tail -n 3)"
      return 1
    }
    printf '%s\n' "pulled $1"
  fi
}

# --- the switch dir (nginx/switch-pool.sh, no reload) ------------------------------------------------
switch_active() {
  out=$(sh "$home/nginx/switch-pool.sh" "$active" 2>&1) && ok=true || ok=false
  step active "$active" "$ok" "$out"
}
switch_canary() {
  if [ -n "$canary_sticky" ]; then
    out=$(sh "$home/nginx/switch-pool.sh" --canary "$canary" --sticky "$canary_sticky" 2>&1) && ok=true || ok=false
  else
    out=$(sh "$home/nginx/switch-pool.sh" --canary "$canary" 2>&1) && ok=true || ok=false
  fi
  step canary "$idle" "$ok" "$out"
}
# The share canary points at (.canary-<share>, or .canary-<share>.<kind>.<name> when sticky).
current_canary() {
  t=$(readlink "$SWITCH_DIR/canary" 2>/dev/null || true)
  case "$t" in .canary-*) t=${t#.canary-} && printf '%s\n' "${t%%.*}" ;; *) echo 0 ;; esac
}

# --- the release record (boot) ------------------------------------------------------------------------
# What the release record (fleet hosts: the head of the ledger LEDGER_TABLE) says the stage's hosts
# run in a pool: the release's own pool once its gate passed on every host, or the pool it left
# active (previous*): every host's deploy run also checks that the active pool runs its desired
# state, and a difference fails the deploy. Sets r_image, r_release, r_envlines, r_options and returns 0, or sets r_why and returns 1.
record_read=no
record_state() {
  r_why=
  if [ -z "${LEDGER_TABLE:-}" ]; then
    r_why="no release record on this host"
    return 1
  fi
  read_release_record
  if [ "$record_read" = failed ]; then
    r_why="the release record (the head of $LEDGER_TABLE) could not be read"
    return 1
  fi
  rs=$(record_gated_state "$1") || rs=
  if [ -z "$rs" ]; then
    r_why="the release record (the head of $LEDGER_TABLE) names no gated state for $1"
    return 1
  fi
  r_image=$(printf '%s\n' "$rs" | sed -n 1p)
  r_release=$(printf '%s\n' "$rs" | sed -n 2p)
  r_env=$(printf '%s\n' "$rs" | sed -n 3p)
  r_optjson=$(printf '%s\n' "$rs" | sed -n 4p)
  if ! matches "$r_image" "$IMAGE_RE" || ! matches "$r_release" "$RELEASE_RE"; then
    r_why="the release record's $1 state ('$r_image', '$r_release') is not an image and a release id: refused"
    return 1
  fi
  if ! r_envlines=$(pool_env "$r_env"); then
    r_why="the release record's $1 env is not usable: $r_envlines: refused"
    return 1
  fi
  if ! r_options=$(pool_options "${r_optjson:-$NO_OPTIONS}"); then
    r_why="the release record's $1 options are not usable: $r_options: refused"
    return 1
  fi
}
# The record's JSON text (the ledger head's `record` string), read once per run: sets record, and
# record_read=yes (or failed: the table, the key or the answer unreadable). No head item yet (a stage
# that never released) is an empty record, as the CLI reads it: it names no state.
read_release_record() {
  [ "$record_read" = no ] || return 0
  record_read=yes
  if [ -z "${LEDGER_HEAD_KEY:-}" ] ||
    ! record=$(aws dynamodb get-item --table-name "$LEDGER_TABLE" --key "$LEDGER_HEAD_KEY" --consistent-read --output json 2>/dev/null) ||
    ! record=$(printf '%s' "$record" | jq -rs '.[0].Item.record.S // ""' 2>/dev/null); then
    record_read=failed
  fi
}
# The gated state the record names for a pool: image, release, the env and the options (JSON), a line
# each; nothing when it names none.
record_gated_state() {
  printf '%s' "$record" | jq -rRs --arg p "$1" --arg local "$local_image" --argjson passed "$GATE_PASSED_STATES" '
    def passed: .state as $s | any($passed[]; . == $s);
    (try fromjson catch null)
    | if type != "object" then empty
      elif .pool == $p and passed then [(.image // $local), .release, .env, (.options // {})]
      elif .previousPool == $p and passed and has("previousEnv") then [(.previousImage // $local), .previousRelease, .previousEnv, (.previousOptions // {})]
      else empty end
    # An env the record had to cut (the CLI adds its "…" key) is a summary, not what the pool ran.
    | select(.[2] | type == "object" and (has("…") | not))
    | .[2] |= tojson | .[3] |= tojson
    | select(all(.[]; type == "string" and (test("[\n\r]") | not))) | .[]' 2>/dev/null
}

# --- boot: write what nginx and Compose start from; start nothing -----------------------------------
# The active pool serves as soon as nginx starts: it boots with what it ran and passed the gate here
# (.applied, its env file), never with a desired state nothing gated. A brand-new host has nothing
# applied: a fleet host takes what the release record says the hosts run; without one, the desired
# state is all there is (the stack's initial state, or what releases left). The next run reports a
# desired state the active pool does not run; only a release to the idle pool and a flip make it live.
boot_active() {
  pool=$1
  choose_active_boot_state "$pool"
  if out=$(prepare_image "$(pool_get "$pool" start_image)"); then
    step pull "$pool" true "$out; the active pool starts with $what"
  else
    step pull "$pool" false "$out; the active pool was to start with $what"
  fi
}
# Starts the active pool (start_with) on what it ran, the record's state or its desired state, in
# that order; sets what (the step's words for it).
choose_active_boot_state() {
  if [ -f "$state/pools/$1.applied" ]; then
    what="its applied release $(pool_get "$1" start_release) ($(pool_get "$1" start_image))"
  elif record_state "$1"; then
    start_with "$1" "$r_image" "$r_release" "$r_envlines" "$r_options" "boot: the release record's state"
    what="release $r_release ($r_image): what the release record says the stage's hosts run"
  elif [ "$(pool_get "$1" valid)" = yes ]; then
    start_with "$1" "$(pool_get "$1" image)" "$(pool_get "$1" release)" "$(pool_get "$1" envlines)" "$(pool_get "$1" options)" boot
    what="its desired release $(pool_get "$1" release) ($(pool_get "$1" image)): nothing applied here, and $r_why"
  else
    what="release $(pool_get "$1" start_release) ($(pool_get "$1" start_image)): nothing applied here, its desired state refused, and $r_why"
  fi
  if [ "$(pool_get "$1" valid)" = yes ] && [ "$(applied_key "$1")" != "$(desired_key "$1")" ] && [ -f "$state/pools/$1.applied" ]; then
    what="$what; its desired release $(pool_get "$1" release) ($(pool_get "$1" image)) is not applied to the active pool"
  fi
}

# The idle pool boots with its desired state; one that failed before (not --retry) or whose image
# cannot be had boots with what it last applied.
boot_idle() {
  pool=$1
  if [ "$(pool_get "$pool" valid)" != yes ]; then
    boot_refused "$pool"
    return
  fi
  if failed_before "$pool" && [ -f "$state/pools/$pool.applied" ]; then
    step pool "$pool" false "release $(pool_get "$pool" release) failed before ($(field "$state/pools/$pool.failed" reason)); booting the last applied release $(pool_get "$pool" start_release)"
    prepare_image "$(pool_get "$pool" start_image)" >/dev/null || true
    return
  fi
  if out=$(prepare_image "$(pool_get "$pool" image)"); then
    start_with "$pool" "$(pool_get "$pool" image)" "$(pool_get "$pool" release)" "$(pool_get "$pool" envlines)" "$(pool_get "$pool" options)" boot
    step pull "$pool" true "$out; starts with release $(pool_get "$pool" release)"
  elif [ -f "$state/pools/$pool.applied" ] && prepare_image "$(pool_get "$pool" start_image)" >/dev/null; then
    step pull "$pool" false "$out; starts with its last applied release $(pool_get "$pool" start_release)"
  else
    step pull "$pool" false "$out"
  fi
}
# Refused: it starts with what it ran (or, on a brand-new host, what the record or the defaults
# give), and its image must be there for Compose to start it.
boot_refused() {
  if [ ! -f "$state/pools/$1.applied" ] && record_state "$1"; then
    start_with "$1" "$r_image" "$r_release" "$r_envlines" "$r_options" "boot: the release record's state"
  fi
  prepare_image "$(pool_get "$1" start_image)" >/dev/null || true
}

# A pool's secrets at boot (the tmpfs is empty after a reboot): fetched for what it starts with,
# tried again after each of BOOT_SECRETS_RETRY_SECONDS (the network or the instance profile's
# credentials can come up after this run starts). When every try failed the pool starts without
# them (nginx would otherwise have no pool to send to); the step says so, RUNBOOK says what to do.
boot_secrets() {
  prepare_secrets_dir
  bs_names=$(secret_names "$(pool_get "$1" start_options)")
  bs_waits=${BOOT_SECRETS_RETRY_SECONDS-2 5 10}
  case "$bs_waits" in *[!0-9\ ]*) bs_waits='2 5 10' ;; esac
  bs_tries=1
  while ! out=$(fetch_secrets "$1" "$(pool_get "$1" start_options)" "$secrets_dir/$1.env"); do
    bs_wait=$(printf '%s' "$bs_waits" | awk '{print $1}')
    if [ -z "$bs_wait" ]; then
      step secrets "$1" false "$out (tried $bs_tries times); $1 starts without its secrets ($bs_names)"
      prepare_secrets_dir
      return
    fi
    bs_waits=$(printf '%s' "$bs_waits" | awk '{$1 = ""; print}')
    say "secrets of $1 not fetched (try $bs_tries): $(oneline "$out" | cut -c1-300); trying again in $bs_wait s"
    sleep "$bs_wait"
    bs_tries=$((bs_tries + 1))
  done
  [ -z "$bs_names" ] || step secrets "$1" true "fetched $bs_names into $secrets_dir (tmpfs)$([ "$bs_tries" = 1 ] || printf ' at try %s' "$bs_tries")"
  prepare_secrets_dir
}

# The boot run (--no-reload): the switch dir, both pools' start state and images, Compose's .env,
# upstream.conf and routes.conf; then exits.
boot_run() {
  switch_active
  if [ "$canary_ok" = yes ]; then switch_canary; fi
  if [ "$manage" != no ]; then
    boot_active "$active"
    boot_idle "$idle"
    boot_secrets "$active"
    boot_secrets "$idle"
    write_compose_env
  fi
  render_upstream_conf >"$BLUEGREEN_CONF_DIR/.upstream.conf.boot"
  mv -f "$BLUEGREEN_CONF_DIR/.upstream.conf.boot" "$BLUEGREEN_CONF_DIR/upstream.conf"
  say "rendered upstream.conf (no reload)"
  # The timeouts and slow paths from /etc/bluegreen/env (checked at synth, and again by the renderer).
  render_routes_conf >"$BLUEGREEN_CONF_DIR/.routes.conf.boot"
  mv -f "$BLUEGREEN_CONF_DIR/.routes.conf.boot" "$BLUEGREEN_CONF_DIR/routes.conf"
  say "rendered routes.conf (no reload)"
  finish
}

# --- nginx's view of the pool addresses -------------------------------------------------------------
# Fixed addresses on the Compose network keep a recreated pool where it was; if a container still
# ends up elsewhere (reconnected by hand, another network), nginx must follow: apply-upstream.sh.
sync_addresses() {
  [ "$manage" != no ] || return 0
  changes=
  for sp in blue green; do
    have=$(container_addr "$sp")
    [ -n "$have" ] || continue
    held=$(upstream_addr "$sp")
    [ "$have" = "$held" ] || changes="$changes $sp ${held:-none} -> $have;"
  done
  if [ -z "$changes" ]; then
    [ "${1:-}" != report ] || step address "$2" true "$(container_addr "$2") is what upstream.conf holds"
    return 0
  fi
  bu=$(container_addr blue)
  gu=$(container_addr green)
  if out=$(SWITCH_DIR=$nginx_switch BLUE_UPSTREAM=${bu:-$(upstream_addr blue)}:3000 GREEN_UPSTREAM=${gu:-$(upstream_addr green)}:3000 \
    sh "$home/nginx/apply-upstream.sh" 2>&1); then
    step upstream - true "pool address changed:$changes $out"
  else
    step upstream - false "pool address changed:$changes nginx keeps its previous upstream.conf: $out"
  fi
}

# --- nginx's timeouts and slow paths --------------------------------------------------------------
# Rendered from the environment (/etc/bluegreen/env) with the addresses upstream.conf holds; every
# run, so an edited env file is applied by the next run. apply-upstream.sh compares the rendered
# files with the running ones and reloads only on a real change: a run with nothing new is silent.
apply_settings() {
  if [ "$manage" != no ]; then
    bu=$(upstream_addr blue)
    gu=$(upstream_addr green)
    # No upstream.conf yet (nothing rendered): the boot writes it.
    [ -n "$bu" ] && [ -n "$gu" ] || return 0
    set -- "BLUE_UPSTREAM=$bu:3000" "GREEN_UPSTREAM=$gu:3000"
  fi
  if out=$(env SWITCH_DIR="$nginx_switch" "$@" sh "$home/nginx/apply-upstream.sh" 2>&1); then
    case "$out" in
      *"unchanged; no reload"*) ;;
      *) step settings - true "$out" ;;
    esac
  else
    step settings - false "nginx keeps its previous config: $out"
  fi
}

# --- a pool's container: recreate, health, smoke --------------------------------------------------
# recreate <pool> <options of the container it replaces>: the pool's container with its start values,
# without waiting for Docker's health status (await_ready judges it). The old container gets SIGTERM
# and its own drain (drainSeconds of what it was started with: Compose would take the new
# release's) to answer its requests in flight before SIGKILL. Prints the failure.
recreate() {
  write_compose_env
  compose up -d --no-deps --force-recreate --timeout "$(drain_seconds "$2")" "app_$1" 2>&1
}
# drain_seconds <options>: their drainSeconds, else the default.
drain_seconds() {
  d_s=$(printf '%s' "${1:-$NO_OPTIONS}" | jq -r --argjson d "$DRAIN_DEFAULT" '.drainSeconds // $d' 2>/dev/null) || d_s=
  case "$d_s" in '' | *[!0-9]*) d_s=$DRAIN_DEFAULT ;; esac
  printf '%s\n' "$d_s"
}
# A pool's health settings in seconds, from the options it is started with (checked when read; the
# same values Compose's health check gets): sets h_start (start period) and h_timeout (one probe).
pool_health() {
  h_times=$(printf '%s' "$(pool_get "$1" start_options)" | jq -r \
    --argjson s "$HEALTH_START_PERIOD_DEFAULT" --argjson t "$HEALTH_TIMEOUT_DEFAULT" \
    '"\(.healthStartPeriodSeconds // $s) \(.healthTimeoutSeconds // $t)"' 2>/dev/null) || h_times=
  h_start=${h_times% *}
  h_timeout=${h_times#* }
  case "$h_start$h_timeout" in
    '' | *[!0-9]*) h_start=$HEALTH_START_PERIOD_DEFAULT h_timeout=$HEALTH_TIMEOUT_DEFAULT ;;
  esac
}
# Milliseconds since the epoch (GNU date; whole seconds where %N is not supported).
now_ms() {
  nm=$(date +%s%N)
  case $nm in
    *N) printf '%s\n' "$(($(date +%s) * 1000))" ;;
    *) printf '%s\n' "$((nm / 1000000))" ;;
  esac
}
# Waits for a just-recreated pool to serve: GET /healthz through its own published port every
# GATE_PROBE_MS until it answers 200 (exit 0), rather than Docker's first check an interval after the
# start (DECISIONS "The gate probes the pool itself"). Not ready (exit 1): the container stopped or
# was restarted, Docker reports it unhealthy, or no 200 within the start period plus Docker's
# retries (core/pool-health.ts gateWaitSeconds). Prints what it found.
await_ready() {
  pool_health "$1"
  port=$blue_port
  [ "$1" = blue ] || port=$green_port
  r_id=$(container_id "$1")
  r_wait=$((h_start + HEALTH_RETRIES * (HEALTH_INTERVAL_SECONDS + h_timeout)))
  r_pause=$((GATE_PROBE_MS / 1000)).$(printf '%03d' $((GATE_PROBE_MS % 1000)))
  r_start=$(now_ms)
  r_code=
  r_n=0
  while :; do
    if [ -z "$r_id" ]; then
      printf '%s\n' "no running container for app_$1 (docker compose ps app_$1)"
      return 1
    fi
    r_code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$h_timeout" "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
    r_ms=$(($(now_ms) - r_start))
    if [ "$r_code" = 200 ]; then
      printf '%s\n' "GET 127.0.0.1:$port/healthz answers 200 after $r_ms ms (probed every $GATE_PROBE_MS ms, start period $h_start s)"
      return 0
    fi
    # The container's own state about every second (a docker call each probe would cost more CPU
    # than the probe): one that exited, restarts or is unhealthy fails now, not at the deadline.
    if [ $((r_n % 5)) = 0 ] || [ "$r_ms" -ge $((r_wait * 1000)) ]; then
      r_state=$(docker inspect -f '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$r_id" 2>/dev/null || echo gone 0 0 none)
      # shellcheck disable=SC2086 # four words on purpose
      set -- "$1" $r_state
      if [ "$2" != running ]; then
        printf '%s\n' "the container is $2 (exit code $4) after $r_ms ms; GET 127.0.0.1:$port/healthz answered ${r_code:-nothing}"
        return 1
      elif [ "$3" != 0 ]; then
        printf '%s\n' "the container exited and was restarted $3 times within $r_ms ms; GET 127.0.0.1:$port/healthz answers ${r_code:-nothing}"
        return 1
      elif [ "$5" = unhealthy ]; then
        printf '%s\n' "Docker reports it unhealthy after $r_ms ms (start period $h_start s); $(health_detail "$1")"
        return 1
      fi
    fi
    if [ "$r_ms" -ge $((r_wait * 1000)) ]; then
      printf '%s\n' "GET 127.0.0.1:$port/healthz did not answer 200 within $r_wait s (start period $h_start s + $HEALTH_RETRIES checks of ${HEALTH_INTERVAL_SECONDS} s + ${h_timeout} s; last: ${r_code:-nothing}); a slow start: bluegreen release --health-start-period"
      return 1
    fi
    r_n=$((r_n + 1))
    sleep "$r_pause"
  done
}
health_detail() {
  id=$(container_id "$1")
  if [ -z "$id" ]; then
    printf '%s\n' "no running container"
    return
  fi
  port=$blue_port
  [ "$1" = blue ] || port=$green_port
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
  docker inspect -f '{{.State.Status}}{{if .State.Health}}, health {{.State.Health.Status}} ({{.State.Health.FailingStreak}} failed checks in a row){{end}}' "$id" 2>/dev/null |
    sed "s|\$|, GET 127.0.0.1:$port/healthz answers ${code:-nothing}|"
}
smoke() {
  port=$blue_port
  [ "$1" = blue ] || port=$green_port
  got=
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/version" 2>/dev/null); then
      got=$(printf '%s' "$body" | jq -r '.release // empty' 2>/dev/null || true)
      if [ "$got" = "$2" ]; then
        printf '%s\n' "GET 127.0.0.1:$port/version answers release $got"
        return 0
      fi
    fi
    sleep 0.5
  done
  printf '%s\n' "GET 127.0.0.1:$port/version answers ${got:+release }${got:-no 200}, expected release $2"
  return 1
}
# What the pool's running container differs in from its .applied file (which only says what it
# was last started with: a failed restore, or a run killed between recreate and write_applied,
# leaves the two apart). Prints nothing when it runs the applied image and release and is healthy
# (or its health check is still starting).
drift() {
  d_id=$(container_id "$1")
  d_want_image=$(field "$state/pools/$1.applied" image)
  d_want_release=$(field "$state/pools/$1.applied" release)
  d_info=$(docker inspect -f '{{.Config.Image}}{{println}}{{range .Config.Env}}{{println .}}{{end}}' "$d_id" 2>/dev/null) || {
    printf '%s\n' "docker inspect $d_id failed"
    return
  }
  d_image=$(printf '%s\n' "$d_info" | head -n1)
  d_release=$(printf '%s\n' "$d_info" | sed -n 's/^RELEASE_ID=//p' | head -n1)
  d_out=
  if [ "$d_image" != "$d_want_image" ] || [ "$d_release" != "$d_want_release" ]; then
    d_out="the container runs release ${d_release:-none} ($d_image)"
  fi
  case "$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}healthy{{end}}' "$d_id" 2>/dev/null)" in
    "running healthy" | "running starting") ;;
    *) d_out="${d_out:+$d_out, }the container is not healthy: $(health_detail "$1")" ;;
  esac
  printf '%s' "$d_out"
}

# --- pools ----------------------------------------------------------------------------------------
# Set to why when no canary request may go first to the idle pool this run (its share is then held
# at 0%).
hold_canary=

# One pool with a valid desired state: left alone when it runs it, reported when it is the active
# pool (never recreated) or its state failed before or --no-deploy holds it, else deployed.
reconcile() {
  pool=$1
  applied=$(applied_key "$pool")
  desired=$(desired_key "$pool")
  id=$(container_id "$pool")
  drifted=
  if [ "$applied" = "$desired" ] && [ -n "$id" ]; then
    drifted=$(drift "$pool")
    if [ -z "$drifted" ]; then
      rm -f "$state/pools/$pool.failed"
      step reconcile "$pool" true "runs release $(pool_get "$pool" release) ($(pool_get "$pool" image)); unchanged"
      return
    fi
    drifted="the applied file says release $(pool_get "$pool" release) ($(pool_get "$pool" image)) but $drifted"
  fi
  if [ "$pool" = "$active" ]; then
    report_active
    return
  fi
  if failed_before "$pool"; then
    step reconcile "$pool" false "release $(pool_get "$pool" release) failed at $(field "$state/pools/$pool.failed" at) ($(field "$state/pools/$pool.failed" reason)); not tried again: bluegreen-apply --retry, or write the parameters again"
    return
  fi
  if [ "$deploy" = no ] && [ "$applied" != "$desired" ]; then
    # No canary request may go first to a pool that does not run its desired release.
    hold_canary="$pool does not run its desired release $(pool_get "$pool" release) yet"
    step reconcile "$pool" true "runs release $(field "$state/pools/$pool.applied" release), desired $(pool_get "$pool" release): not deployed by this run (--no-deploy); a release's Run Command deploys it at its own pace"
    return
  fi
  [ -z "$drifted" ] || step reconcile "$pool" true "$drifted: recreating"
  deploy_pool
}

# The active pool (reconcile's pool, applied, desired, drifted) differs from its desired state or
# has no container: reported, never recreated here.
report_active() {
  if [ -n "$drifted" ]; then
    step reconcile "$pool" false "active pool: $drifted; the active pool is never recreated here: flip to $(other "$pool") first, then bluegreen-apply recreates $pool as the idle pool"
  elif [ "$applied" = "$desired" ]; then
    step reconcile "$pool" false "active pool has no container (docker compose ps app_$pool); the active pool is never recreated here: nginx sends its requests to $(other "$pool") (backup) meanwhile"
  else
    step reconcile "$pool" false "active pool runs release $(field "$state/pools/$pool.applied" release), desired $(pool_get "$pool" release); the active pool is never recreated: release to the idle pool, or flip away first"
  fi
}

# The idle pool (reconcile's pool) onto its desired state: pull -> canary at 0% -> recreate ->
# health -> fresh -> smoke; then keep it, or put the previous release back.
deploy_pool() {
  d_start=$(now_ms)
  if ! out=$(prepare_image "$(pool_get "$pool" image)"); then
    step pull "$pool" false "$out; the pool is left as it was"
    remember_failure "$pool" "$out"
    return
  fi
  # The time it took: what follows (recreate to smoke) is the gate's own (bench/release-docker).
  step pull "$pool" true "$out in $(($(now_ms) - d_start)) ms"
  prepare_secrets_dir
  if ! out=$(fetch_secrets "$pool" "$(pool_get "$pool" options)" "$secrets_dir/.$pool.env.next"); then
    rm -f "$secrets_dir/.$pool.env.next"
    step secrets "$pool" false "$out; the pool is left as it was"
    remember_failure "$pool" "secrets: $out"
    return
  fi
  [ -z "$(secret_names "$(pool_get "$pool" options)")" ] ||
    step secrets "$pool" true "fetched $(secret_names "$(pool_get "$pool" options)") into $secrets_dir (tmpfs)"
  pause_canary
  end_preview
  stage_desired
  run_gate
  if [ -z "$reason" ]; then
    keep_deployed
  else
    restore_previous
  fi
}

# No canary request may have this pool as its first try while it is being replaced.
pause_canary() {
  if [ "$(current_canary)" != 0 ]; then
    out=$(sh "$home/nginx/switch-pool.sh" --canary 0 2>&1) && ok=true || ok=false
    step canary "$pool" "$ok" "while $pool is recreated: $out"
  fi
}

# The pool's start values and env file become its desired state; the previous ones are kept in
# prev_image, prev_release, prev_options and pools/<pool>.env.prev.
stage_desired() {
  prev_image=$(pool_get "$pool" start_image)
  prev_release=$(pool_get "$pool" start_release)
  prev_options=$(pool_get "$pool" start_options)
  cp -p "$state/pools/$pool.env" "$state/pools/$pool.env.prev"
  # Its secrets too (on the tmpfs): the previous file back on a failed gate, none when it had none.
  rm -f "$secrets_dir/$pool.env.prev"
  [ ! -f "$secrets_dir/$pool.env" ] || mv -f "$secrets_dir/$pool.env" "$secrets_dir/$pool.env.prev"
  [ ! -f "$secrets_dir/.$pool.env.next" ] || mv -f "$secrets_dir/.$pool.env.next" "$secrets_dir/$pool.env"
  prepare_secrets_dir
  set_start "$pool" "$(pool_get "$pool" image)" "$(pool_get "$pool" release)" "$(pool_get "$pool" options)"
  printf '%s\n' "$(pool_get "$pool" envlines)" | sed '/^$/d' >"$state/pools/$pool.env"
}

# A recreated container serves the pool: its requests go through the pool's next generation of
# upstream blocks (switch-pool.sh --fresh, a flag file, no reload), so what nginx marked failed on
# the old container (max_fails, per block and worker, for fail_timeout) does not send the new one's
# requests to the other pool. Only once it is healthy: a request nginx tried while it was still
# starting would mark the new generation failed too. Before the smoke test, whatever that finds: the
# smoke test goes to the pool's own port, not through nginx, and the container is new either way.
fresh_pool() {
  out=$(sh "$home/nginx/switch-pool.sh" --fresh "$1" 2>&1) && ok=true || ok=false
  step fresh "$1" "$ok" "$out"
  [ "$ok" = true ]
}

# Recreate, health check, fresh generation, smoke test: a step each; sets reason to the failed gate
# (empty: passed).
run_gate() {
  reason=
  if out=$(recreate "$pool" "$prev_options"); then
    step recreate "$pool" true "app_$pool recreated with release $(pool_get "$pool" release)"
  else
    step recreate "$pool" false "$(printf '%s\n' "$out" | tail -n 2)"
  fi
  if out=$(await_ready "$pool"); then
    step health "$pool" true "$out"
    if ! fresh_pool "$pool"; then
      reason="fresh: $out"
    elif out=$(smoke "$pool" "$(pool_get "$pool" release)"); then
      step smoke "$pool" true "$out"
    else
      reason="smoke: $out"
      step smoke "$pool" false "$out"
    fi
  else
    reason="health: $out"
    step health "$pool" false "$out"
  fi
}

# The gate passed: the pool runs its desired state (.applied), and nginx follows its address.
keep_deployed() {
  write_applied "$pool" "$(pool_get "$pool" image)" "$(pool_get "$pool" release)" "$(pool_get "$pool" envlines)" "$(pool_get "$pool" options)"
  rm -f "$state/pools/$pool.failed" "$state/pools/$pool.env.prev" "$secrets_dir/$pool.env.prev"
  step reconcile "$pool" true "runs release $(pool_get "$pool" release) ($(pool_get "$pool" image))"
  sync_addresses report "$pool"
}

# The gate failed: put the previous release back, so the idle pool is a healthy backup again.
restore_previous() {
  remember_failure "$pool" "$reason"
  hold_canary="$pool failed release $(pool_get "$pool" release)"
  set_start "$pool" "$prev_image" "$prev_release" "$prev_options"
  mv -f "$state/pools/$pool.env.prev" "$state/pools/$pool.env"
  rm -f "$secrets_dir/$pool.env"
  [ ! -f "$secrets_dir/$pool.env.prev" ] || mv -f "$secrets_dir/$pool.env.prev" "$secrets_dir/$pool.env"
  prepare_secrets_dir
  out=
  if recreate "$pool" "$(pool_get "$pool" options)" >/dev/null && out=$(await_ready "$pool"); then
    step restore "$pool" true "back on release $prev_release ($prev_image): $out"
    fresh_pool "$pool" || true
  else
    step restore "$pool" false "release $prev_release ($prev_image) did not come back healthy: ${out:-$(health_detail "$pool")}"
  fi
  sync_addresses
}

# Both pools, the idle one first; an idle pool whose desired state failed holds the canary share.
reconcile_pools() {
  if [ "$manage" = no ]; then
    step pools - true "not managed here (BLUEGREEN_MANAGE_POOLS=no): active pool and canary only"
    return
  fi
  for pool in "$idle" "$active"; do
    [ "$(pool_get "$pool" valid)" = yes ] || continue
    reconcile "$pool"
    failed=$state/pools/$pool.failed
    if [ "$pool" = "$idle" ] && [ -f "$failed" ] && [ "$(field "$failed" key)" = "$(desired_key "$pool")" ] && [ -z "$hold_canary" ]; then
      hold_canary="$pool's desired release $(pool_get "$pool" release) failed"
    fi
  done
}

# --- canary ---------------------------------------------------------------------------------------
apply_canary() {
  [ "$canary_ok" = yes ] || return 0
  if [ -n "$hold_canary" ] && [ "$canary" != 0 ]; then
    out=$(sh "$home/nginx/switch-pool.sh" --canary 0 2>&1) || true
    step canary "$idle" false "held at 0% instead of $canary%: $hold_canary; $out"
  else
    switch_canary
  fi
}

# --- preview (--preview) -----------------------------------------------------------------------------
# The preview parameter onto the switch dir. Its value is never printed (it holds the token): the
# step says which pool, or off. Not found = off (the CLI creates it with the first preview).
apply_preview() {
  if ! pv_json=$(aws ssm get-parameter --name "$p_preview" --with-decryption --output json 2>&1); then
    case $pv_json in
      *ParameterNotFound*) pv_value=off ;;
      *) fail 3 "could not read $p_preview: $(oneline "$pv_json"); the preview stays as it is" ;;
    esac
  else
    pv_value=$(printf '%s' "$pv_json" | jq -r '.Parameter.Value')
  fi
  pv_pool=${pv_value%% *}
  pv_token=${pv_value#* }
  if [ "$pv_value" = off ]; then
    out=$(sh "$home/nginx/switch-pool.sh" --preview off 2>&1) && ok=true || ok=false
    step preview - "$ok" "$out"
  elif matches "$pv_pool" "$ACTIVE_POOL_RE" && matches "$pv_token" "$PREVIEW_TOKEN_RE"; then
    # printf is a builtin: the token reaches switch-pool.sh through a pipe, never an argument.
    if out=$(printf '%s\n' "$pv_token" | sh "$home/nginx/switch-pool.sh" --preview "$pv_pool" 2>&1); then
      step preview "$pv_pool" true "$out"
    else
      # Refused (the pool is active here): no preview at all rather than an older one.
      off=$(sh "$home/nginx/switch-pool.sh" --preview off 2>&1) || true
      step preview "$pv_pool" false "$out; $off"
    fi
  else
    bad_values=$((bad_values + 1))
    out=$(sh "$home/nginx/switch-pool.sh" --preview off 2>&1) || true
    step preview - false "$p_preview is not '<blue|green> <token>' nor off (value not shown: it may hold a token): refused; no preview: $out"
  fi
}
# A redeployed pool's preview ends: the token was for the release it ran.
end_preview() {
  out=$(sh "$home/nginx/switch-pool.sh" --preview off "$pool" 2>&1) && ok=true || ok=false
  case $out in
    *"no preview"*) ;;
    *) step preview "$pool" "$ok" "while $pool is recreated: $out" ;;
  esac
}

# --- the release phase (--pre-promote) -------------------------------------------------------------
# Under the lock, on the idle pool only, in its running container, and only when that container runs
# the pool's desired state (the release's gate passed on it): never on the active pool, never on a
# container the gate failed or a later deploy replaced.
pre_promote_step() {
  ok=$1
  format=$2
  shift 2
  # shellcheck disable=SC2059 # the formats are facts.sh's
  step "$PRE_PROMOTE_STEP" "$idle" "$ok" "$(printf "$format" "$@")"
}
run_pre_promote() {
  if [ "$manage" = no ]; then
    pre_promote_step false 'refused: %s' "no pool containers here (BLUEGREEN_MANAGE_POOLS=no)"
    return
  fi
  [ "$(pool_get "$idle" valid)" = yes ] || {
    pre_promote_step false 'refused: %s' "$idle's desired state is not valid"
    return
  }
  if [ "$(applied_key "$idle")" != "$(desired_key "$idle")" ]; then
    pre_promote_step false 'refused: %s' "$idle does not run its desired release $(pool_get "$idle" release) (it runs $(field "$state/pools/$idle.applied" release)): deploy it first"
    return
  fi
  cid=$(container_id "$idle")
  if [ -z "$cid" ]; then
    pre_promote_step false 'refused: %s' "app_$idle has no running container"
    return
  fi
  cmd=$(printf '%s' "$pre_b64" | base64 -d 2>/dev/null) || {
    pre_promote_step false 'refused: %s' "--pre-promote is not valid base64"
    return
  }
  out=$state/pre-promote.$$.out
  started=$(date +%s)
  # The timeout runs inside the container, so the command itself is killed (killing `docker exec`
  # alone would leave it running there); the outer one is the backstop for an image without timeout(1).
  set +e
  # Its stderr joins its stdout inside the container: `docker exec` carries the two as separate
  # streams, and the record must keep the order the command wrote its lines in.
  # shellcheck disable=SC2016 # $0 and $1 are the container shell's
  timeout -k 10 "$((pre_timeout + 30))" docker exec "$cid" sh -c \
    'if command -v timeout >/dev/null 2>&1; then exec timeout -k 10 "$0" sh -c "$1" 2>&1; else exec sh -c "$1" 2>&1; fi' \
    "$pre_timeout" "$cmd" </dev/null >"$out" 2>&1
  code=$?
  set -e
  secs=$(($(date +%s) - started))
  printf '%s%s\n' "$PRE_PROMOTE_OUTPUT_PREFIX" \
    "$(tail -n "$PRE_PROMOTE_OUTPUT_LINES" "$out" | tail -c "$PRE_PROMOTE_OUTPUT_BYTES" | base64 | tr -d '\n')"
  rm -f "$out"
  if [ "$code" = 0 ]; then
    pre_promote_step true "$PRE_PROMOTE_EXIT_PRINTF" "$code" "$secs"
  elif [ "$code" = "$PRE_PROMOTE_TIMEOUT_EXIT" ] || [ "$secs" -ge "$pre_timeout" ]; then
    pre_promote_step false "$PRE_PROMOTE_TIMED_OUT_PRINTF" "$secs"
  else
    pre_promote_step false "$PRE_PROMOTE_EXIT_PRINTF" "$code" "$secs"
  fi
}

# --- the run ----------------------------------------------------------------------------------------
if [ "$preview_only" = yes ]; then
  if [ "$boot" = yes ] || [ "$retry" = yes ] || [ "$deploy" = no ] || [ -n "$pre_b64" ]; then fail 2 "--preview takes no other argument"; fi
  apply_preview
  finish
fi
read_ssm
read_active
read_canary
# A flip first (a flag file, no reload): the active pool does not wait for the pools' checks and
# docker calls below (a second or more); nginx sends what fails on it to the other pool meanwhile.
# Not at boot (boot_run writes it) nor in a release phase run (it touches nothing else).
if [ "$boot" != yes ] && [ -z "$pre_b64" ]; then
  say "$p_active = $active"
  switch_active
fi
if [ "$manage" != no ]; then
  for pool in blue green; do read_desired "$pool"; done
  for pool in blue green; do init_start "$pool"; done
fi
if [ "$boot" = yes ]; then boot_run; fi
if [ -n "$pre_b64" ]; then
  run_pre_promote
  finish
fi

sync_addresses
apply_settings
reconcile_pools
apply_canary
finish
