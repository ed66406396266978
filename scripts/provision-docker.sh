#!/usr/bin/env bash
# Provision a Docker engine with compose v2 and buildx on a bare Debian (bookworm) machine.
# Idempotent: each step is skipped when its result is already there. Needs root.
# Engine: Debian's docker.io. Compose v2 / buildx: unpacked from Debian trixie's .debs
# (their only dependency is libc), because bookworm does not ship them.
set -euo pipefail

log() { printf '[provision] %s\n' "$*"; }
plugins=/usr/libexec/docker/cli-plugins

if [ "$(id -u)" != 0 ]; then
  echo "provision-docker: must run as root (install Docker Engine with compose v2 yourself otherwise)" >&2
  exit 1
fi

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! docker compose version >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
  log "fetching compose v2 and buildx plugins from Debian trixie"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # the mirror apt already uses (deb822 "URIs:" or one-line "deb URL"), else Debian's default
  mirror=$( { grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
            | grep -oE 'https?://[^ ]+' | grep -v security | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb [trusted=yes] $mirror trixie main" > "$work/trixie.list"
  aptopts=(-o "Dir::Etc::SourceList=$work/trixie.list" -o "Dir::Etc::SourceParts=-"
           -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
  apt-get "${aptopts[@]}" update -qq
  (cd "$work" && apt-get "${aptopts[@]}" download docker-compose docker-buildx >/dev/null)
  mkdir -p "$plugins"
  for deb in "$work"/docker-compose_*.deb "$work"/docker-buildx_*.deb; do
    dpkg-deb -x "$deb" "$work/x"
  done
  install -m 0755 "$(find "$work/x" -type f -path "*cli-plugins/docker-compose" | head -n1)" "$plugins/docker-compose"
  install -m 0755 "$(find "$work/x" -type f -path "*cli-plugins/docker-buildx" | head -n1)" "$plugins/docker-buildx"
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid nohup dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "provision-docker: dockerd did not come up; see /var/log/dockerd.log" >&2; tail -n 20 /var/log/dockerd.log >&2; exit 1; }
fi
log "engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), $(docker buildx version 2>/dev/null | cut -d' ' -f1-2)"
