import { X509Certificate } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { splitUrl } from "../http/request-url.js";
import { isRegistryName } from "../http/registry-name.js";
import { doctorScript } from "./doctor-script.js";
import { bootstrapCommand, installScript } from "./install-script.js";
import { sendText } from "./responses.js";

export interface CaSource {
  /** The CA clients must trust, read fresh on every request so a renewed CA is served at once. */
  current(): { caCertPem?: string; caFingerprint?: string };
}

/**
 * `/ca.crt`, `/ca.der`, `/ca/install.sh`, `/ca/doctor.sh` and the `/ca` page. The registry name in the script and the
 * instructions is the `host` query parameter, or the Host the client addressed us by.
 */
export function createCaPages(source: CaSource) {
  /** The registry name to write instructions for; undefined (answered 400) when it is not a host name. */
  const registryName = (req: IncomingMessage): string | undefined => {
    const name = splitUrl(req.url ?? "/").query.get("host") ?? req.headers.host ?? "localhost";
    return isRegistryName(name) ? name : undefined;
  };

  const badName = (res: ServerResponse) =>
    sendText(
      res,
      400,
      "text/plain; charset=utf-8",
      "the host parameter (or Host header) is not a registry name: HOST[:PORT]\n",
    );

  function withCa(res: ServerResponse, serve: (pem: string, fingerprint: string) => void): void {
    const { caCertPem, caFingerprint } = source.current();
    if (!caCertPem || !caFingerprint) {
      sendText(
        res,
        404,
        "text/plain; charset=utf-8",
        "this server's certificate was not issued by a CA it knows (tls.server without a chain)\n",
      );
      return;
    }
    serve(caCertPem, caFingerprint);
  }

  return {
    pem(_req: IncomingMessage, res: ServerResponse) {
      withCa(res, (pem) =>
        sendText(res, 200, "application/x-pem-file", pem, { "Content-Disposition": 'attachment; filename="ca.crt"' }),
      );
    },

    der(_req: IncomingMessage, res: ServerResponse) {
      withCa(res, (pem) =>
        sendText(res, 200, "application/pkix-cert", new X509Certificate(pem).raw, {
          "Content-Disposition": 'attachment; filename="ca.der"',
        }),
      );
    },

    script(req: IncomingMessage, res: ServerResponse) {
      withCa(res, (pem) => {
        const registry = registryName(req);
        if (!registry) return badName(res);
        sendText(res, 200, "text/x-shellscript; charset=utf-8", installScript(pem, registry));
      });
    },

    doctor(req: IncomingMessage, res: ServerResponse) {
      withCa(res, (pem) => {
        const registry = registryName(req);
        if (!registry) return badName(res);
        sendText(res, 200, "text/x-shellscript; charset=utf-8", doctorScript(pem, registry));
      });
    },

    page(req: IncomingMessage, res: ServerResponse) {
      withCa(res, (pem, fingerprint) => {
        const registry = registryName(req);
        if (!registry) return badName(res);
        sendText(res, 200, "text/html; charset=utf-8", caPageHtml(pem, fingerprint, registry));
      });
    },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function caPageHtml(pem: string, fingerprint: string, registry: string): string {
  const r = escapeHtml(registry);
  const block = (text: string) => `<pre><code>${escapeHtml(text)}</code></pre>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Trust the registry ${r}</title>
<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
pre{background:#f4f4f4;padding:.75rem;overflow-x:auto}code{font-size:.9rem}h2{margin-top:2rem}</style></head>
<body>
<h1>Trust the registry ${r}</h1>
<p>This registry's certificate is issued by its own CA. Install the CA once per client machine; no client needs
<code>insecure-registries</code>, and no daemon needs a restart.</p>
<p>CA SHA-256 fingerprint — compare it with the one the server printed on its console:</p>
${block(fingerprint)}
<p>Downloads: <a href="/ca.crt">ca.crt</a> (PEM) · <a href="/ca.der">ca.der</a> (DER) ·
<a href="/ca/install.sh?host=${encodeURIComponent(registry)}">install.sh</a></p>

<h2>Any Linux client, one command</h2>
<p>Checks the script against its SHA-256 before running it, so <code>-k</code> on the first download is safe:</p>
${block(bootstrapCommand(pem, registry))}
<p>It writes the files below for docker, podman/skopeo/buildah and containerd; add <code>--system</code> to
also trust the CA system-wide, <code>--uninstall</code> to remove it all again, <code>--root DIR</code> to install into an image or chroot.</p>

<h2>Something does not work?</h2>
<p>This checks the client: the name, the CA where each client looks, containerd's <code>config_path</code>,
<code>insecure-registries</code> left over, the TLS chain, and signing in (with
<code>PORTCULLIS_USERNAME</code>/<code>PORTCULLIS_PASSWORD</code> set). It changes nothing.</p>
${block(`curl -fsSg --cacert ca.crt https://${registry}/ca/doctor.sh | sh`)}

<h2>Docker</h2>
${block(`sudo mkdir -p /etc/docker/certs.d/${registry}\nsudo cp ca.crt /etc/docker/certs.d/${registry}/ca.crt`)}

<h2>Podman, Skopeo, Buildah</h2>
<p>As root:</p>
${block(`sudo mkdir -p /etc/containers/certs.d/${registry}\nsudo cp ca.crt /etc/containers/certs.d/${registry}/ca.crt`)}
<p>Rootless:</p>
${block(`mkdir -p ~/.config/containers/certs.d/${registry}\ncp ca.crt ~/.config/containers/certs.d/${registry}/ca.crt`)}

<h2>containerd and Kubernetes nodes</h2>
<p>With <code>config_path = "/etc/containerd/certs.d"</code> in containerd's registry configuration:</p>
${block(`sudo mkdir -p /etc/containerd/certs.d/${registry}\nsudo cp ca.crt /etc/containerd/certs.d/${registry}/ca.crt\nsudo tee /etc/containerd/certs.d/${registry}/hosts.toml <<'EOF'\nserver = "https://${registry}"\nca = "ca.crt"\n\n[host."https://${registry}"]\n  capabilities = ["pull", "resolve", "push"]\n  ca = "ca.crt"\nEOF`)}

<h2>System trust store</h2>
<p>Debian, Ubuntu:</p>
${block("sudo cp ca.crt /usr/local/share/ca-certificates/portcullis.crt\nsudo update-ca-certificates")}
<p>RHEL, CentOS, Fedora:</p>
${block("sudo cp ca.crt /etc/pki/ca-trust/source/anchors/portcullis.crt\nsudo update-ca-trust")}
<p>Alpine:</p>
${block("apk add ca-certificates\ncp ca.crt /usr/local/share/ca-certificates/portcullis.crt\nupdate-ca-certificates")}
<p>macOS (Docker Desktop uses the keychain):</p>
${block("sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.crt")}
<p>Windows (PowerShell as Administrator; restart Docker Desktop afterwards):</p>
${block("Import-Certificate -FilePath ca.crt -CertStoreLocation Cert:\\LocalMachine\\Root")}

<h2>The CA certificate</h2>
${block(pem.trim())}
</body></html>
`;
}
