#!/usr/bin/env bash
# Installs the Debian packages whose programs the integration and interop suites start.
# Idempotent and silent when every program is already there. Runs as root (CI is root on a fresh
# Debian 12 machine). To need one more tool, add one line "BINARY PACKAGE" to TOOLS.
set -euo pipefail

TOOLS=(
  "skopeo skopeo"
  "dockerd docker.io"
  "docker-registry docker-registry"
  "containerd containerd"
  "ip iproute2"
  "podman podman"
  "nginx nginx"
  "openssl openssl"
  "slapd slapd"
  "ldapadd ldap-utils"
  "redis-server redis-server"
  "htpasswd apache2-utils"
  "ab apache2-utils"
  "curl curl"
  "systemd-analyze systemd"
  "gcc gcc"
  "chromium chromium"
)

export DEBIAN_FRONTEND=noninteractive
# needrestart (recommended by docker.io) would otherwise offer to restart services mid-install.
export NEEDRESTART_SUSPEND=1
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for entry in "${TOOLS[@]}"; do
  read -r binary package <<<"$entry"
  if ! command -v "$binary" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-tools: missing packages ${missing[*]}, and installing them needs root" >&2
  exit 1
fi

# Package scripts of docker.io and docker-registry start their system services and fail the install
# when that start fails (no init system, no iptables). The tests start their own instances, so ask
# invoke-rc.d not to start anything while installing, unless the machine already says so.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

# slapd's postinst would otherwise build a system directory (dc=nodomain) in /etc/ldap/slapd.d and
# /var/lib/ldap and try to start it; the tests run their own slapd with their own config directory.
if printf '%s\n' "${missing[@]}" | grep -qx slapd; then
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
fi

echo "install-tools: installing ${missing[*]}" >&2
if ! apt-get update -qq >/tmp/install-tools-update.log 2>&1; then
  cat /tmp/install-tools-update.log >&2
  echo "install-tools: apt-get update failed; needed packages: ${missing[*]}" >&2
  exit 1
fi

for package in "${missing[@]}"; do
  log="/tmp/install-tools-$package.log"
  # With Recommends, as an operator's `apt-get install` gets them (and as the suites were proven with).
  if ! apt-get install -y -qq "$package" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-tools: FAILED to install Debian package '$package' (log above, also in $log)" >&2
    exit 1
  fi
done

for entry in "${TOOLS[@]}"; do
  read -r binary package <<<"$entry"
  if ! command -v "$binary" >/dev/null 2>&1; then
    echo "install-tools: package '$package' is installed but '$binary' is still not on PATH" >&2
    exit 1
  fi
done
