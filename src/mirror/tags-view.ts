import type { V2Request } from "../gateway/v2-request.js";
import type { Logger } from "../log.js";
import { RegistryError } from "../registry/errors.js";
import { readSmallBody } from "../registry/http.js";
import type { UpstreamClient } from "../upstream/client.js";
import { askUpstream, describeFailure } from "./upstream-answer.js";
import type { MirrorTarget } from "./routes.js";

const maxTagListBytes = 4 * 1024 * 1024;

/** A mirrored repository's tags as the upstream lists them now, under the name clients use here. */
export function createTagsView({ logger }: { logger: Logger }) {
  return {
    /** True when the upstream's list was sent; false when the cached tags should be served instead. */
    async serve(client: UpstreamClient, target: MirrorTarget, request: V2Request): Promise<boolean> {
      const query = request.query.toString();
      let failure: unknown;
      try {
        const res = await askUpstream(client, target, "GET", `tags/list${query ? `?${query}` : ""}`);
        if (res.statusCode === 200) {
          const body = JSON.parse(
            (
              await readSmallBody(
                res,
                maxTagListBytes,
                () => new RegistryError("UNAVAILABLE", "the tag list is larger than 4 MiB"),
              )
            ).toString("utf8"),
          ) as { tags?: unknown };
          const content = Buffer.from(JSON.stringify({ name: target.name, tags: body.tags ?? [] }));
          const link = res.headers.link;
          request.res.writeHead(200, {
            "Content-Type": "application/json",
            "Content-Length": content.length,
            "Docker-Distribution-API-Version": "registry/2.0",
            ...(typeof link === "string"
              ? { Link: link.replace(`/v2/${target.remoteName}/tags/list`, `/v2/${target.name}/tags/list`) }
              : {}),
          });
          request.res.end(content);
          return true;
        }
        res.resume();
        failure = res;
      } catch (error) {
        failure = error;
      }
      logger.warn(
        { upstream: target.upstream, repository: target.name, reason: describeFailure(failure) },
        `upstream "${target.upstream}" did not list the tags; listing the cached ones`,
      );
      return false;
    },
  };
}
