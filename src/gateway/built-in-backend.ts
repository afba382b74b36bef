import type { Registry } from "../registry/app.js";
import type { RegistryBackend } from "./backend.js";
import type { ForwardedResolver } from "./forwarded.js";

/** The built-in registry, called in this process: no second HTTP stack between the gateway and storage. */
export function builtInBackend(registry: Registry, forwarded: ForwardedResolver): RegistryBackend {
  return {
    serve({ req, res, method, path, query, route, requestId }, options = {}) {
      const ctx = { req, res, method, path, query, requestId, publicBase: forwarded(req).publicBase, ...options };
      void registry.handle(ctx, route.endpoint.id, route.params);
    },
  };
}
