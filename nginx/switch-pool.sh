#!/bin/sh
# Flips the active pool, or sets the canary share, by changing files in the switch dir that nginx
# checks on every request (nginx.conf). No nginx call, no reload: a reload closes idle keep-alive
# connections, and clients that do not re-send on a closed connection count that as a failure.
# Every change is one atomic file operation, so each request sees the old state or the new one.
#
# Usage: switch-pool.sh <blue|green>     green-active exists <=> green is the active pool
#        switch-pool.sh --canary <0-99> [--sticky cookie:NAME|header:NAME]
#                                        that share of requests tries the idle pool first; with
#                                        --sticky, a request carrying the key goes by its value (one
#                                        client, one side); the key must be one of the stage's
#                                        STICKY_KEYS (rendered into routes.conf) when that is set
#        switch-pool.sh --fresh <blue|green>
#                                        the pool's requests go through its next generation of
#                                        upstream blocks: nginx forgets what it learned about the
#                                        pool's old process (call it once a new one serves the pool)
#        switch-pool.sh --preview <blue|green>   (the token on stdin, one line)
#                                        a request carrying the token goes to that pool alone, no
#                                        fallback (nginx.conf): the file preview.<pool>.<token>, the
#                                        only preview file; refused for the active pool
#        switch-pool.sh --preview off [<blue|green>]
#                                        no preview (of that pool only, when named)
#        A flip to a pool also ends its preview: the active pool is never previewed.
# Environment:
#   SWITCH_DIR  the switch dir, as this shell sees it (required; nginx may see it elsewhere)
#   STICKY_KEYS the keys the stage's routes.conf was rendered with (optional): --sticky refuses others
# Prints one line saying what it did. Exit codes: 0 done or already so, 2 bad input or busy
# (nothing changed), 1 the file system refused a step.
set -eu

dir=${SWITCH_DIR:-}

say() { printf 'switch-pool: %s\n' "$*"; }
fail() {
  printf 'switch-pool: %s\n' "$*" >&2
  exit 2
}

[ -n "$dir" ] || fail "SWITCH_DIR is not set (the directory nginx checks for green-active and canary); nothing changed"
[ -d "$dir" ] || fail "SWITCH_DIR '$dir' is not a directory; nothing changed"

# Removes the pool's preview files; no process is started when there are none (a flip stays quick).
end_preview_of() {
  for f in "$dir/preview.$1".*; do
    if [ -e "$f" ]; then rm -f "$f"; fi
  done
}

flip() {
  pool=$1
  flag=$dir/green-active
  if [ -f "$flag" ]; then current=green; else current=blue; fi
  if [ "$pool" = "$current" ]; then
    end_preview_of "$pool"
    say "$pool is already the active pool; nothing changed"
    return
  fi
  # The preview of the pool that becomes active ends (nginx already ignores it: it checks the idle
  # pool's name), so a flip back later does not bring an old token back to life.
  end_preview_of "$pool"
  if [ "$pool" = green ]; then
    # Written under a temp name and renamed: the flag appears whole, or not at all.
    tmp=$dir/.green-active.$$
    : >"$tmp"
    mv -f "$tmp" "$flag"
  else
    rm -f "$flag"
  fi
  say "active pool is now $pool (nginx reads it per request; no reload)"
}

# What canary points at, after ".canary-": "<share>" or "<share>.<kind>.<name>" (a sticky canary);
# 0 when there is none.
current_canary() {
  target=$(readlink "$dir/canary" 2>/dev/null || true)
  case "$target" in
    .canary-*) echo "${target#.canary-}" ;;
    *) echo 0 ;;
  esac
}

# "<share>%", and the sticky key if any: how the messages name a canary state.
describe() {
  case "$1" in
    *.*)
      rest=${1#*.}
      printf '%s%% sticky on %s:%s' "${1%%.*}" "${rest%%.*}" "${rest#*.}"
      ;;
    *) printf '%s%%' "$1" ;;
  esac
}

