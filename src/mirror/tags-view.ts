import type { IncomingMessage } from "node:http";
import type { V2Request } from "../gateway/v2-request.js";
import type { Logger } from "../log.js";
import { RegistryError } from "../registry/errors.js";
import { readSmallBody } from "../registry/http.js";
import type { UpstreamClient } from "../upstream/client.js";
import { askUpstream, describeFailure } from "./upstream-answer.js";
import type { MirrorTarget } from "./routes.js";

const maxTagListBytes = 4 * 1024 * 1024;
/** Pages of the upstream's list followed for a group's union, at most (a registry pages by its own `n`). */
const maxTagPages = 100;

/** One page of the upstream's tag list, and its `Link` to the next one. */
interface UpstreamTags {
  tags: string[];
  link?: string;
}

/** A mirrored repository's tags as the upstream lists them now, under the name clients use here. */
export function createTagsView({ logger }: { logger: Logger }) {
  async function readPage(res: IncomingMessage): Promise<UpstreamTags> {
    const tooLarge = () => new RegistryError("UNAVAILABLE", "the tag list is larger than 4 MiB");
    const body = JSON.parse((await readSmallBody(res, maxTagListBytes, tooLarge)).toString("utf8")) as {
      tags?: unknown;
    };
    const tags = Array.isArray(body.tags) ? body.tags.filter((tag): tag is string => typeof tag === "string") : [];
    const link = res.headers.link;
    return { tags, ...(typeof link === "string" ? { link } : {}) };
  }

  function warnNotListed(target: MirrorTarget, failure: unknown): void {
    logger.warn(
      { upstream: target.upstream, repository: target.name, reason: describeFailure(failure) },
      `upstream "${target.upstream}" did not list the tags; listing the cached ones`,
    );
  }

  return {
    /** True when the upstream's list was sent; false when the cached tags should be served instead. */
    async serve(client: UpstreamClient, target: MirrorTarget, request: V2Request): Promise<boolean> {
      const query = request.query.toString();
      let failure: unknown;
      try {
        const res = await askUpstream(client, target, "GET", `tags/list${query ? `?${query}` : ""}`);
        if (res.statusCode === 200) {
          const { tags, link } = await readPage(res);
          const content = Buffer.from(JSON.stringify({ name: target.name, tags }));
          request.res.writeHead(200, {
            "Content-Type": "application/json",
            "Content-Length": content.length,
            "Docker-Distribution-API-Version": "registry/2.0",
            ...(link === undefined
              ? {}
              : { Link: link.replace(`/v2/${target.remoteName}/tags/list`, `/v2/${target.name}/tags/list`) }),
          });
          request.res.end(content);
          return true;
        }
        res.resume();
        failure = res;
      } catch (error) {
        failure = error;
      }
      warnNotListed(target, failure);
      return false;
    },

    /**
     * Every tag the upstream lists for the repository, following its pages; `[]` when it has no such
     * repository, undefined when it could not be asked (the cached tags stand in).
     */
    async all(client: UpstreamClient, target: MirrorTarget): Promise<string[] | undefined> {
      const found: string[] = [];
      let resource = "tags/list";
      try {
        for (let page = 0; page < maxTagPages; page++) {
          const res = await askUpstream(client, target, "GET", resource);
          if (res.statusCode === 404 && page === 0) {
            res.resume();
            return [];
          }
          if (res.statusCode !== 200) {
            res.resume();
            warnNotListed(target, res);
            return undefined;
          }
          const { tags, link } = await readPage(res);
          found.push(...tags);
          const next = link && /<[^>?]*\?([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1];
          if (!next) break;
          resource = `tags/list?${next}`;
        }
      } catch (error) {
        warnNotListed(target, error);
        return undefined;
      }
      return found;
    },
  };
}

export type TagsView = ReturnType<typeof createTagsView>;
