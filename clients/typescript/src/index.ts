/**
 * A typed client of calls-batch-get: one call (`getBatch`), every contact of a batch
 * (`contacts`, which follows `next_cursor`) and a poll that sends back the ETag it holds
 * (`poll`). It needs nothing at run time but `fetch`. The types are generated from openapi.yaml
 * into ./calls-batch-get.ts; every named one (Batch, Contact, BatchStatus, ErrorCode...) is
 * exported from here too. `GET /health` is the uptime check's, not a page's, and has no call
 * here; its bodies are typed all the same (HealthBody, `operations["getHealth"]`).
 */
import type {
  BatchDetail,
  Contact,
  ResponseMethodNotAllowed,
  operations,
} from "./calls-batch-get.js";

export type * from "./calls-batch-get.js";

type Operation = operations["getCallBatch"];
type Responses = Operation["responses"];

/** The query of one call: the batch and which page of its contacts. */
export type GetBatchParams = Operation["parameters"]["query"];
/** The query of a walk over every contact: where each page starts is the walk's business. */
export type ContactsParams = Omit<GetBatchParams, "contact_offset" | "contact_cursor">;

// The GET's error answers and the 405 that any other method gets: every error the endpoint
// gives, so that a switch over `code` covers ErrorCode and a `never` check proves it.
type ErrorResponses = Omit<Responses, 200 | 304> & { 405: ResponseMethodNotAllowed };
export type ErrorStatus = keyof ErrorResponses;
type BodyOf<S extends ErrorStatus> = ErrorResponses[S]["content"]["application/json"];
type CodeOf<S extends ErrorStatus> = BodyOf<S>["code"];
type Parameter = BodyOf<400>["parameter"];

interface Received {
  /** All of the answer's headers (WWW-Authenticate on a 401, Allow on a 405...). */
  readonly headers: Headers;
  /** X-Request-Id, which the function's log line carries: quote it in a bug report. */
  readonly requestId: string | null;
}

/** 200: the batch, its counters and one page of its contacts. */
export interface BatchAnswer extends Received {
  readonly kind: "batch";
  readonly status: 200;
  /** Send it back (`ifNoneMatch`) to get a 304 while nothing changed. */
  readonly etag: string;
  readonly body: BatchDetail;
}

/** 304: the `ifNoneMatch` sent is still this batch's tag; keep what you show. */
export interface NotModifiedAnswer extends Received {
  readonly kind: "not_modified";
  readonly status: 304;
  readonly etag: string;
}

type ErrorAnswers = {
  readonly [S in ErrorStatus]: Received & {
    readonly kind: "error";
    readonly status: S;
    /** What to branch on; `body.error` is a message for people and may be reworded. */
    readonly code: CodeOf<S>;
    readonly body: BodyOf<S>;
  };
};
/** A documented error: one member per status, `code` narrowing to it. */
export type ErrorAnswer = ErrorAnswers[ErrorStatus];

/** Anything outside the contract: a proxy's 502 page, a 429 of the platform, a body that is not
 * the documented JSON. `text` is the body as received. */
export interface UnexpectedAnswer extends Received {
  readonly kind: "unexpected";
  readonly status: number;
  readonly text: string;
}

export type GetBatchAnswer = BatchAnswer | NotModifiedAnswer | ErrorAnswer | UnexpectedAnswer;

// Typed both ways against the generated types: a status or code that openapi.yaml adds, or
// drops, fails the compile here until this table (the run-time guard) says the same.
const CODES: { readonly [S in ErrorStatus]: { readonly [C in CodeOf<S>]: true } } = {
  400: { invalid_parameter: true },
  401: { missing_token: true, invalid_token: true, token_expired: true },
  403: { no_agency: true },
  404: { batch_not_found: true },
  405: { method_not_allowed: true },
  500: { database_error: true, auth_unavailable: true, internal_error: true },
};
const PARAMETERS: { readonly [P in Parameter]: true } = {
  batch_id: true,
  contact_status: true,
  contact_limit: true,
  contact_offset: true,
  contact_cursor: true,
};

