import { createHash, X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certPaths } from "../../src/pki/tls-material.js";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { writeCertDir, writeContainersClientConfig } from "../support/containers-client.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { copyOverTls, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const admin = { user: "alice", password: "alice-console-pw" };
const reader = { user: "bob", password: "bob-console-pw" };
const manyTags = 10_000;
const tagName = (i: number) => `t${String(i).padStart(5, "0")}`;

/** SHA-256 of the certificate's SubjectPublicKeyInfo, base64: what --ignore-certificate-errors-spki-list takes. */
function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

describe("the web console in headless Chromium", () => {
  let work: TempDir;
  let gateway: AuthGatewayUnderTest;
  let shots: string;
  let adminContext: BrowserContext;
  let readerContext: BrowserContext;
  let shotCount = 0;

  async function shot(page: Page, name: string): Promise<void> {
    shotCount += 1;
    await page.screenshot({ path: join(shots, `${String(shotCount).padStart(2, "0")}-${name}.png`), fullPage: true });
  }

  async function browser(name: string): Promise<BrowserContext> {
    const serverCert = readFileSync(certPaths(gateway.certsDir).serverCert, "utf8");
    // Trusts exactly this server's key rather than ignoring every certificate error.
    const context = await chromium.launchPersistentContext(join(work.path, `chromium-${name}`), {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--ignore-certificate-errors-spki-list=${spkiHash(serverCert)}`,
      ],
    });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gateway.url });
    return context;
  }

  async function signIn(context: BrowserContext, who: { user: string; password: string }): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${gateway.url}/`);
    expect(new URL(page.url()).pathname).toBe("/sign-in");
    await page.getByLabel("User name").fill(who.user);
    await page.getByLabel("Password").fill(who.password);
    await shot(page, `sign-in-${who.user}`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${gateway.url}/`);
    return page;
  }

  /** A repository's tag links straight into the storage root: one manifest, many tags (as registry:2 keeps them). */
  function linkTags(repository: string, digest: string, count: number): void {
    const hex = digest.slice("sha256:".length);
    const repo = join(gateway.config.data, "docker/registry/v2/repositories", repository, "_manifests");
    mkdirSync(join(repo, "revisions/sha256", hex), { recursive: true });
    writeFileSync(join(repo, "revisions/sha256", hex, "link"), digest);
    for (let i = 0; i < count; i += 1) {
      const tag = join(repo, "tags", tagName(i));
      mkdirSync(join(tag, "current"), { recursive: true });
      mkdirSync(join(tag, "index/sha256", hex), { recursive: true });
      writeFileSync(join(tag, "current/link"), digest);
      writeFileSync(join(tag, "index/sha256", hex, "link"), digest);
    }
  }

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    requireTool("chromium", "chromium");
    work = await makeTempDir("web-console-");
    shots = await mkdtemp(join(tmpdir(), "portcullis-console-screenshots-"));
    console.log(`web console screenshots: ${shots}`);
    gateway = await startAuthGatewayUnderTest({
      users: { [admin.user]: admin.password, [reader.user]: reader.password },
      settings: {
        auth: { groups: { admins: [admin.user] } },
        policies: [
          { group: "admins", repository: "*", actions: ["*"] },
          { account: reader.user, repository: "team/*", actions: ["pull"] },
        ],
      },
    });
    const { policy, env } = await writeContainersClientConfig(work.path);
    const certDir = await writeCertDir(join(work.path, "cert-dir"), gateway.caPem);
    const client: TlsClientOptions = { certDir, creds: `${admin.user}:${admin.password}`, policy, env };
    const image = await buildDockerSchema2Image(join(work.path, "image"));
    const host = new URL(gateway.url).host;
    for (const ref of ["team/app:v1", "team/app:v2", "team/tools:latest", "secret/db:v1"])
      await copyOverTls(image.reference, `docker://${host}/${ref}`, client);
    const digest = readFileSync(
      join(gateway.config.data, "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link"),
      "utf8",
    ).trim();
    linkTags("team/many", digest, manyTags);
    adminContext = await browser("admin");
    readerContext = await browser("reader");
  }, 240_000);

  afterAll(async () => {
    await adminContext?.close();
    await readerContext?.close();
    await gateway?.stop();
    await work?.stop();
  });

  it("signs in, searches, browses to a tag and copies its docker pull line", async () => {
    const page = await signIn(adminContext, admin);
    await shot(page, "repositories");
    await page.getByLabel("Search repositories").fill("app");
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL(/q=app/);
    await shot(page, "search-app");
    const found = await page.locator("tbody a").allTextContents();
    expect(found).toEqual(["team/app"]);
    await page.getByRole("link", { name: "team/app" }).click();
    await page.waitForURL(/\/repository\?/);
    await shot(page, "tags-team-app");
    await expect.poll(() => page.locator("tbody tr").count()).toBe(2);
    expect(await page.locator("tbody tr").first().textContent()).toContain(admin.user);
    await page.getByRole("link", { name: "v1", exact: true }).click();
    await page.waitForURL(/\/tag\?/);
    const pullLine = `docker pull ${new URL(gateway.url).host}/team/app:v1`;
    expect(await page.locator("#pull-line").textContent()).toBe(pullLine);
    await page.getByRole("button", { name: "Copy pull command" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    expect(await page.evaluate<string>("navigator.clipboard.readText()")).toBe(pullLine);
    await shot(page, "tag-team-app-v1-copied");
  });

  it("deletes a tag as an admin after a confirmation, and the tag is gone", async () => {
    const page = await adminContext.newPage();
    await page.goto(`${gateway.url}/tag?repository=team%2Fapp&tag=v2`);
    await page.getByRole("button", { name: "Delete tag…" }).click();
    await page.waitForURL(/\/delete\?/);
    await shot(page, "confirm-delete-team-app-v2");
    await page.getByRole("button", { name: "Yes, delete team/app:v2" }).click();
    await page.waitForURL(/deleted=v2/);
    await shot(page, "tags-after-delete");
    expect(await page.locator("tbody a").allTextContents()).toEqual(["v1"]);
    const gone = await page.goto(`${gateway.url}/tag?repository=team%2Fapp&tag=v2`);
    expect(gone?.status()).toBe(404);
    const record = gateway.auditRecords().find((r) => r.action === "delete" && r.target?.tag === "v2");
    expect(record).toMatchObject({ result: "success", actor: { name: admin.user, source: "console" } });
    await page.close();
  });

  it("shows a non-admin only the repositories they may pull, and no delete button", async () => {
    const page = await signIn(readerContext, reader);
    await shot(page, "repositories-reader");
    expect(await page.locator("tbody a").allTextContents()).toEqual(["team/app", "team/many", "team/tools"]);
    expect(await page.getByRole("link", { name: "Storage" }).count()).toBe(0);
    await page.goto(`${gateway.url}/tag?repository=team%2Fapp&tag=v1`);
    await shot(page, "tag-reader");
    expect(await page.locator("#pull-line").count()).toBe(1);
    expect(await page.getByRole("button", { name: /Delete/ }).count()).toBe(0);
    const hidden = await page.goto(`${gateway.url}/repository?name=secret%2Fdb`);
    expect(hidden?.status()).toBe(404);
    await page.close();
  });

  it("refuses a forged delete without the session's token or with another user's, and deletes nothing", async () => {
    const cookieOf = async (context: BrowserContext) =>
      (await context.cookies(gateway.url)).map((c) => `${c.name}=${c.value}`).join("; ");
    const readerPage = await readerContext.newPage();
    await readerPage.goto(`${gateway.url}/`);
    const readerToken = await readerPage.locator("input[name=csrf]").first().inputValue();
    await readerPage.close();
    const adminPage = await adminContext.newPage();
    await adminPage.goto(`${gateway.url}/`);
    const adminToken = await adminPage.locator("input[name=csrf]").first().inputValue();
    await adminPage.close();
    const adminCookie = await cookieOf(adminContext);
    const forge = (body: string, cookie: string, headers: Record<string, string> = {}) =>
      gateway.request("/delete", {
        method: "POST",
        headers: { Cookie: cookie, "Content-Type": "application/x-www-form-urlencoded", ...headers },
        body,
      });
    const target = "repository=team%2Fapp&tag=v1";
    expect((await forge(target, adminCookie)).status).toBe(403);
    expect((await forge(`${target}&csrf=${encodeURIComponent(readerToken)}`, adminCookie)).status).toBe(403);
    expect(
      (await forge(`${target}&csrf=${encodeURIComponent(readerToken)}`, await cookieOf(readerContext))).status,
    ).toBe(403);
    const crossSite = { Origin: "https://elsewhere.example", "Sec-Fetch-Site": "cross-site" };
    const fromElsewhere = await forge(`${target}&csrf=${encodeURIComponent(adminToken)}`, adminCookie, crossSite);
    expect(fromElsewhere.status).toBe(403);
    const still = await adminContext.newPage();
    const answer = await still.goto(`${gateway.url}/tag?repository=team%2Fapp&tag=v1`);
    expect(answer?.status()).toBe(200);
    await still.close();
  });

  it("pages through 10,000 tags 100 at a time with next and previous links", async () => {
    const page = await adminContext.newPage();
    await page.goto(`${gateway.url}/repository?name=team%2Fmany`);
    await shot(page, "many-tags-first-page");
    expect(await page.locator("tbody tr").count()).toBe(100);
    expect(await page.locator("tbody a").first().textContent()).toBe(tagName(0));
    for (let i = 0; i < 3; i += 1) await page.getByRole("link", { name: "Next page" }).click();
    await page.waitForURL(/last=t00299/);
    await shot(page, "many-tags-fourth-page");
    expect(await page.locator("tbody tr").count()).toBe(100);
    expect(await page.locator("tbody a").first().textContent()).toBe(tagName(300));
    await page.getByRole("link", { name: "Previous page" }).click();
    await page.waitForURL(/last=t00199/);
    expect(await page.locator("tbody a").first().textContent()).toBe(tagName(200));
    await page.goto(`${gateway.url}/repository?name=team%2Fmany&last=${tagName(9_899)}`);
    expect(await page.locator("tbody tr").count()).toBe(100);
    expect(await page.getByRole("link", { name: "Next page" }).count()).toBe(0);
    await shot(page, "many-tags-last-page");
    await page.close();
  });

  it("shows an admin the storage used, what GC would reclaim, and the audit log filtered", async () => {
    const page = await adminContext.newPage();
    await page.goto(`${gateway.url}/admin/storage`);
    await page.getByRole("button", { name: /dry run/ }).click();
    await page.waitForURL(/gc=dry-run/);
    await shot(page, "storage-gc-dry-run");
    expect(await page.locator("caption").textContent()).toContain("dry run");
    await page.goto(`${gateway.url}/admin/audit`);
    await page.getByLabel("Action").selectOption("delete");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/action=delete/);
    await shot(page, "audit-deletes");
    const rows = await page.locator("tbody tr").allTextContents();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((row) => row.includes("delete"))).toBe(true);
    const readerPage = await readerContext.newPage();
    expect((await readerPage.goto(`${gateway.url}/admin/audit`))?.status()).toBe(403);
    await readerPage.close();
    await page.close();
  });

  it("refuses a wrong password on the sign-in form and audits it as a login failure", async () => {
    const answer = await gateway.request("/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `username=${reader.user}&password=wrong`,
    });
    expect(answer.status).toBe(401);
    expect(answer.headers["set-cookie"]).toBeUndefined();
    expect(answer.headers["content-security-policy"]).toContain("default-src 'none'");
    const failures = gateway.auditRecords().filter((r) => r.action === "login" && r.result === "failure");
    expect(failures.at(-1)).toMatchObject({ actor: { name: reader.user }, detail: { grant: "console" } });
  });

  it("signs out, and the old session cookie no longer works on any process", async () => {
    const cookie = (await adminContext.cookies(gateway.url)).map((c) => `${c.name}=${c.value}`).join("; ");
    const page = await adminContext.newPage();
    await page.goto(`${gateway.url}/`);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/sign-in/);
    await shot(page, "signed-out");
    const replay = await gateway.request("/", { headers: { Cookie: cookie } });
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe("/sign-in");
    await page.close();
  });
});
