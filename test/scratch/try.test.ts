import { it } from "vitest";
import { startDockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, buildOciImageIndex, buildOciArtifact, buildRootfsTar } from "../support/images.js";
import { copyImage, inspectRaw, readDirCopy } from "../support/skopeo.js";
import { makeTempDir } from "../support/temp-dir.js";
import { runCommand } from "../support/command.js";

it("tries", async () => {
  const tmp = await makeTempDir();
  const reg = await startDockerRegistry();
  try {
    const img = await buildDockerSchema2Image(`${tmp.path}/a`);
    const idx = await buildOciImageIndex(`${tmp.path}/b`);
    const art = await buildOciArtifact(`${tmp.path}/c`, { subject: img.descriptor });
    const r = await buildRootfsTar(`${tmp.path}/rootfs.tar`);
    console.log((await runCommand("tar", ["tvf", r.path])).stdout);
    console.log(await copyImage(img.reference, `docker://${reg.hostPort}/team/app:v1`));
    console.log(await copyImage(idx.reference, `docker://${reg.hostPort}/team/multi:latest`, { all: true }));
    console.log(await copyImage(art.reference, `docker://${reg.hostPort}/team/app:sbom`));
    for (const [n, ref, b] of [["a", "team/app:v1", img], ["b", "team/multi:latest", idx], ["c", "team/app:sbom", art]] as const) {
      await copyImage(`docker://${reg.hostPort}/${ref}`, `dir:${tmp.path}/out-${n}`, { all: true });
      const got = await readDirCopy(`${tmp.path}/out-${n}`);
      console.log(n, [...got.manifests.keys()], [...b.manifests.keys()], got.blobs, b.blobs);
      console.log((await inspectRaw(`docker://${reg.hostPort}/${ref}`)).equals(b.manifests.get(b.descriptor.digest)!));
    }
    console.log((await runCommand("find", [reg.root])).stdout);
  } finally {
    console.log(await reg.log());
    await reg.stop();
    //await tmp.stop();
    console.log(tmp.path);
  }
});
