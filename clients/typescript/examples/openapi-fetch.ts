/**
 * The same call with openapi-fetch and the generated `paths` instead of this package's client,
 * as docs/typescript.md shows it; the Node tests run it against the function.
 */
import createFetchClient from "openapi-fetch";
import type { BatchDetail, paths } from "../src/index.js";

export type Fetched =
  | { readonly kind: "batch"; readonly body: BatchDetail; readonly etag: string | null }
  | { readonly kind: "not_modified" }
  | { readonly kind: "error"; readonly status: number; readonly code: string };

export async function fetchBatch(
  baseUrl: string, token: string, batchId: string, etag?: string,
): Promise<Fetched> {
  // baseUrl without the trailing slash: openapi-fetch appends the path, "/".
  const client = createFetchClient<paths>({ baseUrl: baseUrl.replace(/\/$/, "") });
  const { data, error, response } = await client.GET("/", {
    params: {
      query: { batch_id: batchId },
      header: etag === undefined ? {} : { "If-None-Match": etag },
    },
    headers: { Authorization: `Bearer ${token}` },
  });
  // A 304 is not `ok`, so openapi-fetch files it under `error` (empty), which its types leave
  // out: ask the status first.
  if (response.status === 304) return { kind: "not_modified" };
  if (error !== undefined) return { kind: "error", status: response.status, code: error.code };
  return { kind: "batch", body: data, etag: response.headers.get("ETag") };
}
