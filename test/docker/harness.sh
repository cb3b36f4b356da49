#!/usr/bin/env bash
# Docker Engine harness for the tests under test/docker/ (run by .ci/run before `npm test`, as root,
# on a Debian bookworm machine with apt but no image registry).
#
#   1. engine   docker.io from apt; dockerd started in the background unless `docker info` answers,
#               with dummy AWS keys for the pools' awslogs driver (the tests point it at moto_server)
#   2. compose  Compose v2 (Debian trixie's static plugin, fetched with a temporary apt source list
#               that never touches the machine's own sources) into /usr/local/lib/docker/cli-plugins
#   3. images   a bookworm minbase rootfs with nginx, nodejs, wget and ca-certificates (and a `node`
#               user), built offline with debootstrap, cached as a tarball, imported and tagged as
#               the base images docker-compose.yml and app/Dockerfile name: nothing is ever pulled
#
# Idempotent: a second run finds everything in place (or in the cache) and takes seconds.
# Prints one line per step with its time. Writes $BLUEGREEN_HARNESS_CACHE/status: `ready ...`, or
# `unavailable: <why>` when no engine can start on this machine (the docker tests then skip with
# that line); any other failure exits non-zero.
#
# Environment: BLUEGREEN_HARNESS_CACHE (default /var/cache/bluegreen-harness),
#   BLUEGREEN_HARNESS_MIRROR (default: the machine's Debian mirror from /etc/apt), DOCKERD_LOG.
set -euo pipefail

cache=${BLUEGREEN_HARNESS_CACHE:-/var/cache/bluegreen-harness}
status_file=$cache/status
dockerd_log=${DOCKERD_LOG:-$cache/dockerd.log}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# What goes into the rootfs; part of the cache key, so a change here rebuilds it.
suite=bookworm
packages="nginx nodejs wget ca-certificates"
recipe="v1 $suite minbase $packages node-uid-1000"

# The engine's AWS keys: only ever sent to a test's moto_server (the pools' awslogs-endpoint).
harness_key=bluegreen-harness

started=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
step_start=0
begin() { step_start=$(date +%s%N); }
done_step() { echo "harness: $1 ($(ms_since "$step_start") ms)"; }
die() {
  echo "harness: FAILED: $*" >&2
  exit 1
}
unavailable() {
  mkdir -p "$cache"
  echo "unavailable: $*" >"$status_file"
  echo "harness: no Docker Engine here: $* (the docker tests skip with this line)"
  exit 0
}

[ "$(id -u)" -eq 0 ] || unavailable "the harness needs root (apt-get, dockerd), running as uid $(id -u)"

# The images the project's files name (docker-compose.yml's nginx, app/Dockerfile's FROM), read from
# the files by base-images.sh so a version bump there cannot leave the harness tagging stale names.
# A name pinned by digest (name:tag@sha256:...) is tagged as name:tag: `docker tag` cannot create a
# digest, and no local image can have the registry's; the docker tests then run with NGINX_IMAGE and
# BASE_IMAGE set to the tag (test/docker/compose-set.ts), the host pulls the pinned digest.
images=$(sh "$here/base-images.sh" "$repo") || die "cannot read the base images from the project's files"
nginx_ref=$(echo "$images" | sed -n 's/^nginx //p')
node_ref=$(echo "$images" | sed -n 's/^node //p')
nginx_image=${nginx_ref%@sha256:*}
node_image=${node_ref%@sha256:*}
mkdir -p "$cache"
rm -f "$status_file"

trap 'echo "harness: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

# The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org.
debian_mirror() {
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' |
    grep -oE 'https?://[^[:space:]]+' | head -n1 || true)
  echo "${BLUEGREEN_HARNESS_MIRROR:-${found:-http://deb.debian.org/debian}}"
}

