import type { AuditRecord } from "../../audit/event.js";
import type { ImageSummary } from "../../registry/inventory.js";
import { formatBytes, html, type SafeHtml } from "./html.js";
import { dataTable, fieldTable, type Column } from "./tables.js";

export interface Viewer {
  user: string;
  admin: boolean;
  csrf: string;
}

export function layout(title: string, body: SafeHtml, viewer?: Viewer): string {
  const nav = viewer
    ? html`<nav aria-label="Console">
          <a href="/">Repositories</a>
          ${viewer.admin ? html`<a href="/admin/storage">Storage</a> <a href="/admin/audit">Audit log</a>` : ""}
          <a href="/ca">CA certificate</a>
        </nav>
        <span>Signed in as <strong>${viewer.user}</strong></span>
        <form method="post" action="/sign-out">
          <input type="hidden" name="csrf" value="${viewer.csrf}" />
          <button type="submit">Sign out</button>
        </form>`
    : html`<nav aria-label="Console"><a href="/ca">CA certificate</a></nav>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Portcullis</title>
        <link rel="stylesheet" href="/console.css" />
      </head>
      <body>
        <header><strong>Portcullis</strong> ${nav}</header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
        <script src="/console.js"></script>
      </body>
    </html> `.safe;
}

export function signInPage(message?: string, user = ""): string {
  return layout(
    "Sign in",
    html`${message ? html`<p class="error" role="alert">${message}</p>` : ""}
      <form method="post" action="/sign-in">
        <label for="username">User name</label>
        <input type="text" id="username" name="username" value="${user}" autocomplete="username" required />
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required />
        <p><button type="submit">Sign in</button></p>
      </form>`,
  );
}

export interface ListedRepository {
  name: string;
  /** Where its content comes from, for a mirror's or a group's repository. */
  origin?: string;
}

export function repositoriesPage(viewer: Viewer, repositories: ListedRepository[], query: string): string {
  const columns: Column<ListedRepository>[] = [
    { heading: "Repository", cell: (r) => html`<a href="${repositoryHref(r.name)}">${r.name}</a>` },
  ];
  if (repositories.some((r) => r.origin !== undefined))
    columns.push({ heading: "From", cell: (r) => r.origin ?? "pushed here" });
  return layout(
    "Repositories",
    html`<form method="get" action="/" role="search">
        <label for="q">Search repositories</label>
        <input type="search" id="q" name="q" value="${query}" />
        <button type="submit">Search</button>
      </form>
      ${
        repositories.length === 0
          ? html`<p>No repository ${query ? "matches" : "you may pull is stored"}.</p>`
          : dataTable(`${repositories.length} repositories you may pull`, columns, repositories)
      }`,
    viewer,
  );
}

export interface TagsView {
  repository: string;
  images: ImageSummary[];
  next?: string;
  /** The `last` of the page before, or "" for the first page; undefined on the first page. */
  previous?: string;
  notice?: string;
}

export function tagsPage(viewer: Viewer, view: TagsView): string {
  const { repository } = view;
  const pager = html`<nav class="pager" aria-label="Pages">
    ${view.previous !== undefined ? html`<a href="${repositoryHref(repository, view.previous)}" rel="prev">Previous page</a>` : ""}
    ${view.next ? html`<a href="${repositoryHref(repository, view.next)}" rel="next">Next page</a>` : ""}
  </nav>`;
  return layout(
    repository,
    html`${view.notice ? html`<p class="notice" role="status">${view.notice}</p>` : ""}
    ${dataTable(
      `Tags of ${repository}`,
      [
        { heading: "Tag", cell: (image) => html`<a href="${tagHref(repository, image.tag)}">${image.tag}</a>` },
        { heading: "Digest", cell: (image) => image.digest, cellClass: "digest" },
        { heading: "Size", cell: (image) => formatBytes(image.size) },
        { heading: "Platforms", cell: (image) => image.platforms.join(", ") },
        { heading: "Pushed", cell: (image) => image.pushedAt ?? "unknown" },
        { heading: "Pushed by", cell: (image) => image.pushedBy ?? "unknown" },
      ],
      view.images,
    )}
    ${pager}`,
    viewer,
  );
}

export function tagPage(viewer: Viewer, image: ImageSummary, pullLine: string, mayDelete: boolean): string {
  return layout(
    `${image.repository}:${image.tag}`,
    html`<p><a href="${repositoryHref(image.repository)}">All tags of ${image.repository}</a></p>
      <h2>Pull</h2>
      <pre class="pull"><code id="pull-line">${pullLine}</code></pre>
      <button type="button" data-copy="pull-line" hidden>Copy pull command</button>
      <h2>Details</h2>
      ${fieldTable([
        ["Digest", image.digest, "digest"],
        ["Media type", image.mediaType],
        ["Size", `${formatBytes(image.size)} (${image.size} bytes)`],
        ["Platforms", image.platforms.join(", ")],
        ["Pushed", image.pushedAt ?? "unknown"],
        ["Pushed by", image.pushedBy ?? "unknown"],
      ])}
      ${
        mayDelete
          ? html`<h2>Delete</h2>
              <form method="get" action="/delete">
                <input type="hidden" name="repository" value="${image.repository}" />
                <input type="hidden" name="tag" value="${image.tag}" />
                <button type="submit" class="danger">Delete tag…</button>
              </form>`
          : ""
      }`,
    viewer,
  );
}

