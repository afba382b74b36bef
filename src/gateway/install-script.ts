import { createHash } from "node:crypto";
import { isRegistryName } from "../http/registry-name.js";

/**
 * The POSIX sh script served at `/ca/install.sh`: it holds the CA and puts it where each client looks for
 * the registry `HOST[:PORT]`. Its bytes depend only on the CA and that name, so the SHA-256 the server
 * prints on its console checks the download.
 */
export function installScript(caPem: string, registry: string): string {
  if (!isRegistryName(registry)) throw new Error(`not a registry host name: ${registry}`);
  const pem = caPem.trim();
  return `#!/bin/sh
# Trust the Portcullis registry ${registry}: installs its CA for docker, podman/skopeo/buildah,
# containerd and, with --system, the operating system's trust store. Safe to run again.
#   sh install.sh [--system] [--uninstall] [--root DIR]
set -eu

REGISTRY='${registry}'
ROOT=''
SYSTEM=0
ACTION=install

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || { echo "--root needs a directory" >&2; exit 2; }; ROOT=$2; shift 2 ;;
    --root=*) ROOT=\${1#--root=}; shift ;;
    --system) SYSTEM=1; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (use --system, --uninstall or --root DIR)" >&2; exit 2 ;;
  esac
done

CA_PEM='${pem}'

if [ -n "$ROOT" ] || [ "$(id -u)" = 0 ]; then
  DIRS="/etc/docker/certs.d/$REGISTRY /etc/containers/certs.d/$REGISTRY /etc/containerd/certs.d/$REGISTRY"
else
  # Without root only the per-user podman/skopeo/buildah directory can be written; docker needs root.
  DIRS="\${XDG_CONFIG_HOME:-$HOME/.config}/containers/certs.d/$REGISTRY"
  echo "not root: installing for rootless podman/skopeo/buildah only (run as root for docker and containerd)" >&2
fi

write() {
  mkdir -p "$(dirname "$1")"
  printf '%s\\n' "$2" > "$1.portcullis-tmp"
  chmod 644 "$1.portcullis-tmp"
  mv "$1.portcullis-tmp" "$1"
  echo "wrote $1"
}

hosts_toml() {
  # The top-level ca covers the server entry too, which containerd falls back to when the host entry fails.
  printf 'server = "https://%s"\\nca = "ca.crt"\\n\\n[host."https://%s"]\\n  capabilities = ["pull", "resolve", "push"]\\n  ca = "ca.crt"\\n' "$REGISTRY" "$REGISTRY"
}

remove() {
  if [ -e "$1" ]; then rm -f "$1"; echo "removed $1"; fi
  rmdir "$(dirname "$1")" 2>/dev/null || true
}

system_anchor() {
  name="portcullis-$(printf '%s' "$REGISTRY" | tr -c 'A-Za-z0-9.-' '_')"
  if [ -d "$ROOT/etc/pki/ca-trust/source/anchors" ]; then
    echo "$ROOT/etc/pki/ca-trust/source/anchors/$name.crt update-ca-trust"
  else
    echo "$ROOT/usr/local/share/ca-certificates/$name.crt update-ca-certificates"
  fi
}

for dir in $DIRS; do
  case "$dir" in
    */containerd/certs.d/*) files="ca.crt hosts.toml" ;;
    *) files="ca.crt" ;;
  esac
  for file in $files; do
    path="$ROOT$dir/$file"
    if [ "$ACTION" = uninstall ]; then
      remove "$path"
    elif [ "$file" = hosts.toml ]; then
      write "$path" "$(hosts_toml)"
    else
      write "$path" "$CA_PEM"
    fi
  done
done

if [ "$SYSTEM" = 1 ]; then
  set -- $(system_anchor)
  if [ "$ACTION" = uninstall ]; then remove "$1"; else write "$1" "$CA_PEM"; fi
  if [ -z "$ROOT" ]; then
    if command -v "$2" >/dev/null 2>&1; then "$2" >/dev/null; echo "ran $2"; else echo "$2 not found: add $1 to the trust store by hand" >&2; fi
  fi
fi

if [ "$ACTION" = install ]; then
  echo "done: docker, podman, skopeo and containerd now trust $REGISTRY (no daemon restart needed)"
fi
`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** What an operator pastes on a client that does not trust the CA yet; the checksum makes `-k` safe. */
export function bootstrapCommand(caPem: string, registry: string): string {
  const digest = sha256Hex(installScript(caPem, registry));
  return (
    // -g: an IPv6 address in brackets is a host, not a curl URL glob.
    `curl -fsSkg https://${registry}/ca/install.sh -o portcullis-ca.sh && ` +
    `echo '${digest}  portcullis-ca.sh' | sha256sum -c - && sudo sh portcullis-ca.sh`
  );
}
