# shellcheck shell=sh disable=SC2034
# Generated from core/ by `npm run generate` (core/host-files.ts): do not edit.
# The facts userdata/bluegreen-apply.sh shares with the TypeScript side; it sources this file from
# $BLUEGREEN_HOME/userdata/facts.sh (on a host /opt/bluegreen/userdata, from the userdata asset).

# Value patterns of the pool state parameters (core/patterns.ts POOL_STATE_PATTERNS): the
# parameters' AllowedPattern, checked again by the host (grep -E).
ACTIVE_POOL_RE='^(blue|green)$'
MAINTENANCE_RE='^(on|off)$'
CANARY_PERCENT_RE='^(0|[1-9][0-9]?( (cookie:[A-Za-z0-9_]{1,64}|header:[A-Za-z0-9][A-Za-z0-9-]{0,63}))?)$'
RELEASE_RE='^[A-Za-z0-9._-]{1,64}$'
IMAGE_RE='^([a-z0-9][a-z0-9.-]*:[0-9]{1,5}/)?[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$'
# A preview token (core/preview.ts PREVIEW_TOKEN_PATTERN): checked before it reaches switch-pool.sh.
PREVIEW_TOKEN_RE='^[A-Za-z0-9_-]{32}$'
# The image value for "the app/ image, built on the host" (core/patterns.ts DEFAULT_APP_IMAGE).
DEFAULT_APP_IMAGE='bluegreen-app:local'

# Published ports' defaults (core/ports.ts PORTS): nginx, and each pool's direct port.
PORT_NGINX=8080
PORT_BLUE=8081
PORT_GREEN=8082

# A pool's health settings' defaults in seconds (core/pool-health.ts POOL_HEALTH), Docker's check
# interval and retries, and how often the gate probes /healthz itself (GATE_PROBE_MS).
HEALTH_START_PERIOD_DEFAULT=10
HEALTH_TIMEOUT_DEFAULT=3
DRAIN_DEFAULT=10
HEALTH_INTERVAL_SECONDS=5
HEALTH_RETRIES=3
GATE_PROBE_MS=200

# The step line (core/step-line.ts STEP_LINE_PRINTF): step, pool, ok, detail; the release CLI parses it.
STEP_LINE_PRINTF='step=%s pool=%s ok=%s detail=%s\n'

# Release record states in which its pool passed the gate on every host (core/release-record.ts
# ReleaseState), as a JSON array for jq.
GATE_PASSED_STATES='["verifying","deployed","baking","promoted","rolled-back","held","frozen"]'

# The release phase (core/pre-promote.ts): --pre-promote <base64 of the command> (POSIX ERE), the
# longest --pre-promote-timeout (s), the step name, the output line prefix, the lines and bytes of
# output kept, the step details (printf formats) and the exit status of a command timeout killed.
PRE_PROMOTE_B64_RE='^[A-Za-z0-9+/]{4,2732}={0,2}$'
PRE_PROMOTE_MAX_TIMEOUT_SECONDS=3600
PRE_PROMOTE_STEP='pre-promote'
PRE_PROMOTE_OUTPUT_PREFIX='pre-promote-output='
PRE_PROMOTE_OUTPUT_LINES=20
PRE_PROMOTE_OUTPUT_BYTES=2000
PRE_PROMOTE_EXIT_PRINTF='exit %s in %s s'
PRE_PROMOTE_TIMED_OUT_PRINTF='timed out after %s s'
PRE_PROMOTE_TIMEOUT_EXIT=124

# bluegreen_parameter_names <stage>: the SSM parameter names the agent reads (core/names.ts
# parameterNames), each in its own variable.
bluegreen_parameter_names() {
  PARAM_ROOT='/bluegreen/'"$1"
  PARAM_ACTIVE_POOL='/bluegreen/'"$1"'/active-pool'
  PARAM_CANARY_PERCENT='/bluegreen/'"$1"'/canary-percent'
  PARAM_PREVIEW='/bluegreen/'"$1"'/preview'
  PARAM_BLUE_IMAGE='/bluegreen/'"$1"'/pools/blue/image'
  PARAM_BLUE_RELEASE='/bluegreen/'"$1"'/pools/blue/release'
  PARAM_BLUE_ENV='/bluegreen/'"$1"'/pools/blue/env'
  PARAM_BLUE_OPTIONS='/bluegreen/'"$1"'/pools/blue/options'
  PARAM_GREEN_IMAGE='/bluegreen/'"$1"'/pools/green/image'
  PARAM_GREEN_RELEASE='/bluegreen/'"$1"'/pools/green/release'
  PARAM_GREEN_ENV='/bluegreen/'"$1"'/pools/green/env'
  PARAM_GREEN_OPTIONS='/bluegreen/'"$1"'/pools/green/options'
}
