import type { OutcomeObserver } from "../registry/outcome.js";
import type { V2Request } from "./v2-request.js";

export interface ServeOptions {
  /** Told what the request did before its answer reaches the client (audit). */
  observe?: OutcomeObserver;
  /** Only these repositories are listed in the catalog. */
  mayList?: (repository: string) => boolean;
}

/** Where `/v2/` requests that passed the gateway go: the built-in registry, or a V2 registry upstream. */
export interface RegistryBackend {
  serve(request: V2Request, options?: ServeOptions): void;
  /** Every repository it holds, sorted, before any cut to what a caller may see (search). */
  repositories(): Promise<string[]>;
}
