#!/bin/sh
# bluegreen-log-reopen LOG_DIR: logrotate's postrotate for the host's nginx logs (logrotate.conf).
# Tells nginx to reopen its logs (`bluegreen-nginx -s reopen`) and checks that it did: every log
# logrotate has just renamed (X.log.1 there, X.log gone) must be back, created by nginx's reopen.
# `nginx -s reopen` only sends a signal, and nginx keeps writing to the old file when its own reopen
# fails, so a command that exits 0 proves nothing on its own.
# Tries a few times with a pause (the nginx container may be restarting). Then it says so on stderr
# (logrotate's output: `journalctl -u logrotate.service`) and in the journal (tag bluegreen-logrotate)
# and exits 1, so logrotate fails loudly: otherwise nginx writes on into X.log.1, which the next
# rotation compresses and a later one deletes, losing those lines without a word.
# Nobody reads a host's journal, so the final failure is also one line appended to
# LOG_DIR/log-rotation-failures: the CloudWatch agent ships that file to the error log group
# (cloudwatch-agent.json), whose metric filter feeds the alarm bluegreen-<stage>-log-rotation-failed
# (lib/log-rotation-alarm.ts: the pattern is this line's "bluegreen-logrotate: nginx did not reopen
# its logs"). A file of its own, written by this script alone: nginx's error.log is the file nginx
# failed to reopen, and the name is no *.log, so this rotation never renames it.
#
# Environment: BLUEGREEN_NGINX (default /usr/local/bin/bluegreen-nginx), BLUEGREEN_REOPEN_TRIES
# (default 5), BLUEGREEN_REOPEN_PAUSE (seconds between tries, default 3).
set -u
dir=${1:?usage: bluegreen-log-reopen LOG_DIR}
nginx=${BLUEGREEN_NGINX:-/usr/local/bin/bluegreen-nginx}
tries=${BLUEGREEN_REOPEN_TRIES:-5}
pause=${BLUEGREEN_REOPEN_PAUSE:-3}
tag=bluegreen-logrotate
failures="$dir/log-rotation-failures"

# say PRIORITY MESSAGE...: stderr, and the journal with a priority an alarm can match (logger is
# util-linux's, on the host).
say() {
  priority=$1
  shift
  echo "$tag: $*" >&2
  if command -v logger >/dev/null 2>&1; then logger -t "$tag" -p "user.$priority" -- "$*" 2>/dev/null || true; fi
}

# The logs nginx has not reopened yet: renamed by this rotation, not created again.
missing() {
  for rotated in "$dir"/*.log.1; do
    [ -e "$rotated" ] || continue
    [ -e "${rotated%.1}" ] || printf '%s ' "${rotated%.1}"
  done
}

attempt=1
while :; do
  if out=$("$nginx" -s reopen 2>&1); then
    # nginx reopens after the signal, asynchronously: give it up to 2 s.
    i=0
    while [ -n "$(missing)" ] && [ "$i" -lt 20 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    if [ -z "$(missing)" ]; then
      [ "$attempt" -eq 1 ] || say info "nginx reopened its logs in $dir (try $attempt of $tries)"
      exit 0
    fi
    why="nginx did not create $(missing)again"
  else
    why="\`$nginx -s reopen\` failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
  fi
  if [ "$attempt" -ge "$tries" ]; then
    msg="nginx did not reopen its logs in $dir after $tries tries ($why). It may still be writing to the rotated *.log.1 files, which the next rotation compresses: run \`sudo bluegreen-nginx -s reopen\` (RUNBOOK: a failed log rotation)"
    say err "$msg"
    # One line, for the alarm (see above); its time first, as the agent reads no timestamp here.
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$tag" "$msg" >>"$failures" ||
      say err "cannot append to $failures: the CloudWatch alarm will not see this failure"
    exit 1
  fi
  say warning "try $attempt of $tries: $why; again in ${pause}s"
  sleep "$pause"
  attempt=$((attempt + 1))
done
