import { linkSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAuditLog } from "../../src/audit/audit-log.js";
import { headName } from "../../src/audit/chain-file.js";
import type { AuditEvent } from "../../src/audit/event.js";
import { verifyChain } from "../../src/audit/reader.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

const event: AuditEvent = { action: "token", result: "success", actor: { name: "alice" } };

describe("the audit chain after a crash", () => {
  let dir: TempDir;
  const audit = () => join(dir.path, "audit");
  beforeEach(async () => {
    dir = await makeTempDir("portcullis-rel-audit-");
  });
  afterEach(async () => dir?.stop());

  function write(count: number): void {
    const log = createAuditLog({ dataDir: dir.path });
    for (let i = 0; i < count; i++) log.record(event);
    log.close();
  }

  it("verifies when the writer died between a line and the head (the head one record behind)", () => {
    write(3);
    const head = readFileSync(join(audit(), headName), "utf8");
    write(1);
    writeFileSync(join(audit(), headName), head);
    expect(verifyChain(audit())).toEqual({ ok: true, records: 4 });
    write(1);
    expect(verifyChain(audit())).toEqual({ ok: true, records: 5 });
  });

  it("still reports a removed last record, and a head rewritten to name a record that never was", () => {
    write(3);
    const head = readFileSync(join(audit(), headName), "utf8");
    write(2);
    writeFileSync(join(audit(), headName), head);
    expect(verifyChain(audit())).toMatchObject({ ok: false });
  });

  it("verifies when the writer died in a rotation, between the link and the unlink, and goes on from there", () => {
    write(3);
    linkSync(join(audit(), "audit.log"), join(audit(), "audit-000000000003.log"));
    expect(verifyChain(audit())).toEqual({ ok: true, records: 3 });
    write(2);
    expect(verifyChain(audit())).toEqual({ ok: true, records: 5 });
  });
});
