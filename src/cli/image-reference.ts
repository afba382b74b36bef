import { parseDigest, type Digest } from "../registry/digest.js";
import { RegistryError } from "../registry/errors.js";
import { checkRepositoryName, checkTag } from "../registry/names.js";
import { UsageError } from "./errors.js";

export type ImageReference = { repository: string; tag: string } | { repository: string; digest: Digest };

/** `REPO:TAG` or `REPO@DIGEST`, as `portcullis rm` takes it. */
export function parseImageReference(text: string, usage: string): ImageReference {
  try {
    const at = text.indexOf("@");
    if (at > 0) return { repository: checkRepositoryName(text.slice(0, at)), digest: parseDigest(text.slice(at + 1)) };
    const colon = text.lastIndexOf(":");
    if (colon > text.lastIndexOf("/") && colon > 0) {
      return { repository: checkRepositoryName(text.slice(0, colon)), tag: checkTag(text.slice(colon + 1)) };
    }
  } catch (error) {
    if (error instanceof RegistryError) throw new UsageError(`${text}: ${error.message}\nusage: ${usage}`);
    throw error;
  }
  throw new UsageError(`${text}: expected REPO:TAG or REPO@DIGEST\nusage: ${usage}`);
}
