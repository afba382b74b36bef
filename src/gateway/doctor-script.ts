import { isRegistryName } from "../http/registry-name.js";

/**
 * The POSIX sh script served at `/ca/doctor.sh`: run on a client, it checks what clients get wrong about
 * the registry `HOST[:PORT]` — the name resolves, the CA is where docker, podman and containerd look,
 * containerd reads certs.d at all (`config_path`), no `insecure-registries` entry is left over, the chain
 * verifies, and (with PORTCULLIS_USERNAME/PASSWORD) signing in works. Each finding says what to do.
 */
export function doctorScript(caPem: string, registry: string): string {
  if (!isRegistryName(registry)) throw new Error(`not a registry host name: ${registry}`);
  return `#!/bin/sh
# Checks this client's set-up for the Portcullis registry ${registry}; changes nothing.
#   sh doctor.sh [--root DIR] [--offline]
# --root DIR checks an image or chroot instead of /; --offline skips the checks that reach the registry.
# With PORTCULLIS_USERNAME and PORTCULLIS_PASSWORD set, it also signs in.
set -u

REGISTRY='${registry}'
HOST=\${REGISTRY%:*}
case "$REGISTRY" in \\[*) HOST=\${REGISTRY%]*}; HOST=\${HOST#[} ;; *:*) ;; *) HOST=$REGISTRY ;; esac
ROOT=''
OFFLINE=0
FAILED=0

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || { echo "--root needs a directory" >&2; exit 2; }; ROOT=$2; shift 2 ;;
    --root=*) ROOT=\${1#--root=}; shift ;;
    --offline) OFFLINE=1; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (use --root DIR or --offline)" >&2; exit 2 ;;
  esac
done

CA_PEM='${caPem.trim()}'
CA_FILE=$(mktemp)
trap 'rm -f "$CA_FILE"' EXIT
printf '%s\\n' "$CA_PEM" > "$CA_FILE"
INSTALL="curl -fsSkg https://$REGISTRY/ca/install.sh -o portcullis-ca.sh, check it as https://$REGISTRY/ca says, then sudo sh portcullis-ca.sh"

ok() { echo "ok    $1"; }
warn() { echo "WARN  $1"; echo "      fix: $2"; }
fail() { echo "FAIL  $1"; echo "      fix: $2"; FAILED=1; }

same_ca() { [ -f "$1" ] && [ "$(cat "$1")" = "$CA_PEM" ]; }

# The CA where each client looks for it.
for entry in docker:/etc/docker/certs.d podman/skopeo:/etc/containers/certs.d containerd:/etc/containerd/certs.d; do
  client=\${entry%%:*}
  file="$ROOT\${entry#*:}/$REGISTRY/ca.crt"
  if same_ca "$file"; then ok "$client trusts the registry's CA ($file)"
  elif [ -f "$file" ]; then fail "$file holds another certificate than this registry's CA" "$INSTALL"
  else fail "no CA for $REGISTRY in $file: $client will say \\"x509: certificate signed by unknown authority\\"" "$INSTALL"
  fi
done
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  file="\${XDG_CONFIG_HOME:-$HOME/.config}/containers/certs.d/$REGISTRY/ca.crt"
  if same_ca "$file"; then ok "rootless podman trusts the CA ($file)"; else warn "rootless podman: no CA in $file" "$INSTALL (as this user)"; fi
fi

# containerd reads certs.d only when its registry config_path names it (Debian's default config does not).
conf="$ROOT/etc/containerd/config.toml"
if [ -f "$conf" ] || command -v containerd >/dev/null 2>&1; then
  if [ -f "$conf" ] && grep -Eq '^[[:space:]]*config_path[[:space:]]*=[[:space:]]*"[^"]*certs\\.d' "$conf"; then
    ok "containerd reads certs.d ($conf sets config_path)"
    if [ ! -f "$ROOT/etc/containerd/certs.d/$REGISTRY/hosts.toml" ]; then
      fail "no $ROOT/etc/containerd/certs.d/$REGISTRY/hosts.toml" "$INSTALL"
    fi
  else
    fail "containerd does not read /etc/containerd/certs.d: $conf sets no config_path, so the CA there is ignored" \\
      "add config_path = \\"/etc/containerd/certs.d\\" under [plugins.\\"io.containerd.grpc.v1.cri\\".registry] in $conf (containerd 2: [plugins.\\"io.containerd.cri.v1.images\\".registry]), then restart containerd"
  fi
fi

# insecure-registries left over from the plain-HTTP days: docker would skip checks, or try HTTP.
daemon="$ROOT/etc/docker/daemon.json"
if [ -f "$daemon" ] && tr -d ' \\t\\n\\r' < "$daemon" | grep -o '"insecure-registries":\\[[^]]*\\]' | grep -qF "\\"$REGISTRY\\""; then
  fail "$daemon still lists $REGISTRY in insecure-registries" "remove it from insecure-registries in $daemon, then restart docker (systemctl restart docker)"
else
  ok "docker has no insecure-registries entry for $REGISTRY"
fi
for conf in "$ROOT/etc/containers/registries.conf" "$ROOT"/etc/containers/registries.conf.d/*.conf; do
  [ -f "$conf" ] || continue
  if awk -v reg="$REGISTRY" '
      /^[[:space:]]*\\[/ { loc = "" }
      /^[[:space:]]*location[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); gsub(/["\\047[:space:]]/, "", v); loc = v }
      /^[[:space:]]*insecure[[:space:]]*=[[:space:]]*true/ && loc == reg { found = 1 }
      /^[[:space:]]*registries[[:space:]]*=/ && index($0, "\\"" reg "\\"") && insecure_table { found = 1 }
      /^[[:space:]]*\\[registries\\.insecure\\]/ { insecure_table = 1; next }
      /^[[:space:]]*\\[/ { insecure_table = 0 }
      END { exit !found }' "$conf"; then
    fail "$conf marks $REGISTRY insecure" "delete that insecure = true (or the [registries.insecure] entry) from $conf"
  fi
done

if [ "$OFFLINE" = 1 ]; then
  echo "(offline: name, TLS chain and sign-in not checked)"
  exit $FAILED
fi

case "$HOST" in
  *[!0-9.]*) if getent hosts "$HOST" >/dev/null 2>&1 || getent ahosts "$HOST" >/dev/null 2>&1; then ok "$HOST resolves"
             else fail "$HOST does not resolve on this machine" "add it to DNS, or to /etc/hosts with the registry's address"; fi ;;
esac

if command -v curl >/dev/null 2>&1; then
  code=$(curl -sS -g -o /dev/null -w '%{http_code}' --cacert "$CA_FILE" "https://$REGISTRY/v2/" 2>/tmp/portcullis-doctor.$$); status=$?
  err=$(cat /tmp/portcullis-doctor.$$ 2>/dev/null); rm -f /tmp/portcullis-doctor.$$
  if [ $status = 0 ] && [ "$code" = 401 ]; then ok "the TLS chain verifies against the CA, and /v2/ asks for a token"
  elif [ $status = 60 ] || [ $status = 51 ]; then fail "TLS does not verify: $err" "the server's certificate is not from this CA, or misses the name $HOST: run portcullis doctor on the server"
  elif [ $status = 0 ]; then fail "https://$REGISTRY/v2/ answered $code, not 401: is this Portcullis?" "check the registry address and port"
  else fail "cannot reach https://$REGISTRY/: $err" "check the address, the port and any firewall between here and the registry"
  fi
  if [ -n "\${PORTCULLIS_USERNAME:-}" ] && [ -n "\${PORTCULLIS_PASSWORD:-}" ]; then
    code=$(curl -sS -g -o /dev/null -w '%{http_code}' --cacert "$CA_FILE" -u "$PORTCULLIS_USERNAME:$PORTCULLIS_PASSWORD" "https://$REGISTRY/token?account=$PORTCULLIS_USERNAME" 2>/dev/null)
    if [ "$code" = 200 ]; then ok "$PORTCULLIS_USERNAME signs in"
    else fail "signing in as $PORTCULLIS_USERNAME answered $code: docker says \\"unauthorized: authentication required\\"" "check the user name and password (portcullis user passwd NAME on the server)"
    fi
  else
    echo "(set PORTCULLIS_USERNAME and PORTCULLIS_PASSWORD to check signing in)"
  fi
else
  warn "curl is not installed: the TLS chain was not checked" "install curl and run this again"
fi
exit $FAILED
`;
}
