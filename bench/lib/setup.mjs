// What every side shares: one work dir, the bench user in one htpasswd file, and one certificate and key,
// the ones Portcullis generates on its first start (copied out for nginx and docker-registry, so every TLS
// server does the same TLS work). Clients trust Portcullis's CA.

import bcrypt from "bcryptjs";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { makeTempDir } from "./cleanup.mjs";
import { portcullis } from "./sides.mjs";

// Apache's `htpasswd -B -C 5` writes $2y$ (the same algorithm as bcryptjs's $2b$); docker-registry reads it too.
function htpasswdLine(user) {
  return `${user.name}:${bcrypt.hashSync(user.password, 5).replace(/^\$2[ab]\$/, "$2y$")}\n`;
}

/** Resolves to `{ setup, firstStartMs }`: the shared set-up, and how long Portcullis's first start took. */
export async function prepareSetup({ dist, cpuProf = null }) {
  const work = await makeTempDir("bench-");
  // nginx's workers (not root) serve the images under it for the ceiling.
  await fsp.chmod(work, 0o755);
  const user = { name: "bench", password: randomBytes(12).toString("base64url") };
  const htpasswd = path.join(work, "htpasswd");
  await fsp.writeFile(htpasswd, htpasswdLine(user));
  const certsDir = path.join(work, "portcullis-certs");
  await fsp.mkdir(certsDir);
  const caFile = path.join(certsDir, "ca.crt");
  // Run as the package's bin is named: `node …/portcullis serve`, which is also what process listings show.
  const cli = path.join(work, "bin", "portcullis");
  await fsp.mkdir(path.dirname(cli));
  await fsp.symlink(path.resolve(dist), cli);
  let agent = null;
  const setup = {
    dist,
    cpuProf,
    cli,
    work,
    user,
    htpasswd,
    certsDir,
    tls: null,
    /** An agent trusting Portcullis's CA and nothing else, or null until Portcullis has made it. */
    agent() {
      if (agent === null && fs.existsSync(caFile)) agent = new https.Agent({ ca: fs.readFileSync(caFile) });
      return agent;
    },
  };

  const first = await portcullis.start(setup);
  const firstStartMs = first.coldStartMs;
  await first.stop();
  const tlsDir = path.join(work, "tls");
  const caDir = path.join(work, "ca");
  await fsp.mkdir(tlsDir);
  await fsp.mkdir(caDir);
  for (const file of ["server.crt", "server.key", "ca.crt"]) {
    if (!fs.existsSync(path.join(certsDir, file)))
      throw new Error(`portcullis serve did not write ${file} in ${certsDir}`);
    await fsp.copyFile(path.join(certsDir, file), path.join(tlsDir, file));
  }
  // skopeo's --cert-dir takes every *.crt in it as a CA.
  await fsp.copyFile(caFile, path.join(caDir, "ca.crt"));
  setup.tls = {
    cert: path.join(tlsDir, "server.crt"),
    key: path.join(tlsDir, "server.key"),
    caFile: path.join(tlsDir, "ca.crt"),
    caDir,
    caPem: await fsp.readFile(caFile),
  };
  return { setup, firstStartMs };
}
