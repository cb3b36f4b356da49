#!/bin/sh
# base-images.sh [REPO]: prints the base images the project's files name, one `<what> <image>` line
# each, read from the files themselves (their one source), never repeated here:
#   nginx <image>   docker-compose.yml's nginx service default: image: ${NGINX_IMAGE:-<image>}
#   node <image>    app/Dockerfile's ARG BASE_IMAGE=<image>
#   python <image>  examples/python-app/Dockerfile's ARG BASE_IMAGE=<image> (when the example is there)
# Either may be pinned by digest (name:tag@sha256:<64 hex>). Used by harness.sh (which tags its
# offline image under these names) and by test/infra/base-images.test.ts (supported lines).
# Exits 1 naming the file when a name is missing.
set -eu
repo=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck disable=SC2016 # a literal ${...} in the pattern
nginx=$(sed -n 's/^[[:space:]]*image:[[:space:]]*\${NGINX_IMAGE:-\([^}]*\)}[[:space:]]*$/\1/p' "$repo/userdata/docker-compose.yml" | head -n1)
node=$(sed -n 's/^ARG BASE_IMAGE=\([^[:space:]]*\)[[:space:]]*$/\1/p' "$repo/app/Dockerfile" | head -n1)
[ -n "$nginx" ] || { echo "base-images: no nginx image in userdata/docker-compose.yml (image: \${NGINX_IMAGE:-...})" >&2; exit 1; }
[ -n "$node" ] || { echo "base-images: no base image in app/Dockerfile (ARG BASE_IMAGE=...)" >&2; exit 1; }
echo "nginx $nginx"
echo "node $node"
if [ -f "$repo/examples/python-app/Dockerfile" ]; then
  python=$(sed -n 's/^ARG BASE_IMAGE=\([^[:space:]]*\)[[:space:]]*$/\1/p' "$repo/examples/python-app/Dockerfile" | head -n1)
  [ -n "$python" ] || { echo "base-images: no base image in examples/python-app/Dockerfile (ARG BASE_IMAGE=...)" >&2; exit 1; }
  echo "python $python"
fi
