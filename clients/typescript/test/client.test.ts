/**
 * The client against the running function, run by tests/test_typescript_client.py on each
 * store with seeded data; what it needs comes in the environment (see `env`).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  BatchError,
  createClient,
  readAnswer,
  type Contact,
  type GetBatchAnswer,
  type NotModifiedAnswer,
} from "../src/index.js";
import { fetchBatch } from "../examples/openapi-fetch.js";
import { headline, remedy } from "../examples/badges.js";

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

const BASE_URL = env("CBG_URL");
const TOKEN = env("CBG_TOKEN");
const EXPIRED_TOKEN = env("CBG_EXPIRED_TOKEN");
const BATCH_ID = env("CBG_BATCH_ID");
const MISSING_BATCH_ID = env("CBG_MISSING_BATCH_ID");
// The batch's contacts in the API's order, all of them and those of CBG_STATUS.
const CONTACT_IDS: string[] = JSON.parse(env("CBG_CONTACT_IDS"));
const STATUS = env("CBG_STATUS") as Contact["status"];
const STATUS_CONTACT_IDS: string[] = JSON.parse(env("CBG_STATUS_CONTACT_IDS"));
// A POST there changes the first contact of the batch in the database.
const CHANGE_URL = env("CBG_CHANGE_URL");
const ETAG = /^"[A-Za-z0-9_-]+"$/;

interface Sent {
  readonly url: URL;
  readonly ifNoneMatch: string | null;
}

/** The real fetch, noting what each request asked for. */
function recording(): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const record: typeof fetch = (input, init) => {
    sent.push({
      url: new URL(input instanceof Request ? input.url : input),
      ifNoneMatch: new Headers(init?.headers).get("If-None-Match"),
    });
    return fetch(input, init);
  };
  return { fetch: record, sent };
}

const client = createClient({ baseUrl: BASE_URL, token: TOKEN });

async function fresh(): Promise<Extract<GetBatchAnswer, { kind: "batch" }>> {
  const answer = await client.getBatch({ batch_id: BATCH_ID, contact_limit: 5 });
  assert.equal(answer.kind, "batch", JSON.stringify(answer));
  return answer;
}

test("a 200 is the batch with its ETag and request id", async () => {
  const answer = await fresh();
  assert.equal(answer.status, 200);
  assert.match(answer.etag, ETAG);
  assert.ok(answer.requestId);
  assert.equal(answer.body.batch.id, BATCH_ID);
  assert.deepEqual(answer.body.contacts.map((c) => c.id), CONTACT_IDS.slice(0, 5));
  assert.equal(answer.body.contact_pagination.has_more, true);
  assert.match(headline(answer), /since \d{4}-\d\d-\d\dT/);
});

test("the ETag sent back is a 304 without a body", async () => {
  const { etag } = await fresh();
  const answer = await client.getBatch(
    { batch_id: BATCH_ID, contact_limit: 5 }, { ifNoneMatch: etag, requestId: "client-test-304" },
  );
  assert.equal(answer.kind, "not_modified");
  const notModified: NotModifiedAnswer = answer;
  assert.equal(notModified.status, 304);
  assert.equal(notModified.etag, etag);
  assert.equal(notModified.requestId, "client-test-304");
});

test("a malformed batch_id is a 400 that names it", async () => {
  const answer = await client.getBatch({ batch_id: "not-a-uuid" });
  assert.equal(answer.kind, "error");
  assert.equal(answer.code, "invalid_parameter");
  // The code narrowed the answer to the 400, whose body names the parameter.
  assert.equal(answer.status, 400);
  assert.equal(answer.body.parameter, "batch_id");
  assert.equal(remedy(answer), "fix_link");
});

test("no token is a 401 missing_token, an expired one token_expired", async () => {
  const signedOut = await createClient({ baseUrl: BASE_URL }).getBatch({ batch_id: BATCH_ID });
  assert.ok(signedOut.kind === "error" && signedOut.status === 401, JSON.stringify(signedOut));
  assert.equal(signedOut.code, "missing_token");
  assert.equal(signedOut.headers.get("WWW-Authenticate"), 'Bearer realm="calls-batch-get"');
  const expired = await createClient({ baseUrl: BASE_URL, token: async () => EXPIRED_TOKEN })
    .getBatch({ batch_id: BATCH_ID });
  assert.ok(expired.kind === "error" && expired.status === 401, JSON.stringify(expired));
  assert.equal(expired.code, "token_expired");
  assert.equal(remedy(expired), "refresh_session");
});

test("a batch the caller cannot see is a 404 batch_not_found", async () => {
  const answer = await client.getBatch({ batch_id: MISSING_BATCH_ID });
  assert.ok(answer.kind === "error", JSON.stringify(answer));
  assert.equal(answer.status, 404);
  assert.equal(answer.code, "batch_not_found");
  assert.equal(answer.body.error, "Batch not found");
});

