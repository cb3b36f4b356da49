#!/bin/sh
# bluegreen-nginx: runs nginx inside the Compose nginx container with the prefix and config it was
# started with, e.g. `bluegreen-nginx -t`, `bluegreen-nginx -s reload`, `bluegreen-nginx -s reopen`.
# The one place that knows how to reach the host's nginx (apply-upstream.sh through bluegreen-apply,
# logrotate, operators). BLUEGREEN_HOME (default /opt/bluegreen) names the Compose set; its
# userdata/.env (written by bluegreen-apply) gives Compose the project name and settings.
set -eu
home=${BLUEGREEN_HOME:-/opt/bluegreen}
cd "$home/userdata"
exec docker compose exec -T nginx \
  nginx -p /var/lib/bluegreen/ -c /etc/bluegreen/conf/nginx.conf "$@"
