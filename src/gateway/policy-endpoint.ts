import type { IncomingMessage, ServerResponse } from "node:http";
import type { CredentialCheck } from "../auth/authn/credential-check.js";
import { CredentialsRejected } from "../auth/authn/authenticator.js";
import type { Policy } from "../auth/authz/policy.js";
import { splitUrl } from "../http/request-url.js";
import { basicCredentials } from "./basic-auth.js";
import { sendText } from "./responses.js";

export interface PolicyEndpointDeps {
  credentials: Pick<CredentialCheck, "verify" | "lookup">;
  /** The policy the server decides with now (after any reload). */
  policy: Policy;
  /** Members may ask about anyone; everyone else only about themselves. */
  adminGroup: string;
}

/** What `policy check --server` receives: the running server's decision, from the policy it has loaded. */
export interface PolicyAnswer {
  user: string;
  groups: string[];
  repository: string;
  clientIp: string;
  actions: string[];
  ruleIndex?: number;
  reason: string;
}

/**
 * `GET /policy/check?user=U&repository=R[&ip=A]` with Basic credentials: what U may do to R under the
 * policy this server runs with, so an answer never comes from a file the server has not loaded. `-` as
 * U is an anonymous caller.
 */
export function createPolicyEndpoint(deps: PolicyEndpointDeps) {
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    sendText(res, status, "application/json", `${JSON.stringify(body)}\n`, headers);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const basic = basicCredentials(req);
    const challenge = { "WWW-Authenticate": 'Basic realm="portcullis"' };
    if (!basic) return json(res, 401, { error: "sign in with Basic credentials" }, challenge);
    let caller;
    try {
      caller = await deps.credentials.verify(basic.username, basic.password);
    } catch (error) {
      if (!(error instanceof CredentialsRejected)) throw error;
      return json(res, 401, { error: "wrong user name or password" }, challenge);
    }
    const { query } = splitUrl(req.url ?? "/");
    const user = query.get("user");
    const repository = query.get("repository");
    if (!user || !repository) return json(res, 400, { error: "user and repository are required" });
    if (user !== caller.name && !caller.groups.includes(deps.adminGroup))
      return json(res, 403, { error: `only members of ${deps.adminGroup} may ask about other users` });
    const anonymous = user === "-";
    const known = anonymous ? undefined : await deps.credentials.lookup(user);
    const groups = known?.groups ?? [];
    const clientIp = query.get("ip") ?? "127.0.0.1";
    const decision = deps.policy.decide({ account: anonymous ? undefined : user, groups, clientIp }, repository);
    const answer: PolicyAnswer = { user, groups: [...groups], repository, clientIp, ...decision };
    json(res, 200, answer);
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 503, { error: "the user directory did not answer" });
      else res.destroy();
    });
  };
}
