import { RegistryError } from "./errors.js";

const component = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const repositoryName = new RegExp(`^${component}(?:/${component})*$`);
const tagName = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const uploadId = /^[a-zA-Z0-9-_.=]{1,128}$/;
const maxNameLength = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length <= maxNameLength && repositoryName.test(name);
}

/** Repository names per the distribution spec; this grammar also rules out `..`, `%` and empty segments. */
export function checkRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError("NAME_INVALID", "invalid repository name", { name });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return tagName.test(tag);
}

export function checkTag(tag: string): string {
  if (!isValidTag(tag)) throw new RegistryError("MANIFEST_INVALID", "invalid tag", { tag });
  return tag;
}

export function checkUploadId(id: string): string {
  if (!uploadId.test(id) || id.startsWith(".")) {
    throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", { id });
  }
  return id;
}
