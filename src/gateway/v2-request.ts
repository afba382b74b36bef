import type { IncomingMessage, ServerResponse } from "node:http";
import type { RouteMatch } from "../registry/api.js";

export type FoundRoute = Extract<RouteMatch, { kind: "found" }>;

/** A `/v2/` request as the gateway carries it: matched against the API table once, on arrival. */
export interface V2Request {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: URLSearchParams;
  route: FoundRoute;
  requestId: string;
}