# .canary-N holds exactly the empty files 00 … N-1: the canary buckets (nginx/canary-buckets.conf);
# a sticky canary's dir, .canary-N.<kind>.<name>, also the flag sticky.<kind>.<name> (routes.conf).
# A stray file would make its bucket a canary bucket too, or stick on another key, so all 100 names
# and every sticky flag are checked.
canary_dir_ok() {
  n=$1 suffix=$2
  d=$dir/.canary-$n$suffix
  [ -d "$d" ] || return 1
  i=0
  while [ "$i" -lt 100 ]; do
    name=$d/$(printf '%02d' "$i")
    if [ "$i" -lt "$n" ]; then
      [ -f "$name" ] || return 1
    else
      [ ! -e "$name" ] || return 1
    fi
    i=$((i + 1))
  done
  for flag in "$d"/sticky.*; do
    [ -e "$flag" ] || continue
    [ "$flag" = "$d/sticky$suffix" ] || return 1
  done
  [ -z "$suffix" ] || [ -f "$d/sticky$suffix" ]
}

# Holds $1 (a directory: mkdir is atomic) for the rest of this run; the caller's trap removes it.
take_lock() {
  lock=$1
  tries=0
  until mkdir "$lock" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || fail "another change holds $lock for over 10 s; if none is running, remove it; nothing changed"
    sleep 0.2
  done
}

