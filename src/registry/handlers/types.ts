import type { RouteParams } from "../api.js";
import type { RequestContext } from "../http.js";

export type Handler = (ctx: RequestContext, params: Required<RouteParams>) => Promise<void>;
