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

TRUSTED=''
for dir in $DIRS; do
  case "$dir" in
    */containerd/certs.d/*) files="ca.crt hosts.toml"; client=containerd ;;
    /etc/docker/*) files="ca.crt"; client=docker ;;
    /etc/containers/*) files="ca.crt"; client=podman/skopeo/buildah ;;
    *) files="ca.crt"; client="rootless podman/skopeo/buildah" ;;
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
  if [ "$client" = containerd ] && [ "$ACTION" = install ]; then
    # containerd reads certs.d only when its registry config_path names it; Debian's default config does not.
    conf="$ROOT/etc/containerd/config.toml"
    if [ -f "$conf" ] && grep -Eq '^[[:space:]]*config_path[[:space:]]*=[[:space:]]*"[^"]*certs\\.d' "$conf"; then
      TRUSTED="$TRUSTED, containerd"
    else
      echo "containerd: it reads $ROOT/etc/containerd/certs.d only with config_path = \\"/etc/containerd/certs.d\\" under [plugins.\\"io.containerd.grpc.v1.cri\\".registry] in $conf; add it and restart containerd (ctr --hosts-dir and nerdctl read it already)" >&2
    fi
  else
    TRUSTED="$TRUSTED, $client"
  fi
done

if [ "$SYSTEM" = 1 ]; then
  set -- $(system_anchor)
  if [ "$ACTION" = uninstall ]; then remove "$1"; else write "$1" "$CA_PEM"; fi
  if [ -z "$ROOT" ]; then
    if command -v "$2" >/dev/null 2>&1; then "$2" >/dev/null; echo "ran $2"; TRUSTED="$TRUSTED, the system trust store"
    else echo "$2 not found: add $1 to the trust store by hand" >&2; fi
  else
    TRUSTED="$TRUSTED, the system trust store (once $2 runs there)"
  fi
fi

if [ "$ACTION" = install ]; then
  echo "done: \${TRUSTED#, } now trust $REGISTRY (no daemon restart needed)"
else
  echo "done: removed this registry's CA"
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