# $1 the share, $2 the sticky key (kind:name, a header's name lowercased) or empty. Share and key
# live in one directory that canary points at, so one rename changes both.
canary() {
  n=$1
  suffix=
  [ -z "$2" ] || suffix=.${2%%:*}.${2#*:}
  state=$n$suffix
  # Two canary changes at once could each remove the bucket dir the other just built.
  take_lock "$dir/.canary.lock"
  build=$dir/.canary-$state.new.$$
  link=$dir/.canary.$$
  trap 'rm -rf "$build" "$link"; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM

  was=$(current_canary)
  if [ "$state" = "$was" ] && { [ "$n" = 0 ] || canary_dir_ok "$n" "$suffix"; }; then
    say "canary share is already $(describe "$state"); nothing changed"
    return
  fi
  if ! canary_dir_ok "$n" "$suffix"; then
    # Filled under a temp name, then renamed: nginx never sees a half-filled bucket dir.
    rm -rf "$build"
    mkdir "$build"
    # nginx workers (an unprivileged user) must see into it whatever this shell's umask is.
    chmod 755 "$build"
    i=0
    while [ "$i" -lt "$n" ]; do
      : >"$build/$(printf '%02d' "$i")"
      i=$((i + 1))
    done
    [ -z "$suffix" ] || : >"$build/sticky$suffix"
    rm -rf "$dir/.canary-$state"
    mv -T "$build" "$dir/.canary-$state"
  fi
  # Relative target: the host and the nginx container see the switch dir at different paths.
  rm -f "$link"
  ln -s ".canary-$state" "$link"
  # mv -T renames the link itself over the old one (rename(2): atomic), never into its target.
  mv -T "$link" "$dir/canary"
  if [ "$n" = 0 ]; then
    say "canary share is now 0% (was $(describe "$was")): every request tries the active pool first"
  elif [ -z "$suffix" ]; then
    say "canary share is now $n% (was $(describe "$was")): that share of requests tries the idle pool first, the active pool is its backup"
  else
    say "canary share is now $(describe "$state") (was $(describe "$was")): a request carrying ${2%%:*} ${2#*:} goes by its value, so one client stays on one side (that share of values tries the idle pool first, the active pool is its backup); a request without it is split per request"
  fi
}

# A pool's generation (nginx.conf, render-upstream.sh): the flag generation-<pool>-<g> of one of
# the generations after the first, or none for the first. nginx checks the flags in generation
# order and the last one found wins, so that one is the current generation.
current_generation() {
  g_current=
  for g in $POOL_GENERATIONS; do
    if [ -z "$g_current" ] || [ -f "$dir/generation-$1-$g" ]; then g_current=$g; fi
  done
  printf '%s\n' "$g_current"
}

fresh() {
  pool=$1
  load_settings
  take_lock "$dir/.generation-$pool.lock"
  trap 'rm -f "$dir/.generation-$pool.$$"; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM
  was=$(current_generation "$pool")
  first='' next='' after_was=no
  for g in $POOL_GENERATIONS; do
    [ -n "$first" ] || first=$g
    if [ "$after_was" = yes ] && [ -z "$next" ]; then next=$g; fi
    [ "$g" != "$was" ] || after_was=yes
  done
  # After the last comes the first: the generation left longest ago.
  [ -n "$next" ] || next=$first
  # Flags of other generations than the current one (a run killed half-way, a hand edit): nginx
  # ignores them (a later flag wins), so removing them changes nothing it sees.
  for g in $POOL_GENERATIONS; do
    [ "$g" = "$was" ] || rm -f "$dir/generation-$pool-$g"
  done
  # One file operation, so each request sees the old generation or the new one.
  if [ "$was" = "$first" ]; then
    # Written under a temp name and renamed: the flag appears whole, or not at all.
    : >"$dir/.generation-$pool.$$"
    mv -f "$dir/.generation-$pool.$$" "$dir/generation-$pool-$next"
  elif [ "$next" = "$first" ]; then
    rm -f "$dir/generation-$pool-$was"
  else
    mv -f "$dir/generation-$pool-$was" "$dir/generation-$pool-$next"
  fi
  say "$pool is now on generation $next (was $was): its requests go through upstream bluegreen_${pool}_$next, the block it left longest ago, so what nginx marked failed on its old process stays behind (no reload)"
}

# The preview (nginx.conf): one file, preview.<pool>.<token>, for the idle pool. The token comes on
# stdin, never as an argument (a process list shows arguments). Written under a temp name and renamed
# (appears whole), then every other preview file goes: at most one token routes at a time.
preview() {
  pool=$1
  load_settings
  if [ -f "$dir/green-active" ]; then current=green; else current=blue; fi
  [ "$pool" != "$current" ] || fail "$pool is the active pool: a preview is of the idle pool (a release not yet promoted); nothing changed"
  # All of stdin (its final line break dropped): a second line is refused with the rest by matches().
  token=$(cat)
  [ -n "$token" ] || fail "--preview $pool reads the token from stdin, got nothing; nothing changed"
  # The token becomes a file name nginx checks: exactly PREVIEW_TOKEN_RE, nothing else.
  matches "$token" "$PREVIEW_TOKEN_RE" || fail "the preview token must be 32 base64url characters (A-Z a-z 0-9 _ -); nothing changed"
  take_lock "$dir/.preview.lock"
  trap 'rm -f "$dir/.preview.$$"; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM
  keep=$dir/preview.$pool.$token
  if [ ! -f "$keep" ]; then
    : >"$dir/.preview.$$"
    chmod 644 "$dir/.preview.$$"
    mv -f "$dir/.preview.$$" "$keep"
  fi
  for f in "$dir"/preview.*; do
    [ -e "$f" ] || continue
    [ "$f" = "$keep" ] || rm -f "$f"
  done
  say "preview of $pool is on: a request carrying its token goes to $pool alone, no fallback (no reload)"
}

# Ends the preview (of one pool when named).
preview_off() {
  take_lock "$dir/.preview.lock"
  trap 'rmdir "$lock" 2>/dev/null || true' EXIT INT TERM
  found=no
  for f in "$dir"/preview.*; do
    [ -e "$f" ] || continue
    [ -z "${1:-}" ] || [ "${f#"$dir/preview.$1."}" != "$f" ] || continue
    rm -f "$f"
    found=yes
  done
  if [ "$found" = yes ]; then
    say "preview${1:+ of $1} is off: its token routes nothing (no reload)"
  else
    say "no preview${1:+ of $1} is on; nothing changed"
  fi
}

# The settings' facts (patterns, generations): generated from core, beside this script.
load_settings() {
  settings=$(dirname "$0")/proxy-settings.sh
  [ -f "$settings" ] || fail "$settings is missing (generated from core/ by npm run generate, shipped next to this script); nothing changed"
  # shellcheck source-path=SCRIPTDIR source=proxy-settings.sh
  . "$settings"
}

# A one-line value matching an extended regular expression (grep alone matches line by line).
matches() {
  case $1 in *'
'*) return 1 ;;
  esac
  printf '%s' "$1" | grep -Eq "$2"
}

# --sticky's key, checked (STICKY_KEY_RE; declared in STICKY_KEYS when that is set); prints it with
# a header's name lowercased.
sticky_key() {
  matches "$1" "$STICKY_KEY_RE" || fail "the sticky key must be cookie:NAME (letters, digits, _) or header:NAME (letters, digits, -), at most 64 characters, got '$1'; nothing changed"
  key=$1
  case "$key" in header:*) key=header:$(printf '%s' "${key#header:}" | tr '[:upper:]' '[:lower:]') ;; esac
  if [ -n "${STICKY_KEYS:-}" ]; then
    declared=
    for k in $(printf '%s' "$STICKY_KEYS" | tr ',' ' '); do
      case "$k" in header:*) k=header:$(printf '%s' "${k#header:}" | tr '[:upper:]' '[:lower:]') ;; esac
      declared="$declared $k"
    done
    case "$declared " in
      *" $key "*) ;;
      *) fail "the sticky key $key is not one of this stage's STICKY_KEYS ($STICKY_KEYS): nginx was not rendered to read it; nothing changed" ;;
    esac
  elif [ "${STICKY_KEYS+set}" = set ]; then
    fail "the sticky key $key is not one of this stage's STICKY_KEYS (none declared): nginx was not rendered to read it; nothing changed"
  fi
  printf '%s\n' "$key"
}