apt_install() {
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- 1. engine -----------------------------------------------------------------------------------
begin
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt_install "${need[@]}" || die "apt-get install ${need[*]} failed"
fi
done_step "packages: docker.io, debootstrap${need[*]:+ (installed ${need[*]})}"

begin
if docker info >/dev/null 2>&1; then
  done_step "dockerd: already running"
else
  # setsid: the engine outlives this script (and the CI step that ran it). Dummy AWS credentials:
  # the pools' awslogs driver runs inside dockerd and signs its calls with the engine's own
  # credentials; the tests point it at their moto_server (awslogs-endpoint), which takes any.
  AWS_ACCESS_KEY_ID=$harness_key AWS_SECRET_ACCESS_KEY=$harness_key setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
  dockerd_pid=$!
  up=no
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      up=yes
      break
    fi
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.25
  done
  if [ "$up" != yes ]; then
    why=$(grep -E 'level=(fatal|error)|failed to start' "$dockerd_log" | tail -n1 | cut -c1-300)
    kill "$dockerd_pid" 2>/dev/null || true
    unavailable "dockerd did not start: ${why:-no error logged, see $dockerd_log}"
  fi
  done_step "dockerd: started (pid $dockerd_pid, log $dockerd_log)"
fi

# An engine started before the harness gave it credentials (an older harness, or by hand): the
# awslogs driver also reads the shared credentials file of dockerd's HOME, at each container start.
# Written only when the engine has no credentials of its own and that file does not exist.
begin
dockerd_pid=$(pgrep -x -o dockerd || true)
if [ -n "$dockerd_pid" ] && ! tr '\0' '\n' <"/proc/$dockerd_pid/environ" | grep -q '^AWS_ACCESS_KEY_ID='; then
  engine_home=$(tr '\0' '\n' <"/proc/$dockerd_pid/environ" | sed -n 's/^HOME=//p')
  engine_home=${engine_home:-/root}
  if [ ! -e "$engine_home/.aws/credentials" ]; then
    mkdir -p "$engine_home/.aws"
    printf '# Written by bluegreen test/docker/harness.sh: dummy keys for the awslogs driver -> moto_server.\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
      "$harness_key" "$harness_key" >"$engine_home/.aws/credentials"
    done_step "engine credentials: dummy keys in $engine_home/.aws/credentials (dockerd has none in its environment)"
  else
    done_step "engine credentials: $engine_home/.aws/credentials"
  fi
else
  done_step "engine credentials: in dockerd's environment"
fi

# --- 2. compose v2 -------------------------------------------------------------------------------
begin
plugin_dir=/usr/local/lib/docker/cli-plugins
if compose_version=$(docker compose version --short 2>/dev/null) && [ "${compose_version%%.*}" != 1 ] && [ -n "$compose_version" ]; then
  done_step "compose: v$compose_version already installed"
else
  mirror=$(debian_mirror)
  work=$(mktemp -d)
  chmod 0755 "$work" # apt downloads as _apt
  # A throwaway apt configuration: its own (empty) sources.list.d, lists and archives. The machine's
  # sources and package state are never read for trixie nor written.
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/sources.list.d" "$work/deb"
  chown _apt "$work/deb" "$work/lists/partial" "$work/archives/partial" 2>/dev/null || true
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
  apt_tmp=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/sources.list.d"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0")
  apt-get "${apt_tmp[@]}" update -qq >/dev/null || die "apt-get update for the temporary trixie source failed ($mirror)"
  (cd "$work/deb" && apt-get "${apt_tmp[@]}" download -qq docker-compose >/dev/null) || die "apt-get download docker-compose (trixie) failed"
  dpkg-deb -x "$work"/deb/docker-compose_*.deb "$work/root"
  install -D -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
  rm -rf "$work"
  compose_version=$(docker compose version --short) || die "docker compose does not run after installing the plugin"
  done_step "compose: v$compose_version installed from trixie's docker-compose package into $plugin_dir"
fi

# --- 3. base images ------------------------------------------------------------------------------
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-12)
tarball=$cache/rootfs-$suite-$key.tar.gz
label=bluegreen.harness.rootfs

begin
if [ -s "$tarball" ]; then
  done_step "rootfs: cached ($tarball, $(du -m "$tarball" | cut -f1) MB)"
else
  mirror=$(debian_mirror)
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  cleanup_root() {
    for m in proc dev/pts; do umount "$root/$m" 2>/dev/null || true; done
    rm -rf "$root"
  }
  trap cleanup_root EXIT
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $cache/debootstrap.log"
  done_step "rootfs: debootstrap $suite minbase"
  begin
  # No service starts inside the chroot, and no docs or caches in the image.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  # shellcheck disable=SC2086 # $packages is a word list on purpose
  chroot "$root" /bin/sh -ec "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
    useradd --uid 1000 --user-group --create-home --shell /bin/sh node
  " >"$cache/chroot.log" 2>&1 || die "installing $packages in the rootfs failed; see $cache/chroot.log"
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"
  # nginx's own default site is never used (the project passes -c), but it must not listen on :80.
  rm -f "$root/etc/nginx/sites-enabled/default"
  tar -C "$root" --numeric-owner -czf "$tarball.tmp" . && mv -f "$tarball.tmp" "$tarball"
  trap - EXIT
  cleanup_root
  done_step "rootfs: $packages installed, cached as $tarball ($(du -m "$tarball" | cut -f1) MB)"
fi

begin
current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$nginx_image" 2>/dev/null || true)
current_node=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$node_image" 2>/dev/null || true)
if [ "$current" = "$key" ] && [ "$current_node" = "$key" ]; then
  done_step "images: $nginx_image and $node_image already imported (rootfs $key)"
else
  id=$(docker import --change "LABEL $label=$key" --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "bluegreen-harness/base:$key") || die "docker import failed"
  docker tag "bluegreen-harness/base:$key" "$nginx_image"
  docker tag "bluegreen-harness/base:$key" "$node_image"
  done_step "images: imported ${id:7:12} as $nginx_image and $node_image"
fi

begin
docker build -q --build-arg "BASE_IMAGE=$node_image" -t bluegreen-app:local "$repo/app" >"$cache/build.log" 2>&1 || die "docker build app/ failed; see $cache/build.log"
done_step "images: bluegreen-app:local built from app/"

engine=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
pinned=
[ "$nginx_ref" = "$nginx_image" ] || pinned="$pinned nginx-digest"
[ "$node_ref" = "$node_image" ] || pinned="$pinned node-digest"
[ -z "$pinned" ] || echo "harness: the files pin digests ($nginx_ref, $node_ref): tagged without them; the docker tests set NGINX_IMAGE and BASE_IMAGE"
echo "ready engine=$engine compose=$compose_version images=$nginx_image,$node_image rootfs=$key" >"$status_file"
echo "harness: ready in $(ms_since "$started") ms (engine $engine, compose $compose_version)"
