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
# "In progress" is the release CLI's own rule (core/release-record.ts recordVerdict): the record at
# the head of the stage's release ledger (the DynamoDB table LEDGER_TABLE, its head item at
# LEDGER_HEAD_KEY, the record's JSON in its `record` string) is not in a final state, its times are
# the CLI's, and it was written, or is due (bakeUntil), within the stale limit. No head item is no
# record (a stage that never released); a table or item that cannot be read (missing table, denied,
# throttled) is not knowing, and not knowing is never "no release": the host keeps polling. The
# rule, with core's final states, limits and time form, is record-verdict.jq beside this script,
# generated from core/ (core/host-files.ts, `npm run generate`) and shipped in the same asset folder
# (/opt/bluegreen/fleet on a host).
#
# Usage: bluegreen-join <auto-scaling-group> <lifecycle-hook> <instance-id>
#        bluegreen-join --verdict [now-epoch-seconds]   (the record JSON on stdin; prints
#                       none | final | invalid <why> | stale | in-progress <id> <state>; for the tests)
# Environment (from /etc/bluegreen/env): LEDGER_TABLE, LEDGER_HEAD_KEY (the head's key as
#   `aws dynamodb get-item --key` takes it; both set by the stack from core/release-ledger.ts),
#   AWS_REGION; JOIN_POLL_SECONDS (15),
#   JOIN_HEARTBEAT_SECONDS (300: well inside the hook's heartbeat timeout), JOIN_MAX_WAIT_SECONDS (21600).
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

# The record (stdin) against the rule. The input is read raw and parsed inside jq, so jq itself
# failing (missing, broken) is "unknown", never "none".
rule=$(dirname "$0")/record-verdict.jq
verdict() {
  jq -rRs --argjson now "$1" -f "$rule" 2>/dev/null || printf '%s\n' "unknown (jq failed)"
}

# jq with its regular expressions and date functions, or nothing here can be trusted: a host that
# cannot tell whether a release is in progress does not join (exit 2: the launch is abandoned).
[ "$(jq -n '"2026-01-01T00:00:00Z" | select(test("\\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\\z")) | fromdateiso8601 | select(todateiso8601 == "2026-01-01T00:00:00Z")' 2>/dev/null)" = 1767225600 ] ||
  die 2 "jq is missing or lacks test/fromdateiso8601/todateiso8601: cannot read the release record"
# Nor without the rule, whole: it ships next to this script (the fleet/ asset), and says "none" of "{}".
[ -f "$rule" ] || die 2 "$rule is missing (generated from core/ by npm run generate, shipped next to this script): cannot read the release record"
[ "$(printf '{}' | jq -rRs --argjson now 0 -f "$rule" 2>&1)" = none ] ||
  die 2 "$rule does not run (jq: $(printf '{}' | jq -rRs --argjson now 0 -f "$rule" 2>&1 | tr '\n' ' ' | cut -c1-200)): cannot read the release record"

if [ "${1:-}" = "--verdict" ]; then
  verdict "${2:-$(date +%s)}"
  exit 0
fi

[ $# -eq 3 ] || die 2 "usage: bluegreen-join <auto-scaling-group> <lifecycle-hook> <instance-id>"
group=$1
hook=$2
instance=$3
[ -n "${LEDGER_TABLE:-}" ] || die 2 "LEDGER_TABLE is not set: cannot read the release record"
[ -n "${LEDGER_HEAD_KEY:-}" ] || die 2 "LEDGER_HEAD_KEY is not set: cannot read the release record"
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
  # stderr apart: a warning on it must not become part of the value. No head item: the CLI answers
  # nothing (or {}), and the record is empty ("none"). A missing table is an error like any other.
  if out=$(aws dynamodb get-item --table-name "$LEDGER_TABLE" --key "$LEDGER_HEAD_KEY" --consistent-read --output json 2>"$errors"); then
    if value=$(printf '%s' "$out" | jq -rs '.[0].Item.record.S // ""' 2>"$errors"); then
      state=$(printf '%s' "$value" | verdict "$now")
    else
      state="unknown (jq could not read the answer: $(tr '\n' ' ' <"$errors" | cut -c1-200))"
    fi
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
    *) say "cannot read the head of the release ledger $LEDGER_TABLE ($state): retrying" ;;
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
