# A pool's env file, written so that Compose reads exactly the values that were checked: the rule is
# pool-env.json (the release CLI applies the same file: core/pool-env.ts). Run by bluegreen-apply as
#   jq -rRs --slurpfile rule pool-env.json -f pool-env.jq   (stdin: the env parameter's raw text)
# Prints `ok` and then one KEY='value' line per variable, sorted by key; or one line
# `refused: <why>` and nothing else. No line is ever printed for an env the rule refuses.
#
# Why each rule (Compose's env-file parser, compose-go's dotenv, v2.0.0 to v2.1.6):
#   - inside '...' a backslash before the closing quote escapes it: `A='x\'` runs on into the next
#     line, so a value ending in a backslash broke the file (or, with a second value, let that value
#     define variables of its own, HOST included);
#   - a line holding a bare KEY takes its value from Compose's own environment (the agent's), so a key
#     must be one line; jq's `$` matches before a final line feed: keys are anchored with \A and \z
#     and checked for line breaks apart;
#   - a line break, carriage return or quote in a value would end it; a NUL cannot reach the shell.
def key_ok($r): test("\\A(?:" + $r.keyPattern + ")\\z") and (test("[\n\r]") | not);
def value_problem($r):
  if test($r.valueForbiddenPattern) then $r.problems.badValue
  elif endswith($r.valueForbiddenEnd) then $r.problems.endsInBackslash
  else empty end;
def problem($r):
  if type != "object" then $r.problems.notObject
  elif [.[] | select(type != "string")] | length > 0 then $r.problems.notString
  elif [keys_unsorted[] | select(key_ok($r) | not)] | length > 0 then $r.problems.badKey
  elif [keys_unsorted[] | select(. as $k | $r.reservedKeys | any(.[]; . == $k))] | length > 0 then $r.problems.reservedKey
  else first(to_entries | sort_by(.key)[] | .value | value_problem($r)) // empty end;

$rule[0] as $r
| [try fromjson] as $parsed
| if $parsed == [] then "refused: \($r.problems.notJson)"
  else $parsed[0] as $env
  | ([$env | problem($r)] | first // null) as $problem
  | if $problem != null then "refused: \($problem)"
    else "ok", ($env | to_entries | sort_by(.key)[] | "\(.key)='\(.value)'") end
  end