test("another method is a 405 method_not_allowed; HEAD's bodiless one is unexpected", async () => {
  const url = `${BASE_URL}?batch_id=${BATCH_ID}`;
  const answer = await readAnswer(await fetch(url, { method: "DELETE" }));
  assert.ok(answer.kind === "error", JSON.stringify(answer));
  assert.equal(answer.status, 405);
  assert.equal(answer.code, "method_not_allowed");
  assert.equal(answer.headers.get("Allow"), "GET, OPTIONS");
  const head = await readAnswer(await fetch(url, { method: "HEAD" }));
  assert.equal(head.kind, "unexpected");
  assert.equal(head.status, 405);
});

test("contacts yields every contact once, in order, page after page by next_cursor", async () => {
  const { fetch: record, sent } = recording();
  const walker = createClient({ baseUrl: BASE_URL, token: TOKEN, fetch: record });
  const ids: string[] = [];
  for await (const contact of walker.contacts({ batch_id: BATCH_ID, contact_limit: 50 })) {
    ids.push(contact.id);
  }
  assert.deepEqual(ids, CONTACT_IDS);
  assert.equal(sent.length, Math.ceil(CONTACT_IDS.length / 50));
  assert.equal(sent[0]?.url.searchParams.has("contact_cursor"), false);
  for (const request of sent.slice(1)) {
    assert.ok(request.url.searchParams.get("contact_cursor"));
    assert.equal(request.url.searchParams.has("contact_offset"), false);
  }
});

test("contacts of one status, at the default (largest) page", async () => {
  const { fetch: record, sent } = recording();
  const walker = createClient({ baseUrl: BASE_URL, token: TOKEN, fetch: record });
  const ids: string[] = [];
  for await (const contact of walker.contacts({ batch_id: BATCH_ID, contact_status: STATUS })) {
    assert.equal(contact.status, STATUS);
    ids.push(contact.id);
  }
  assert.deepEqual(ids, STATUS_CONTACT_IDS);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]?.url.searchParams.get("contact_limit"), "200");
});

test("contacts throws the answer that was not a page", async () => {
  const walk = async (): Promise<void> => {
    for await (const _ of client.contacts({ batch_id: MISSING_BATCH_ID })) {
      assert.fail("a contact of a missing batch");
    }
  };
  await assert.rejects(walk, (error: unknown) => {
    assert.ok(error instanceof BatchError);
    assert.ok(error.answer.kind === "error");
    assert.equal(error.answer.code, "batch_not_found");
    return true;
  });
});

test("poll sends back the ETag it holds, and takes the new one after a change", async () => {
  const { fetch: record, sent } = recording();
  let asked = 0;
  const poller = createClient({
    baseUrl: BASE_URL, token: () => { asked += 1; return TOKEN; }, fetch: record,
  });
  const answers: GetBatchAnswer[] = [];
  for await (const answer of poller.poll({ batch_id: BATCH_ID, contact_limit: 5 },
    { intervalMs: 20 })) {
    answers.push(answer);
    if (answers.length === 2) {
      assert.equal((await fetch(CHANGE_URL, { method: "POST" })).status, 204);
    }
    if (answers.length === 4) break;
  }
  assert.deepEqual(answers.map((a) => a.kind),
    ["batch", "not_modified", "batch", "not_modified"]);
  const [first, , changed] = answers;
  assert.ok(first?.kind === "batch" && changed?.kind === "batch");
  assert.notEqual(changed.etag, first.etag);
  assert.notDeepEqual(changed.body.contacts[0], first.body.contacts[0]);
  assert.deepEqual(sent.map((s) => s.ifNoneMatch), [null, first.etag, first.etag, changed.etag]);
  // The token is asked for at each request, so a refreshed session is the one sent.
  assert.equal(asked, 4);
  // Breaking out stopped it: no request after the fourth.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(sent.length, 4);
});

test("aborting ends a poll in its wait", async () => {
  const controller = new AbortController();
  const started = Date.now();
  const kinds: string[] = [];
  for await (const answer of client.poll({ batch_id: BATCH_ID },
    { intervalMs: 60_000, signal: controller.signal })) {
    kinds.push(answer.kind);
    setTimeout(() => controller.abort(), 50);
  }
  assert.deepEqual(kinds, ["batch"]);
  assert.ok(Date.now() - started < 10_000);
});

test("the openapi-fetch example: a 200, then a 304 for its ETag", async () => {
  const first = await fetchBatch(BASE_URL, TOKEN, BATCH_ID);
  assert.ok(first.kind === "batch", JSON.stringify(first));
  assert.equal(first.body.batch.id, BATCH_ID);
  assert.ok(first.etag);
  assert.deepEqual(await fetchBatch(BASE_URL, TOKEN, BATCH_ID, first.etag), { kind: "not_modified" });
  assert.deepEqual(await fetchBatch(BASE_URL, TOKEN, MISSING_BATCH_ID),
    { kind: "error", status: 404, code: "batch_not_found" });
});
