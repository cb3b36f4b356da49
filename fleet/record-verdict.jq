# Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.
# The release record's verdict (core/release-record.ts: parseRecord, recordVerdict, recordTimesProblem)
# for fleet/bluegreen-join.sh, which ships with it:
#   jq -rRs --argjson now <epoch seconds> -f record-verdict.jq <the record's stored value>
# prints none | final | invalid <why> | stale | in-progress <id> <state>. The value is read raw and
# parsed here: junk, "{}", or no id/state/steps list or a pool other than blue|green is no record.
# Times are read only in the form the CLI writes, a real date from 1970, in milliseconds.

def final_states: ["deployed","promoted","rolled-back","held","frozen","failed"];
# Not final and not written nor due (bakeUntil, maxBakeUntil) for this long: abandoned (STALE_AFTER_MS).
def stale_after_ms: 600000;
# How far ahead of this clock a record may have been written (CLOCK_AHEAD_MS).
def clock_ahead_ms: 600000;
# How far past updatedAt a bakeUntil (or maxBakeUntil) may be: the longest bake and a promotion (BAKE_AHEAD_MS).
def bake_ahead_ms: 87000000;
# The record's time form (RECORD_TIME).
def record_time: "\\A([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\\.([0-9]{3}))?Z\\z";

def ms:
  if type == "string" and test(record_time) and (.[0:4] | tonumber) >= 1970 then
    (.[0:19] + "Z") as $s
    | (try ($s | fromdateiso8601) catch null) as $e
    | if $e != null and ($e | todateiso8601) == $s then $e * 1000 + (if length == 24 then .[20:23] | tonumber else 0 end) else null end
  else null end;

def problem($r):
  ($r.startedAt | ms) as $started | ($r.updatedAt | ms) as $updated
  | ($r.bakeUntil != null) as $baking | ($r.bakeUntil | ms) as $bake
  | ($r.maxBakeUntil != null) as $extendable | ($r.maxBakeUntil | ms) as $maxBake
  | if $started == null then "startedAt is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
    elif $updated == null then "updatedAt is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
    elif $baking and $bake == null then "bakeUntil is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
    elif $extendable and $maxBake == null then "maxBakeUntil is not a time as the CLI writes it (YYYY-MM-DDTHH:MM:SS[.sss]Z)"
    elif $started > $updated then "startedAt is after updatedAt"
    elif $updated > $now * 1000 + clock_ahead_ms then "updatedAt is more than 600 s ahead of this clock"
    elif $baking and $bake > $updated + bake_ahead_ms then "bakeUntil is more than 87000 s after updatedAt (the longest bake and a promotion)"
    elif $extendable and $maxBake > $updated + bake_ahead_ms then "maxBakeUntil is more than 87000 s after updatedAt (the longest bake and a promotion)"
    else null end;

(try fromjson catch null) as $r
| if ($r | type) != "object" or ($r.state | type) != "string" or ($r.id | type) != "string"
    or ($r.pool != "blue" and $r.pool != "green") or ($r.steps | type) != "array" then "none"
  elif ($r.state as $s | final_states | any(. == $s)) then "final"
  elif problem($r) != null then "invalid \(problem($r))"
  elif ($now * 1000 - ([($r.updatedAt | ms), ($r.bakeUntil | ms // 0), ($r.maxBakeUntil | ms // 0)] | max)) > stale_after_ms then "stale"
  else "in-progress \($r.id) \($r.state)" end
