#!/bin/sh
# Flips the active pool, or sets the canary share, by changing files in the switch dir that nginx
# checks on every request (nginx.conf). No nginx call, no reload: a reload closes idle keep-alive
# connections, and clients that do not re-send on a closed connection count that as a failure.
# Every change is one atomic file operation, so each request sees the old state or the new one.
#
# Usage: switch-pool.sh <blue|green>     green-active exists <=> green is the active pool
#        switch-pool.sh --canary <0-99>  that share of requests tries the idle pool first
#        switch-pool.sh --fresh <blue|green>
#                                        the pool's requests go through its next generation of
#                                        upstream blocks: nginx forgets what it learned about the
#                                        pool's old process (call it once a new one serves the pool)
# Environment:
#   SWITCH_DIR  the switch dir, as this shell sees it (required; nginx may see it elsewhere)
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

flip() {
  pool=$1
  flag=$dir/green-active
  if [ -f "$flag" ]; then current=green; else current=blue; fi
  if [ "$pool" = "$current" ]; then
    say "$pool is already the active pool; nothing changed"
    return
  fi
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

current_canary() {
  target=$(readlink "$dir/canary" 2>/dev/null || true)
  case "$target" in
    .canary-*) echo "${target#.canary-}" ;;
    *) echo 0 ;;
  esac
}

# .canary-N holds exactly the empty files 00 … N-1: the canary buckets (nginx/canary-buckets.conf).
# A stray file would make its bucket a canary bucket too, so all 100 names are checked.
canary_dir_ok() {
  n=$1
  [ -d "$dir/.canary-$n" ] || return 1
  i=0
  while [ "$i" -lt 100 ]; do
    name=$dir/.canary-$n/$(printf '%02d' "$i")
    if [ "$i" -lt "$n" ]; then
      [ -f "$name" ] || return 1
    else
      [ ! -e "$name" ] || return 1
    fi
    i=$((i + 1))
  done
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

canary() {
  n=$1
  # Two canary changes at once could each remove the bucket dir the other just built.
  take_lock "$dir/.canary.lock"
  build=$dir/.canary-$n.new.$$
  link=$dir/.canary.$$
  trap 'rm -rf "$build" "$link"; rmdir "$lock" 2>/dev/null || true' EXIT INT TERM

  was=$(current_canary)
  if [ "$n" = "$was" ] && { [ "$n" = 0 ] || canary_dir_ok "$n"; }; then
    say "canary share is already $n%; nothing changed"
    return
  fi
  if ! canary_dir_ok "$n"; then
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
    rm -rf "$dir/.canary-$n"
    mv -T "$build" "$dir/.canary-$n"
  fi
  # Relative target: the host and the nginx container see the switch dir at different paths.
  rm -f "$link"
  ln -s ".canary-$n" "$link"
  # mv -T renames the link itself over the old one (rename(2): atomic), never into its target.
  mv -T "$link" "$dir/canary"
  if [ "$n" = 0 ]; then
    say "canary share is now 0% (was $was%): every request tries the active pool first"
  else
    say "canary share is now $n% (was $was%): that share of requests tries the idle pool first, the active pool is its backup"
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
  settings=$(dirname "$0")/proxy-settings.sh
  [ -f "$settings" ] || fail "$settings is missing (generated from core/ by npm run generate, shipped next to this script); nothing changed"
  # shellcheck source-path=SCRIPTDIR source=proxy-settings.sh
  . "$settings"
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

usage="usage: switch-pool.sh <blue|green> | --canary <0-99> | --fresh <blue|green>"
case "${1:-}" in
  blue | green)
    [ $# -eq 1 ] || fail "$usage; nothing changed"
    flip "$1"
    ;;
  --canary)
    [ $# -eq 2 ] || fail "$usage; nothing changed"
    # No leading zeros: the value is also a directory name, and 010 is not 10 to every shell.
    # A glob on the whole value, not grep (which matches line by line: "5<newline>x" passed).
    case $2 in
      [0-9] | [1-9][0-9]) ;;
      *) fail "the canary share must be a whole number 0-99, got '$2'; nothing changed" ;;
    esac
    canary "$2"
    ;;
  --fresh)
    [ $# -eq 2 ] || fail "$usage; nothing changed"
    case $2 in
      blue | green) ;;
      *) fail "--fresh takes a pool, blue or green, got '$2'; nothing changed" ;;
    esac
    fresh "$2"
    ;;
  '') fail "$usage; nothing changed" ;;
  *) fail "the pool must be blue or green, got '$1'; nothing changed, nginx keeps serving as before" ;;
esac
