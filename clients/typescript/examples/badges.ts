/**
 * A page's code on top of the client, compiled with the package's strict settings
 * (tests/test_typescript_client.py): every switch ends in a `never` check, so a status or error
 * code that openapi.yaml adds fails this compile until the page handles it.
 */
import {
  createClient,
  type BatchStatus,
  type ContactStatus,
  type ErrorAnswer,
  type GetBatchAnswer,
} from "../src/index.js";

export type Tone = "neutral" | "info" | "success" | "warning" | "danger";

export interface Badge {
  readonly label: string;
  readonly tone: Tone;
}

function unhandled(value: never): never {
  throw new Error(`unhandled: ${JSON.stringify(value)}`);
}

export function batchBadge(status: BatchStatus): Badge {
  switch (status) {
    case "draft":
      return { label: "Draft", tone: "neutral" };
    case "scheduled":
      return { label: "Scheduled", tone: "info" };
    case "processing":
      return { label: "Calling", tone: "info" };
    case "paused":
      return { label: "Paused", tone: "warning" };
    case "completed":
      return { label: "Completed", tone: "success" };
    case "cancelled":
      return { label: "Cancelled", tone: "neutral" };
    case "failed":
      return { label: "Failed", tone: "danger" };
    default:
      return unhandled(status);
  }
}

export function contactBadge(status: ContactStatus): Badge {
  switch (status) {
    case "pending":
      return { label: "Pending", tone: "neutral" };
    case "queued":
      return { label: "Queued", tone: "info" };
    case "in_progress":
      return { label: "On a call", tone: "info" };
    case "completed":
      return { label: "Reached", tone: "success" };
    case "failed":
      return { label: "Failed", tone: "danger" };
    case "skipped":
      return { label: "Skipped", tone: "warning" };
    default:
      return unhandled(status);
  }
}

/** What the page does about an error: sign in again, show a message, or retry later. */
export type Remedy = "sign_in" | "refresh_session" | "fix_link" | "not_found" | "retry" | "bug";

export function remedy(answer: ErrorAnswer): Remedy {
  switch (answer.code) {
    case "missing_token":
    case "invalid_token":
      return "sign_in";
    case "token_expired":
      return "refresh_session";
    case "invalid_parameter":
      // Narrowed to the 400: its body names the parameter.
      return answer.body.parameter === "batch_id" ? "fix_link" : "bug";
    case "no_agency":
    case "batch_not_found":
      return "not_found";
    case "database_error":
    case "auth_unavailable":
    case "internal_error":
      return "retry";
    case "method_not_allowed":
      return "bug";
    default:
      return unhandled(answer);
  }
}

export function headline(answer: GetBatchAnswer): string {
  switch (answer.kind) {
    case "batch": {
      const { batch } = answer.body;
      // A date-time string, in UTC ("Z").
      const since = new Date(batch.started_at ?? batch.created_at).toISOString();
      return `${batch.campaign_name ?? "Batch"}: ${batchBadge(batch.status).label} since ${since}`
        + `, ${batch.progress_percentage}% done`;
    }
    case "not_modified":
      return "unchanged";
    case "error":
      return `${answer.status} ${answer.code}: ${remedy(answer)}`;
    case "unexpected":
      return `HTTP ${answer.status}`;
    default:
      return unhandled(answer);
  }
}

/** The screen's loop in a few lines: a headline per change, until `signal` aborts. */
export async function watch(
  baseUrl: string, token: () => Promise<string | undefined>, batchId: string, signal: AbortSignal,
  show: (line: string) => void,
): Promise<void> {
  const client = createClient({ baseUrl, token });
  for await (const answer of client.poll({ batch_id: batchId, contact_limit: 25 }, { signal })) {
    if (answer.kind !== "not_modified") show(headline(answer));
    if (answer.kind === "error" && remedy(answer) === "sign_in") break;
  }
}
