import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/loader.js";
import { referenceMarkdown, referenceMarkers, referenceRows } from "../../src/config/reference.js";

const root = resolve(import.meta.dirname, "../..");
const example = resolve(root, "examples/portcullis.yaml");

/** A markdown table without the padding prettier puts around its cells. */
function unpadded(table: string): string {
  return table
    .trim()
    .replace(/ *\| */g, "|")
    .replace(/\|-+(?=\|)/g, "|---");
}

describe("the config's documentation", () => {
  it("holds the reference generated from the schema, so it cannot drift", async () => {
    const readme = await readFile(resolve(root, "README.md"), "utf8");
    const [start, end] = referenceMarkers;
    const between = readme.slice(readme.indexOf(start) + start.length + 1, readme.indexOf(end));
    // To update it: node dist/cli/main.js config schema --markdown, pasted between the markers (prettier
    // then pads the table's columns, which is all that may differ).
    expect(unpadded(between)).toBe(unpadded(referenceMarkdown()));
  });

  it("describes every key", () => {
    const undocumented = referenceRows().filter((row) => !row.description);
    expect(undocumented.map((row) => row.key)).toEqual([]);
  });

  it("shows the example config as it is, and the example loads", async () => {
    const text = await readFile(example, "utf8");
    const readme = await readFile(resolve(root, "README.md"), "utf8");
    expect(readme).toContain("```yaml\n" + text);
    const config = await loadConfig({ file: example, env: { LDAP_BIND_PASSWORD: "example" } });
    expect(config.policies).toHaveLength(5);
  });
});
