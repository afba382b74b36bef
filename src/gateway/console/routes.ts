import type { IncomingMessage, ServerResponse } from "node:http";
import { AuditUnavailable, type AuditLog } from "../../audit/audit-log.js";
import { auditActions, type AuditRecord } from "../../audit/event.js";
import { readRecords } from "../../audit/reader.js";
import { AuthenticatorUnavailable, CredentialsRejected, type Identity } from "../../auth/authn/authenticator.js";
import type { CredentialCheck } from "../../auth/authn/credential-check.js";
import type { Policy } from "../../auth/authz/policy.js";
import { splitUrl } from "../../http/request-url.js";
import type { GcReport } from "../../registry/gc.js";
import type { ImageSummary, Inventory } from "../../registry/inventory.js";
import type { Logger } from "../../log.js";
import { requestContext } from "../audit-acts.js";
import type { ForwardedResolver } from "../forwarded.js";
import type { RateLimits } from "../rate-limits.js";
import { sendText } from "../responses.js";
import { consoleCss, consoleJs, contentSecurityPolicy } from "./assets.js";
import {
  auditPage,
  confirmDeletePage,
  messagePage,
  repositoriesPage,
  signInPage,
  storagePage,
  tagPage,
  tagsPage,
  type Viewer,
} from "./pages.js";
import { readCookie, sessionCookieName, type Session, type Sessions } from "./sessions.js";

/** What the console reads and changes: present only with the built-in registry. */
export interface ConsoleRegistry {
  inventory: Inventory;
  gcDryRun(): Promise<GcReport>;
  /** Where a repository's content comes from when it is a mirror's or a group's: "cache of upstream hub (…)". */
  originOf?(repository: string): string | undefined;
}

export interface ConsoleDeps {
  sessions: Sessions;
  credentials: Pick<CredentialCheck, "verify" | "lookup">;
  policy: Policy;
  adminGroup: string;
  /** Undefined with `--upstream`: the console then says it needs the built-in registry. */
  registry?: ConsoleRegistry;
  auditDir?: string;
  audit: AuditLog;
  forwarded: ForwardedResolver;
  rateLimits?: RateLimits;
  logger: Logger;
}

interface Signedin {
  session: Session;
  identity: Identity;
  viewer: Viewer;
}

type Page = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => Promise<void>;
type SignedInPage = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams, who: Signedin) => Promise<void>;

interface ConsoleRoute {
  method: "GET" | "POST";
  path: string;
  /** Who may reach it: anyone, a signed-in user, or a member of the admin group. */
  access: "public" | "user" | "admin";
  handle: Page | SignedInPage;
}

const pageSize = 100;
const maxFormBytes = 16 * 1024;
const auditRows = 200;

class ConsoleRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The web console at `/`: sign-in, repositories, tags, delete, storage and the audit log. */
export function createConsole(deps: ConsoleDeps) {
  const { sessions } = deps;
  const inventoryOrNone = deps.registry?.inventory;

  const send = (res: ServerResponse, status: number, page: string, headers: Record<string, string> = {}) =>
    sendText(res, status, "text/html; charset=utf-8", page, {
      "Content-Security-Policy": contentSecurityPolicy,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "same-origin",
      ...headers,
    });
  const redirect = (res: ServerResponse, location: string, headers: Record<string, string> = {}) =>
    sendText(res, 303, "text/plain; charset=utf-8", `see ${location}\n`, { Location: location, ...headers });

  const mayPull = (identity: Identity, req: IncomingMessage, repository: string) =>
    actionsOn(identity, req, repository).includes("pull");
  const mayDelete = (identity: Identity, req: IncomingMessage, repository: string) =>
    actionsOn(identity, req, repository).includes("delete");
  function actionsOn(identity: Identity, req: IncomingMessage, repository: string): string[] {
    const subject = { account: identity.name, groups: identity.groups, clientIp: deps.forwarded(req).clientAddress };
    return deps.policy.decide(subject, repository).actions;
  }

  function needInventory(): Inventory {
    if (!inventoryOrNone)
      throw new ConsoleRefusal(
        501,
        "This server forwards to an upstream registry (--upstream): the console needs the built-in registry to list repositories.",
      );
    return inventoryOrNone;
  }

  async function signedIn(req: IncomingMessage): Promise<Signedin | undefined> {
    const session = sessions.read(readCookie(req.headers.cookie, sessionCookieName));
    if (!session) return undefined;
    // Looked up on every request, so a removed user or a changed group takes effect at once.
    const identity = await deps.credentials.lookup(session.user);
    if (!identity) return undefined;
    const admin = identity.groups.includes(deps.adminGroup);
    return { session, identity, viewer: { user: identity.name, admin, csrf: sessions.csrfToken(session) } };
  }

  /** A change must come from our own pages: same origin (when the browser says) and the session's form token. */
  function sameOrigin(req: IncomingMessage): boolean {
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const ours = [deps.forwarded(req).publicBase, `https://${req.headers.host ?? ""}`];
    return ours.includes(origin);
  }

  const showSignIn: Page = async (_req, res) => send(res, 200, signInPage());

  const signIn: Page = async (req, res) => {
    if (!sameOrigin(req)) throw new ConsoleRefusal(403, "This form must be sent from this server's own page.");
    const form = await readForm(req);
    const username = form.get("username") ?? "";
    const password = form.get("password") ?? "";
    const ip = deps.forwarded(req).clientAddress;
    const account = username.toLowerCase();
    const login = (result: "success" | "failure", source?: string) =>
      deps.audit.record({
        action: "login",
        result,
        actor: { name: username, ...(source ? { source } : {}) },
        request: requestContext(req, deps.forwarded),
        detail: { grant: "console" },
      });
    const blocked = await deps.rateLimits?.checkLogin(account, ip);
    if (blocked) {
      deps.audit.record({
        action: "rate-limit",
        result: "denied",
        actor: { name: username },
        request: requestContext(req, deps.forwarded),
        detail: { limit: blocked.limit, reason: blocked.reason, retryAfterSeconds: blocked.retryAfterSeconds },
      });
      return send(res, 429, signInPage(`Too many attempts: try again in ${blocked.retryAfterSeconds} s.`, username), {
        "Retry-After": String(blocked.retryAfterSeconds),
      });
    }
    let identity: Identity;
    try {
      identity = await deps.credentials.verify(username, password);
    } catch (error) {
      if (error instanceof CredentialsRejected) {
        login("failure");
        await deps.rateLimits?.loginFailed(account, ip);
        return send(res, 401, signInPage("Wrong user name or password.", username));
      }
      if (error instanceof AuthenticatorUnavailable)
        return send(res, 503, signInPage(`The ${error.source} user directory is not reachable; try again shortly.`), {
          "Retry-After": "5",
        });
      throw error;
    }
    login("success", identity.source);
    await deps.rateLimits?.loginSucceeded(account, ip);
    const { cookie } = sessions.issue(identity.name);
    const maxAge = Math.floor(sessions.lifetimeMs / 1000);
    redirect(res, "/", {
      "Set-Cookie": `${sessionCookieName}=${cookie}; Path=/; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`,
    });
  };

  const signOut: SignedInPage = async (_req, res, _query, who) => {
    await sessions.revoke(who.session);
    redirect(res, "/sign-in", {
      "Set-Cookie": `${sessionCookieName}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`,
    });
  };

  const repositories: SignedInPage = async (req, res, query, who) => {
    const search = (query.get("q") ?? "").trim();
    const all = await needInventory().repositories();
    const shown = all.filter(
      (r) => (!search || r.toLowerCase().includes(search.toLowerCase())) && mayPull(who.identity, req, r),
    );
    const listed = shown.map((name) => ({ name, origin: deps.registry?.originOf?.(name) }));
    send(res, 200, repositoriesPage(who.viewer, listed, search));
  };

  function pullableRepository(req: IncomingMessage, query: URLSearchParams, who: Signedin, name = "name"): string {
    const repository = query.get(name) ?? "";
    // Not found rather than forbidden: the console does not confirm that a repository exists.
    if (!repository || !mayPull(who.identity, req, repository))
      throw new ConsoleRefusal(404, `There is no repository "${repository}" you may pull.`);
    return repository;
  }

  async function pageOfTags(repository: string, last?: string) {
    try {
      return await needInventory().tags(repository, { last, n: pageSize });
    } catch (error) {
      if ((error as { code?: string }).code === "NAME_UNKNOWN")
        throw new ConsoleRefusal(404, `There is no repository "${repository}" you may pull.`);
      throw error;
    }
  }

  /** The `last` that starts the page before the one starting after `last` ("" for the first page). */
  async function previousStart(repository: string, last: string | undefined): Promise<string | undefined> {
    if (!last) return undefined;
    const names = await needInventory().tagNames(repository);
    let firstShown = names.findIndex((t) => t > last);
    if (firstShown === -1) firstShown = names.length;
    const start = firstShown - pageSize;
    return start <= 0 ? "" : names[start - 1];
  }

  const repositoryTags: SignedInPage = async (req, res, query, who) => {
    const repository = pullableRepository(req, query, who);
    const last = query.get("last") || undefined;
    const page = await pageOfTags(repository, last);
    const previous = await previousStart(repository, last);
    const notice = query.get("deleted") ? `Deleted ${repository}:${query.get("deleted")}.` : undefined;
    send(res, 200, tagsPage(who.viewer, { repository, images: page.images, next: page.next, previous, notice }));
  };

  async function existingImage(req: IncomingMessage, query: URLSearchParams, who: Signedin): Promise<ImageSummary> {
    const repository = pullableRepository(req, query, who, "repository");
    const tag = query.get("tag") ?? "";
    const image = tag ? await needInventory().image(repository, tag) : undefined;
    if (!image) throw new ConsoleRefusal(404, `There is no tag "${tag}" in ${repository}.`);
    return image;
  }

  const tag: SignedInPage = async (req, res, query, who) => {
    const image = await existingImage(req, query, who);
    const host = deps.forwarded(req).publicBase.replace(/^https?:\/\//, "");
    const pullLine = `docker pull ${host}/${image.repository}:${image.tag}`;
    send(res, 200, tagPage(who.viewer, image, pullLine, mayDelete(who.identity, req, image.repository)));
  };

  const confirmDelete: SignedInPage = async (req, res, query, who) => {
    const image = await existingImage(req, query, who);
    if (!mayDelete(who.identity, req, image.repository))
      throw new ConsoleRefusal(403, `You may not delete from ${image.repository}.`);
    send(res, 200, confirmDeletePage(who.viewer, image));
  };

  const deleteTag: SignedInPage = async (req, res, form, who) => {
    const image = await existingImage(req, form, who);
    const target = { repository: image.repository, tag: image.tag, digest: image.digest };
    const actor = { name: who.identity.name, source: "console" };
    if (!mayDelete(who.identity, req, image.repository)) {
      deps.audit.record({
        action: "delete",
        result: "denied",
        actor,
        target,
        request: requestContext(req, deps.forwarded),
      });
      throw new ConsoleRefusal(403, `You may not delete from ${image.repository}.`);
    }
    const removed = await needInventory().removeTag(image.repository, image.tag);
    deps.audit.record({
      action: "delete",
      result: removed ? "success" : "failure",
      actor,
      target,
      request: requestContext(req, deps.forwarded),
    });
    const query = new URLSearchParams({ name: image.repository, deleted: image.tag });
    redirect(res, `/repository?${query}`);
  };

  const storage: SignedInPage = async (_req, res, query, who) => {
    if (!deps.registry) return send(res, 200, storagePage(who.viewer, { builtIn: false }));
    const usage = await deps.registry.inventory.usage();
    let gc;
    if (query.get("gc") === "dry-run") {
      const report = await deps.registry.gcDryRun();
      gc = {
        manifests: report.manifests.length,
        blobs: report.blobs.length,
        uploads: report.uploads.length,
        bytes: report.bytes,
      };
    }
    send(res, 200, storagePage(who.viewer, { builtIn: true, usage, gc }));
  };

  const auditView: SignedInPage = async (_req, res, query, who) => {
    const filter = {
      user: (query.get("user") ?? "").trim(),
      repository: (query.get("repository") ?? "").trim(),
      action: (query.get("action") ?? "").trim(),
    };
    const matching: AuditRecord[] = [];
    if (deps.auditDir) {
      for (const { record } of readRecords(deps.auditDir)) {
        if (!record) continue;
        if (filter.user && record.actor.name !== filter.user) continue;
        if (filter.repository && record.target?.repository !== filter.repository) continue;
        if (filter.action && record.action !== filter.action) continue;
        matching.push(record);
        if (matching.length > auditRows) matching.shift();
      }
    }
    send(res, 200, auditPage(who.viewer, matching.reverse(), filter, auditActions));
  };

  const asset =
    (type: string, body: string): Page =>
    async (_req, res) =>
      sendText(res, 200, type, body, { "Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff" });

  // prettier-ignore
  const routes: ConsoleRoute[] = [
    { method: "GET",  path: "/",              access: "user",   handle: repositories },
    { method: "GET",  path: "/sign-in",       access: "public", handle: showSignIn },
    { method: "POST", path: "/sign-in",       access: "public", handle: signIn },
    { method: "POST", path: "/sign-out",      access: "user",   handle: signOut },
    { method: "GET",  path: "/repository",    access: "user",   handle: repositoryTags },
    { method: "GET",  path: "/tag",           access: "user",   handle: tag },
    { method: "GET",  path: "/delete",        access: "user",   handle: confirmDelete },
    { method: "POST", path: "/delete",        access: "user",   handle: deleteTag },
    { method: "GET",  path: "/admin/storage", access: "admin",  handle: storage },
    { method: "GET",  path: "/admin/audit",   access: "admin",  handle: auditView },
    { method: "GET",  path: "/console.css",   access: "public", handle: asset("text/css; charset=utf-8", consoleCss) },
    { method: "GET",  path: "/console.js",    access: "public", handle: asset("text/javascript; charset=utf-8", consoleJs) },
  ];

  async function serve(req: IncomingMessage, res: ServerResponse, route: ConsoleRoute): Promise<void> {
    const { query } = splitUrl(req.url ?? "/");
    if (route.access === "public") return (route.handle as Page)(req, res, query);
    const who = await signedIn(req);
    if (!who) {
      if (route.method === "POST") throw new ConsoleRefusal(403, "Sign in first: this session is not valid.");
      return redirect(res, "/sign-in");
    }
    if (route.access === "admin" && !who.viewer.admin)
      throw new ConsoleRefusal(403, `Only members of ${deps.adminGroup} may see this page.`);
    if (route.method === "GET") return (route.handle as SignedInPage)(req, res, query, who);
    if (!sameOrigin(req)) throw new ConsoleRefusal(403, "This form must be sent from this server's own page.");
    const form = await readForm(req);
    if (!sessions.checkCsrf(who.session, form.get("csrf")))
      throw new ConsoleRefusal(
        403,
        "This form's token does not belong to your session: reload the page and try again.",
      );
    return (route.handle as SignedInPage)(req, res, form, who);
  }

  /** The paths the console answers, for the gateway's route table. */
  const paths = [...new Set(routes.map((r) => r.path))];

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const { path } = splitUrl(req.url ?? "/");
    const method = req.method === "HEAD" ? "GET" : req.method;
    const route = routes.find((r) => r.path === path && r.method === method);
    if (!route) {
      const allow = routes.filter((r) => r.path === path).map((r) => r.method);
      sendText(res, 405, "text/plain; charset=utf-8", `${req.method} is not allowed here\n`, {
        Allow: allow.join(", "),
      });
      return;
    }
    serve(req, res, route).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (error instanceof ConsoleRefusal) return send(res, error.status, messagePage("Not done", error.message));
      if (error instanceof AuditUnavailable) {
        deps.logger.error({ reason: error.message }, "console: the audit record could not be written");
        return send(res, 503, messagePage("Try again", "The audit log cannot be written to now; nothing was done."));
      }
      deps.logger.error({ err: error, path }, "console request failed");
      send(res, 500, messagePage("Error", "Something went wrong on the server; it is in the server's log."));
    });
  }

  return { paths, handle };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers["content-type"] ?? "")
    .split(";")[0]
    ?.trim()
    .toLowerCase();
  if (type !== "application/x-www-form-urlencoded") throw new ConsoleRefusal(415, "Forms only, please.");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxFormBytes) throw new ConsoleRefusal(413, "This form is too large.");
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