function isErrorStatus(status: number): status is ErrorStatus {
  return Object.hasOwn(CODES, status);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isErrorBody<S extends ErrorStatus>(status: S, body: unknown): body is BodyOf<S> {
  if (!isRecord(body) || typeof body.error !== "string" || typeof body.code !== "string") {
    return false;
  }
  if (!Object.hasOwn(CODES[status], body.code)) return false;
  return status !== 400 || (typeof body.parameter === "string"
    && Object.hasOwn(PARAMETERS, body.parameter));
}

// Enough to tell the function's 200 from another JSON object; its fields are the contract's.
function isBatchDetail(body: unknown): body is BatchDetail {
  return isRecord(body) && isRecord(body.batch) && Array.isArray(body.contacts)
    && isRecord(body.contact_pagination);
}

function errorAnswer<S extends ErrorStatus>(
  received: Received, status: S, body: BodyOf<S>,
): ErrorAnswer {
  // isErrorBody checked that the code is one of the status's; TypeScript cannot carry that
  // pairing through a generic status to the union's member.
  return { ...received, kind: "error", status, code: body.code, body } as ErrorAnswer;
}

function json(headers: Headers, text: string): unknown {
  if (!/^application\/(.+\+)?json\b/i.test(headers.get("Content-Type") ?? "")) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The answer of a call as the typed union: what `getBatch` does with the fetch's Response, for
 * a request made some other way. */
export async function readAnswer(response: Response): Promise<GetBatchAnswer> {
  const { status, headers } = response;
  const received: Received = { headers, requestId: headers.get("X-Request-Id") };
  // Without its ETag a 200 or 304 is outside the contract, and no poll could go on from it.
  const etag = headers.get("ETag");
  if (status === 304) {
    await response.body?.cancel();
    return etag === null
      ? { ...received, kind: "unexpected", status, text: "" }
      : { ...received, kind: "not_modified", status, etag };
  }
  const text = await response.text();
  const body = json(headers, text);
  if (status === 200 && etag !== null && isBatchDetail(body)) {
    return { ...received, kind: "batch", status, etag, body };
  }
  if (isErrorStatus(status) && isErrorBody(status, body)) {
    return errorAnswer(received, status, body);
  }
  return { ...received, kind: "unexpected", status, text };
}

/** The URL of a call: `baseUrl` with the query of `params` (undefined ones left out). */
export function batchUrl(baseUrl: string | URL, params: GetBatchParams): URL {
  const url = new URL(baseUrl);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url;
}

/** A Supabase access token, or a function asked before every request, so that a session that
 * supabase-js refreshed is the one sent: `() => supabase.auth.getSession().then(({ data }) =>
 * data.session?.access_token)`. Nothing (null, undefined) sends no Authorization. */
export type TokenSource =
  | string
  | null
  | (() => string | null | undefined | Promise<string | null | undefined>);

export interface ClientOptions {
  /** The function's URL, Cloud Run's: https://calls-batch-get-PROJECT_NUMBER.REGION.run.app */
  readonly baseUrl: string | URL;
  readonly token?: TokenSource;
  /** The global fetch unless given (a server's own, one that adds headers...). */
  readonly fetch?: typeof fetch;
}

export interface RequestOptions {
  /** The ETag of a 200 held: the answer is a 304 while the batch is unchanged. */
  readonly ifNoneMatch?: string;
  /** Kept by the function (and in its log line) when it matches [A-Za-z0-9][A-Za-z0-9._:-]*. */
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

export interface PollOptions {
  /** Between the end of one answer's handling and the next request (default 5000). */
  readonly intervalMs?: number;
  /** Aborting ends the poll, also in the middle of a request or a wait. */
  readonly signal?: AbortSignal;
}

/** What `contacts` throws when a page is not a 200: the answer, to branch on as `getBatch`'s. */
export class BatchError extends Error {
  readonly answer: Exclude<GetBatchAnswer, BatchAnswer>;

  constructor(answer: Exclude<GetBatchAnswer, BatchAnswer>) {
    const reason = answer.kind === "error" ? answer.code : answer.kind;
    super(`calls-batch-get answered ${answer.status} (${reason})`);
    this.name = "BatchError";
    this.answer = answer;
  }
}

export interface BatchClient {
  /** One call; rejects only when fetch does (offline, aborted). */
  getBatch(params: GetBatchParams, options?: RequestOptions): Promise<GetBatchAnswer>;
  /** Every contact of the batch (of `contact_status` if given), each once, in the API's order
   * (created_at, then id), a page of `contact_limit` (default 200, the most) at a time. Throws a
   * BatchError when a page is not a 200. */
  contacts(
    params: ContactsParams, options?: Pick<RequestOptions, "signal">,
  ): AsyncGenerator<Contact, void, undefined>;
  /** `getBatch` now and then every `intervalMs`, sending the ETag of the last 200 back, and
   * yielding every answer: a 304 says the batch is as shown; an error is the caller's to judge
   * (break to stop). A rejected fetch (offline) ends it with that error. */
  poll(params: GetBatchParams, options?: PollOptions): AsyncGenerator<GetBatchAnswer, void, undefined>;
}

const MAX_LIMIT = 200;
const DEFAULT_POLL_MS = 5000;

export function createClient(options: ClientOptions): BatchClient {
  // Bound: a browser refuses a fetch called as another object's method ("Illegal invocation").
  const send = options.fetch ?? globalThis.fetch.bind(globalThis);
  const token = options.token;

  async function getBatch(
    params: GetBatchParams, request: RequestOptions = {},
  ): Promise<GetBatchAnswer> {
    const headers = new Headers({ Accept: "application/json" });
    const bearer = typeof token === "function" ? await token() : token;
    if (bearer) headers.set("Authorization", `Bearer ${bearer}`);
    if (request.ifNoneMatch !== undefined) headers.set("If-None-Match", request.ifNoneMatch);
    if (request.requestId !== undefined) headers.set("X-Request-Id", request.requestId);
    const init: RequestInit = { headers };
    if (request.signal !== undefined) init.signal = request.signal;
    return readAnswer(await send(batchUrl(options.baseUrl, params), init));
  }

  async function* contacts(
    params: ContactsParams, request: Pick<RequestOptions, "signal"> = {},
  ): AsyncGenerator<Contact, void, undefined> {
    const page: GetBatchParams = { contact_limit: MAX_LIMIT, ...params };
    let cursor: string | null = null;
    do {
      const answer = await getBatch(cursor === null ? page : { ...page, contact_cursor: cursor },
        request);
      if (answer.kind !== "batch") throw new BatchError(answer);
      yield* answer.body.contacts;
      cursor = answer.body.contact_pagination.next_cursor;
    } while (cursor !== null);
  }

  async function* poll(
    params: GetBatchParams, { intervalMs = DEFAULT_POLL_MS, signal }: PollOptions = {},
  ): AsyncGenerator<GetBatchAnswer, void, undefined> {
    let etag: string | undefined;
    while (!aborted(signal)) {
      let answer: GetBatchAnswer;
      try {
        const request: { ifNoneMatch?: string; signal?: AbortSignal } = {};
        if (etag !== undefined) request.ifNoneMatch = etag;
        if (signal !== undefined) request.signal = signal;
        answer = await getBatch(params, request);
      } catch (error) {
        if (aborted(signal)) return;
        throw error;
      }
      // An error leaves the held tag as it was: what the caller shows has not changed.
      if (answer.kind === "batch" || answer.kind === "not_modified") etag = answer.etag;
      yield answer;
      await pause(intervalMs, signal);
    }
  }

  return { getBatch, contacts, poll };
}

// A function, not `signal?.aborted` inline: TypeScript would take the value it narrowed before an
// await for the value after it.
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (aborted(signal)) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
