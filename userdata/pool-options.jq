# A pool's options (/bluegreen/<stage>/pools/<pool>/options), checked by the rule in pool-options.json
# (the release CLI applies the same file: core/pool-options.ts). Run by bluegreen-apply as
#   jq -rRs --slurpfile rule pool-options.json -f pool-options.jq   (stdin: the parameter's raw text)
# Prints `ok` and then the options as one line of JSON, keys sorted (what the agent keeps and
# compares); or one line `refused: <why>` and nothing else. Unknown keys are refused: an option this
# host does not know would otherwise be silently ignored.
def whole_re($p): "\\A(?:" + $p + ")\\z";
def name_ok($r): test(whole_re($r.secretNamePattern)) and (test("[\n\r]") | not);
def sorted: to_entries | sort_by(.key) | from_entries;
def problem($r):
  if type != "object" then $r.problems.notObject
  elif [keys[] | select(. as $k | $k != "secrets" and ($r.seconds | has($k) | not))] | length > 0 then
    "\([keys[] | select(. as $k | $k != "secrets" and ($r.seconds | has($k) | not))][0]): \($r.problems.unknownKey)"
  elif [($r.seconds | keys_unsorted[]) as $k | select(has($k)) | .[$k] | select(type != "number" or . != floor)] | length > 0 then
    $r.problems.notWhole
  elif [($r.seconds | to_entries[]) as $s | select(has($s.key)) | .[$s.key] | select(. < $s.value.min or . > $s.value.max)] | length > 0 then
    $r.problems.outOfBounds
  elif has("secrets") | not then empty
  elif (.secrets | type) != "object" then $r.problems.secretsNotObject
  elif [.secrets[] | select(type != "string")] | length > 0 then $r.problems.secretsNotObject
  elif (.secrets | length) > $r.maxSecrets then $r.problems.tooManySecrets
  elif [.secrets | keys[] | select(name_ok($r) | not)] | length > 0 then $r.problems.badSecretName
  elif [.secrets | keys[] | . as $k | select($r.reservedNames | any(.[]; . == $k))] | length > 0 then $r.problems.reservedSecretName
  elif [.secrets[] | select(test(whole_re($r.secretRefPattern)) and (test("[\n\r]") | not) | not)] | length > 0 then $r.problems.badSecretRef
  else empty end;

$rule[0] as $r
| [try fromjson] as $parsed
| if $parsed == [] then "refused: \($r.problems.notJson)"
  else $parsed[0] as $o
  | ([$o | problem($r)] | first // null) as $problem
  | if $problem != null then "refused: \($problem)"
    else "ok", ($o | sorted | if has("secrets") then .secrets |= sorted else . end | tojson) end
  end