export function confirmDeletePage(viewer: Viewer, image: ImageSummary): string {
  return layout(
    `Delete ${image.repository}:${image.tag}?`,
    html`<p>
        The tag <code>${image.repository}:${image.tag}</code> (<span class="digest">${image.digest}</span>) will be
        removed. Other tags and pulls by digest keep the image until garbage collection finds it unused.
      </p>
      <form method="post" action="/delete">
        <input type="hidden" name="csrf" value="${viewer.csrf}" />
        <input type="hidden" name="repository" value="${image.repository}" />
        <input type="hidden" name="tag" value="${image.tag}" />
        <button type="submit" class="danger">Yes, delete ${image.repository}:${image.tag}</button>
        <a href="${tagHref(image.repository, image.tag)}">Cancel</a>
      </form>`,
    viewer,
  );
}

export interface StorageView {
  usage?: { bytes: number; blobs: number };
  builtIn: boolean;
  gc?: { manifests: number; blobs: number; uploads: number; bytes: number };
}

export function storagePage(viewer: Viewer, view: StorageView): string {
  if (!view.builtIn)
    return layout(
      "Storage",
      html`<p>
        This server forwards to an upstream registry (<code>--upstream</code>): storage and garbage collection are shown
        only with the built-in registry.
      </p>`,
      viewer,
    );
  const usage = view.usage ?? { bytes: 0, blobs: 0 };
  return layout(
    "Storage",
    html`${fieldTable([
        ["Storage used", `${formatBytes(usage.bytes)} (${usage.bytes} bytes)`],
        ["Blobs", usage.blobs],
      ])}
      <h2>Garbage collection</h2>
      ${
        view.gc
          ? fieldTable(
              [
                ["Manifests", view.gc.manifests],
                ["Blobs", view.gc.blobs],
                ["Abandoned uploads", view.gc.uploads],
                ["Bytes", `${formatBytes(view.gc.bytes)} (${view.gc.bytes} bytes)`],
              ],
              "What garbage collection would reclaim now (dry run)",
            )
          : html`<form method="get" action="/admin/storage">
              <input type="hidden" name="gc" value="dry-run" />
              <button type="submit">Show what GC would reclaim (dry run)</button>
            </form>`
      }`,
    viewer,
  );
}

export interface AuditFilter {
  user: string;
  repository: string;
  action: string;
}

export function auditPage(
  viewer: Viewer,
  records: AuditRecord[],
  filter: AuditFilter,
  actions: readonly string[],
): string {
  return layout(
    "Audit log",
    html`<form method="get" action="/admin/audit">
        <label for="user">User</label>
        <input type="text" id="user" name="user" value="${filter.user}" />
        <label for="repository">Repository</label>
        <input type="text" id="repository" name="repository" value="${filter.repository}" />
        <label for="action">Action</label>
        <select id="action" name="action">
          <option value="">any</option>
          ${actions.map((a) => html`<option value="${a}" ${a === filter.action ? html`selected` : ""}>${a}</option>`)}
        </select>
        <p><button type="submit">Filter</button></p>
      </form>
      ${dataTable(
        `The ${records.length} most recent matching records, newest first`,
        [
          { heading: "Time", cell: (r) => r.time },
          { heading: "Action", cell: (r) => r.action },
          { heading: "Result", cell: (r) => r.result },
          { heading: "User", cell: (r) => r.actor.name },
          { heading: "Source", cell: (r) => r.actor.source ?? "" },
          { heading: "Repository", cell: (r) => r.target?.repository ?? "" },
          { heading: "Tag or digest", cell: (r) => r.target?.tag ?? r.target?.digest ?? "", cellClass: "digest" },
          { heading: "Address", cell: (r) => r.request?.addr ?? "" },
        ],
        records,
      )}`,
    viewer,
  );
}

export function messagePage(title: string, message: string, viewer?: Viewer): string {
  return layout(
    title,
    html`<p>${message}</p>
      <p><a href="/">Back to the repositories</a></p>`,
    viewer,
  );
}

export function repositoryHref(repository: string, last?: string): string {
  const query = new URLSearchParams({ name: repository });
  if (last) query.set("last", last);
  return `/repository?${query}`;
}

export function tagHref(repository: string, tag: string): string {
  return `/tag?${new URLSearchParams({ repository, tag })}`;
}
