#!/bin/sh
# bluegreen-join: fleet mode only. The user data runs it after bootstrap.sh succeeded and before the
# host completes its launch lifecycle action (= before the group puts it InService and the load
# balancer sends it traffic). It returns once no release is in progress on the stage, so a host that a
# scale-out, a replacement or a rolling update launches during `bluegreen release` never enters
# service half-released: it waits, holding its lifecycle action with heartbeats, until the release
# is promoted, rolled back or failed; the user data then runs bluegreen-apply (the stage's state as it
# is then) and joins. A host that finished bootstrapping while the release was still deploying is
# deployed and gated by it like every other host (Run Command finds it by its tag); one still
# bootstrapping answers the release's command with `step=join` (core/host-command.ts).
#
# "In progress" is the release CLI's own rule (core/release-record.ts inProgress): the record
# at RELEASE_PARAM is not in a final state and was written, or is due (bakeUntil), within
# RELEASE_STALE_AFTER_SECONDS. Those values come from /etc/bluegreen/env, written by the stack from
# the same constants (lib/fleet-hosts.ts).
#
# Usage: bluegreen-join <auto-scaling-group> <lifecycle-hook> <instance-id>
#        bluegreen-join --verdict [now-epoch-seconds]   (the record JSON on stdin; prints
#                       none | final | invalid <why> | stale | in-progress <id> <state>; for the tests)
# Environment: RELEASE_PARAM, RELEASE_FINAL_STATES (space-separated), RELEASE_STALE_AFTER_SECONDS,
#   RELEASE_BAKE_AHEAD_SECONDS,
#   AWS_REGION; JOIN_POLL_SECONDS (15), JOIN_HEARTBEAT_SECONDS (300: well inside the hook's
#   heartbeat timeout), JOIN_MAX_WAIT_SECONDS (21600).
# Exit codes: 0 no release in progress (join now); 1 still waiting after JOIN_MAX_WAIT_SECONDS (the
#   user data then abandons the launch and the group tries another host); 2 usage or configuration.
set -eu

env_file=${BLUEGREEN_ENV_FILE:-/etc/bluegreen/env}
if [ -f "$env_file" ]; then
  # shellcheck disable=SC1090
  . "$env_file"
fi

say() { printf 'bluegreen-join: %s\n' "$*"; }
die() {
  printf 'bluegreen-join: %s\n' "$2" >&2
  exit "$1"
}

: "${RELEASE_FINAL_STATES:?bluegreen-join: RELEASE_FINAL_STATES is not set (fleet hosts get it in /etc/bluegreen/env)}"
: "${RELEASE_STALE_AFTER_SECONDS:?bluegreen-join: RELEASE_STALE_AFTER_SECONDS is not set}"
: "${RELEASE_BAKE_AHEAD_SECONDS:?bluegreen-join: RELEASE_BAKE_AHEAD_SECONDS is not set}"

