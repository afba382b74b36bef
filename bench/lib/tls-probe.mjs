import tls from "node:tls";

function connect(port, ca, session) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, session, ALPNProtocols: ["h2", "http/1.1"] });
    let ticket = null;
    socket.on("session", (s) => (ticket = s));
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      const ephemeral = socket.getEphemeralKeyInfo();
      const facts = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher()?.standardName ?? socket.getCipher()?.name,
        keyType: cert.asn1Curve
          ? `ECDSA ${cert.nistCurve ?? cert.asn1Curve}`
          : cert.bits
            ? `RSA ${cert.bits}`
            : "unknown",
        keyExchange: ephemeral?.name ?? ephemeral?.type ?? null,
        alpn: socket.alpnProtocol || "none",
        resumed: socket.isSessionReused(),
      };
      // A TLS 1.3 ticket comes after the handshake; wait for it a moment.
      setTimeout(() => {
        socket.end();
        resolve({ facts, ticket: ticket ?? socket.getSession() });
      }, 100);
    });
  });
}

/**
 * What an OpenSSL client (Node's, as curl and ab) negotiates with the TLS server on 127.0.0.1:`port`:
 * protocol, cipher, the certificate's key, the key exchange group, ALPN when it offers h2 and http/1.1,
 * and whether a second connection resumes the first one's session.
 */
export async function describeTls(port, ca) {
  const first = await connect(port, ca);
  const second = await connect(port, ca, first.ticket);
  return { ...first.facts, resumption: second.facts.resumed };
}

export function tlsSummary(t) {
  return `${t.protocol} ${t.cipher}, ${t.keyType} certificate, ${t.keyExchange} key exchange, ALPN ${t.alpn}, session resumption ${t.resumption ? "yes" : "no"}`;
}
