import type { Registry } from "../registry/app.js";
import type { OutcomeObserver } from "../registry/outcome.js";
import type { RegistryBackend } from "./backend.js";
import type { ForwardedResolver } from "./forwarded.js";

/** The built-in registry, called in this process: no second HTTP stack between the gateway and storage. */
export function builtInBackend(registry: Registry, forwarded: ForwardedResolver): RegistryBackend {
  return {
    serve({ req, res, method, path, query, route, requestId }, options = {}) {
      // A request refused before its body was all read (a PATCH at ENOSPC) leaves the rest of that body on
      // the client's connection, which then cannot carry another request: a keep-alive client reusing it
      // waited for an answer that never came. Such an answer closes the connection.
      const observe: OutcomeObserver = (outcome) => {
        if (outcome.kind === "refused" && !req.complete) res.setHeader("Connection", "close");
        options.observe?.(outcome);
      };
      const ctx = {
        req,
        res,
        method,
        path,
        query,
        requestId,
        publicBase: forwarded(req).publicBase,
        ...options,
        observe,
      };
      void registry.handle(ctx, route.endpoint.id, route.params);
    },
    repositories: () => registry.repositories(),
  };
}