# The record (stdin) against the rule (core/release-record.ts recordVerdict). What parseRecord
# does not take as a record (junk, "{}", no id/state, a pool other than blue|green, no steps list) =
# no record. Times are read only in the form the CLI writes (YYYY-MM-DDTHH:MM:SS[.sss]Z, a real date,
# from 1970) and compared in milliseconds, as parseRecordTime does; a record with another form, a
# startedAt after its updatedAt, an updatedAt ahead of this clock by more than the stale limit or a
# bakeUntil further past updatedAt than the longest bake and a promotion is invalid (with the same
# reason as recordTimesProblem), and an invalid record is not in progress. The input is read raw and
# parsed inside jq, so jq itself failing (missing, broken) is "unknown", never "none".
verdict() {
  jq -rRs --argjson now "$1" --argjson stale "$RELEASE_STALE_AFTER_SECONDS" --argjson ahead "$RELEASE_BAKE_AHEAD_SECONDS" --arg finals "$RELEASE_FINAL_STATES" '
    def ms:
      if type == "string" and test("\\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{3})?Z\\z") and (.[0:4] | tonumber) >= 1970 then
        (.[0:19] + "Z") as $s
        | (try ($s | fromdateiso8601) catch null) as $e
        | if $e != null and ($e | todateiso8601) == $s then $e * 1000 + (if length == 24 then .[20:23] | tonumber else 0 end) else null end
      else null end;
    def problem($r):
      ($r.startedAt | ms) as $started | ($r.updatedAt | ms) as $updated
      | ($r.bakeUntil != null) as $baking | ($r.bakeUntil | ms) as $bake
      | if $started == null then "startedAt is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
        elif $updated == null then "updatedAt is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
        elif $baking and $bake == null then "bakeUntil is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
        elif $started > $updated then "startedAt is after updatedAt"
        elif $updated > $now * 1000 + $stale * 1000 then "updatedAt is more than \($stale) s ahead of this clock"
        elif $baking and $bake > $updated + $ahead * 1000 then "bakeUntil is more than \($ahead) s after updatedAt (the longest bake and a promotion)"
        else null end;
    (try fromjson catch null) as $r
    | if ($r | type) != "object" or ($r.state | type) != "string" or ($r.id | type) != "string"
        or ($r.pool != "blue" and $r.pool != "green") or ($r.steps | type) != "array" then "none"
      elif ($r.state as $s | [$finals | splits(" +")] | any(. == $s)) then "final"
      elif problem($r) != null then "invalid \(problem($r))"
      elif ($now * 1000 - ([($r.updatedAt | ms), ($r.bakeUntil | ms // 0)] | max)) > $stale * 1000 then "stale"
      else "in-progress \($r.id) \($r.state)" end' 2>/dev/null || printf '%s\n' "unknown (jq failed)"
}

# jq with its regular expressions and date functions, or nothing here can be trusted: a host that
# cannot tell whether a release is in progress does not join (exit 2: the launch is abandoned).
[ "$(jq -n '"2026-01-01T00:00:00Z" | select(test("\\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\\z")) | fromdateiso8601 | select(todateiso8601 == "2026-01-01T00:00:00Z")' 2>/dev/null)" = 1767225600 ] ||
  die 2 "jq is missing or lacks test/fromdateiso8601/todateiso8601: cannot read the release record"

if [ "${1:-}" = "--verdict" ]; then
  verdict "${2:-$(date +%s)}"
  exit 0
fi

[ $# -eq 3 ] || die 2 "usage: bluegreen-join <auto-scaling-group> <lifecycle-hook> <instance-id>"
group=$1
hook=$2
instance=$3
: "${RELEASE_PARAM:?bluegreen-join: RELEASE_PARAM is not set}"
poll=${JOIN_POLL_SECONDS:-15}
heartbeat_every=${JOIN_HEARTBEAT_SECONDS:-300}
max_wait=${JOIN_MAX_WAIT_SECONDS:-21600}

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
started=$(date +%s)
# The first heartbeat goes out in the first round of waiting: the bootstrap has already used part
# of the hook's timeout.
last_heartbeat=0
waited_for=
while :; do
  now=$(date +%s)
  # stderr apart: a warning on it must not become part of the value.
  if out=$(aws ssm get-parameter --name "$RELEASE_PARAM" --query Parameter.Value --output text 2>"$errors"); then
    state=$(printf '%s' "$out" | verdict "$now")
  elif grep -q ParameterNotFound "$errors"; then
    state=none
  else
    # Not knowing is not "no release": keep the host out a little longer rather than join blind.
    state="unknown $(tr '\n' ' ' <"$errors" | cut -c1-200)"
  fi
  case $state in
    none | final | stale | invalid*)
      if [ -n "$waited_for" ]; then
        say "release $waited_for is over ($state) after $((now - started)) s: joining with the stage state as it is now"
      else
        say "no release in progress ($state): joining"
      fi
      exit 0
      ;;
  esac
  # in-progress <id> <state>, or unknown <why>
  case $state in
    in-progress*)
      id=$(printf '%s\n' "$state" | cut -d' ' -f2)
      [ "$id" = "$waited_for" ] || say "release $id is in progress ($(printf '%s\n' "$state" | cut -d' ' -f3)): waiting for it to finish before joining (a host joins with the stage's final state, never half-released)"
      waited_for=$id
      ;;
    *) say "cannot read $RELEASE_PARAM ($state): retrying" ;;
  esac
  if [ $((now - started)) -ge "$max_wait" ]; then
    die 1 "still not joining after $((now - started)) s (limit ${max_wait} s): ${state}"
  fi
  if [ $((now - last_heartbeat)) -ge "$heartbeat_every" ]; then
    # Keeps the launch lifecycle action open (its heartbeat timeout is the bootstrap timeout). A failed
    # heartbeat is retried next round; if the hook times out the launch is abandoned, as for a slow bootstrap.
    if hb=$(aws autoscaling record-lifecycle-action-heartbeat --auto-scaling-group-name "$group" --lifecycle-hook-name "$hook" --instance-id "$instance" 2>&1); then
      last_heartbeat=$now
    else
      say "lifecycle heartbeat failed: $(printf '%s' "$hb" | tr '\n' ' ' | cut -c1-200)"
    fi
  fi
  sleep "$poll"
done
