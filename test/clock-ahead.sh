#!/usr/bin/env bash
# The suites that need no Docker, run with the machine's clock moved ahead (Debian's faketime), so a
# test that compares a dated fixture with the calendar fails here, not weeks after it lands.
# Usage: test/clock-ahead.sh DAYS [jest args...]
# The base-image support check is left out: it is the one test that must read the calendar.
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:?usage: test/clock-ahead.sh DAYS [jest args...]}
shift
command -v faketime >/dev/null 2>&1 || { echo "clock-ahead: faketime is missing: apt-get install faketime (Debian/Ubuntu), brew install libfaketime (macOS)" >&2; exit 2; }
# libfaketime reads FAKETIME again every 10 s by default; nginx clears its workers' environment, so
# they would fall back to the real clock and log times 400 days behind the tests' own clock. Read once.
export FAKETIME_CACHE_DURATION=31536000
echo "clock-ahead: +${days} days ($(faketime -f "+${days}d" date -u +%F)), node $(node --version), no Docker suites, no base-image check"
exec faketime -f "+${days}d" npx jest --testPathIgnorePatterns test/docker test/infra/base-images "$@"