usage="usage: switch-pool.sh <blue|green> | --canary <0-99> [--sticky cookie:NAME|header:NAME] | --fresh <blue|green> | --preview <blue|green> (token on stdin) | --preview off [<blue|green>]"
case "${1:-}" in
  blue | green)
    [ $# -eq 1 ] || fail "$usage; nothing changed"
    flip "$1"
    ;;
  --canary)
    [ $# -eq 2 ] || { [ $# -eq 4 ] && [ "$3" = --sticky ]; } || fail "$usage; nothing changed"
    # No leading zeros: the value is also a directory name, and 010 is not 10 to every shell.
    # A glob on the whole value, not grep (which matches line by line: "5<newline>x" passed).
    case $2 in
      [0-9] | [1-9][0-9]) ;;
      *) fail "the canary share must be a whole number 0-99, got '$2'; nothing changed" ;;
    esac
    sticky=
    if [ $# -eq 4 ]; then
      [ "$2" != 0 ] || fail "a sticky key needs a canary share above 0, got --canary 0 --sticky $4; nothing changed"
      load_settings
      sticky=$(sticky_key "$4")
    fi
    canary "$2" "$sticky"
    ;;
  --fresh)
    [ $# -eq 2 ] || fail "$usage; nothing changed"
    case $2 in
      blue | green) ;;
      *) fail "--fresh takes a pool, blue or green, got '$2'; nothing changed" ;;
    esac
    fresh "$2"
    ;;
  --preview)
    case "$#:${2:-}" in
      2:blue | 2:green) preview "$2" ;;
      2:off) preview_off ;;
      3:off)
        case $3 in
          blue | green) preview_off "$3" ;;
          *) fail "--preview off takes a pool, blue or green, got '$3'; nothing changed" ;;
        esac
        ;;
      *) fail "$usage; nothing changed" ;;
    esac
    ;;
  '') fail "$usage; nothing changed" ;;
  *) fail "the pool must be blue or green, got '$1'; nothing changed, nginx keeps serving as before" ;;
esac
