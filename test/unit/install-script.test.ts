import { describe, expect, it } from "vitest";
import { bootstrapCommand, installScript, sha256Hex } from "../../src/gateway/install-script.js";
import { publicLocation } from "../../src/gateway/proxy.js";

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("the CA install script", () => {
  it("is byte-stable for one CA and registry name, so its checksum can be printed ahead", () => {
    expect(installScript(ca, "10.0.0.5:5000")).toBe(installScript(ca, "10.0.0.5:5000"));
    expect(installScript(ca, "10.0.0.5:5000")).not.toBe(installScript(ca, "registry.example:5000"));
    expect(bootstrapCommand(ca, "10.0.0.5:5000")).toContain(sha256Hex(installScript(ca, "10.0.0.5:5000")));
  });

  it("refuses a registry name that could break out of the script", () => {
    expect(() => installScript(ca, "x'; rm -rf /")).toThrow(/not a registry host name/);
  });
});

describe("rewriting upstream Location headers", () => {
  it.each([
    ["/v2/a/blobs/uploads/1", "https://reg.example:5000/v2/a/blobs/uploads/1"],
    ["http://127.0.0.1:5001/v2/a/blobs/uploads/1?_state=x", "https://reg.example:5000/v2/a/blobs/uploads/1?_state=x"],
    ["https://s3.example/bucket/blob?sig=1", "https://s3.example/bucket/blob?sig=1"],
  ])("moves %s to %s", (location, expected) => {
    expect(publicLocation(location, "https://reg.example:5000")).toBe(expected);
  });
});
