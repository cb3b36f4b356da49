#!/bin/sh
# bluegreen-nginx: runs nginx inside the Compose nginx container with the prefix and config it was
# started with, e.g. `bluegreen-nginx -t`, `bluegreen-nginx -s reload`, `bluegreen-nginx -s reopen`.
# The one place that knows how to reach the host's nginx (switch-pool.sh, logrotate, operators).
set -eu
exec docker compose -f /opt/bluegreen/userdata/docker-compose.yml exec -T nginx \
  nginx -p /var/lib/bluegreen/ -c /etc/bluegreen/conf/nginx.conf "$@"
