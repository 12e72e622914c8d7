// calls-batch-get: the Supabase Edge Function (TypeScript, Deno) that this project's Python Cloud
// Function replaces, rebuilt from its specification (shared/spec/calls-batch-get.seed.txt) so that
// bench/peer.py can run the two side by side against the same PostgREST/Auth stand-in.
//
// GET /?batch_id=<uuid>[&contact_status=<status>][&contact_limit=<n>][&contact_offset=<n>]
//   -> { batch, contacts, contact_pagination: { total, limit, offset, has_more } }
//
// Order of checks, as such a function is usually written: CORS preflight, method (405), the
// Authorization header (401), the caller's user from Auth (401), their agency (403), then the
// query parameters (400), the batch (404/500) and its contacts (500). Every upstream request waits
// for the one before it. contact_limit and contact_offset are not rejected, they are coerced the
// usual way: a value that does not parse falls back to its default (50 / 0), contact_limit is
// clamped to 1..200 and contact_offset to >= 0. An unknown contact_status is a 400.
// supabase-js's defaults are kept: each PostgREST GET that fails with 503, 520 or a network error
// is retried up to 3 times, after 1 s, 2 s and 4 s (or its Retry-After).
//
// Run (no network needed at run time: deno.json resolves imports from node_modules, which
// `npm ci` here fills, the Deno binary included):
//   cd bench/original && npm ci
//   PORT=8000 SUPABASE_URL=http://127.0.0.1:54321 SUPABASE_ANON_KEY=<anon key> \
//   DENO_NO_UPDATE_CHECK=1 ./node_modules/.bin/deno run --allow-net --allow-env \
//     --no-remote --cached-only index.ts
// It prints "Listening on http://127.0.0.1:<port>/" on stderr once it accepts connections.

import { createClient } from "@supabase/supabase-js";

const corsHeaders = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "GET, OPTIONS",
};

const CONTACT_STATUSES = ["pending", "queued", "in_progress", "completed", "failed", "skipped"];
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

const CONTACT_COLUMNS =
  "id, phone_number, first_name, last_name, email, company, title, status, call_id, attempts, " +
  "max_attempts, outcome, duration_seconds, outcome_notes, last_attempt_at, completed_at, " +
  "custom_data, do_not_call, timezone, created_at";

const SUPABASE_URL = Deno.env.get("SUPABASE_URL") ?? "";
const SUPABASE_ANON_KEY = Deno.env.get("SUPABASE_ANON_KEY") ?? "";

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, "Content-Type": "application/json" },
  });
}

async function handler(req: Request): Promise<Response> {
  if (req.method === "OPTIONS") {
    return new Response("ok", { headers: corsHeaders });
  }
  if (req.method !== "GET") {
    return json({ error: "Method not allowed" }, 405);
  }

  try {
    const authHeader = req.headers.get("Authorization");
    if (!authHeader || !authHeader.startsWith("Bearer ")) {
      return json({ error: "Missing or invalid authorization header" }, 401);
    }

    const supabase = createClient(SUPABASE_URL, SUPABASE_ANON_KEY, {
      global: { headers: { Authorization: authHeader } },
      auth: { persistSession: false, autoRefreshToken: false },
    });

    const token = authHeader.replace("Bearer ", "");
    const { data: { user }, error: authError } = await supabase.auth.getUser(token);
    if (authError || !user) {
      return json({ error: "Invalid or expired token" }, 401);
    }

    const { data: profile, error: profileError } = await supabase
      .from("users")
      .select("agency_id")
      .eq("id", user.id)
      .single();
    if (profileError || !profile?.agency_id) {
      return json({ error: "User is not associated with an agency" }, 403);
    }
    const agencyId: string = profile.agency_id;

    const url = new URL(req.url);
    const batchId = url.searchParams.get("batch_id");
    if (!batchId) {
      return json({ error: "batch_id query parameter is required" }, 400);
    }

    const contactStatus = url.searchParams.get("contact_status");
    if (contactStatus && !CONTACT_STATUSES.includes(contactStatus)) {
      return json(
        { error: `Invalid contact_status. Must be one of: ${CONTACT_STATUSES.join(", ")}` },
        400,
      );
    }

    const limit = Math.min(
      Math.max(parseInt(url.searchParams.get("contact_limit") ?? "", 10) || DEFAULT_LIMIT, 1),
      MAX_LIMIT,
    );
    const offset = Math.max(parseInt(url.searchParams.get("contact_offset") ?? "", 10) || 0, 0);

    const { data: batch, error: batchError } = await supabase
      .from("v_call_batch_summary")
      .select("*")
      .eq("id", batchId)
      .eq("agency_id", agencyId)
      .maybeSingle();
    if (batchError) {
      console.error("Error fetching batch:", batchError);
      return json({ error: "Failed to fetch batch" }, 500);
    }
    if (!batch) {
      return json({ error: "Batch not found" }, 404);
    }

    let contactsQuery = supabase
      .from("campaign_contacts")
      .select(CONTACT_COLUMNS, { count: "exact" })
      .eq("batch_id", batchId);
    if (contactStatus) {
      contactsQuery = contactsQuery.eq("status", contactStatus);
    }
    const { data: contacts, error: contactsError, count } = await contactsQuery
      .order("created_at", { ascending: true })
      .range(offset, offset + limit - 1);
    if (contactsError) {
      console.error("Error fetching contacts:", contactsError);
      return json({ error: "Failed to fetch contacts" }, 500);
    }

    const rows = contacts ?? [];
    const total = count ?? 0;
    return json({
      batch,
      contacts: rows,
      contact_pagination: {
        total,
        limit,
        offset,
        has_more: offset + rows.length < total,
      },
    });
  } catch (error) {
    console.error("Unexpected error:", error);
    return json({ error: "Internal server error" }, 500);
  }
}

Deno.serve({ port: Number(Deno.env.get("PORT") ?? 8000), hostname: "127.0.0.1" }, handler);
