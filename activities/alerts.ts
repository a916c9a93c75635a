/**
 * The alert activities: post an alert to the webhook of the worker's environment
 * (CATALOG_SYNC_ALERT_WEBHOOK_URL, docs/alerts.md), and pause a schedule whose last runs all
 * failed. The URL is a secret (a Slack webhook's path is its credential): it is read here, in the
 * worker, and never appears in an input, a result, a failure message or a log line. Without it,
 * posting does nothing.
 */
import { Context } from '@temporalio/activity';
import { ScheduleNotFoundError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { request, type Dispatcher } from 'undici';
import {
  ALERT_UI_URL_VAR,
  ALERT_WEBHOOK_VAR,
  AlertFailureType,
  alertText,
  type AlertBody,
  type AlertInput,
} from '../contracts/index.ts';

export interface AlertActivityDeps {
  /** CATALOG_SYNC_ALERT_WEBHOOK_URL and CATALOG_SYNC_UI_URL come from here; the worker passes process.env. */
  env: NodeJS.ProcessEnv;
  /** Reads and pauses schedules; without one, the worker's own client (Context.client). */
  client?: Client;
  /** Tests inject one; production uses undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /** Per-request timeout of the webhook, in milliseconds (default 10 s). */
  requestTimeoutMs?: number;
}

export interface PauseFailingScheduleInput {
  scheduleId: string;
  /** The failing run (its first run ID): counted as failed, it has not closed yet. */
  runId: string;
  /** Runs that must all have failed, this one included. */
  failedRuns: number;
  /** Why this run failed, for the note. */
  reason: string;
}

export interface PausedSchedule {
  paused: boolean;
  /** The note the schedule was paused with. */
  note?: string;
}

/** Run statuses that count as a failed run (cancelled and terminated ones were an operator's choice). */
const FAILED = new Set(['FAILED', 'TIMED_OUT']);
const REASON_LIMIT = 300;

/** The note a schedule is paused with: why, and how to unpause it. */
export function pauseNote(scheduleId: string, failedRuns: number, reason: string): string {
  const latest = reason.length > REASON_LIMIT ? `${reason.slice(0, REASON_LIMIT - 3)}...` : reason;
  return (
    `paused by catalog-sync: the last ${failedRuns} runs failed (latest: ${latest}); fix the cause, then unpause with ` +
    `\`catalog-sync schedule unpause ${scheduleId}\` or \`temporal schedule toggle --schedule-id ${scheduleId} --unpause\``
  );
}

const MALFORMED = `${ALERT_WEBHOOK_VAR} is not an http(s) URL; fix it in the worker's environment (its value is not shown)`;

/** The webhook URL; `none` when unset, `malformed` when set to something else than an http(s) URL. */
function readWebhook(env: NodeJS.ProcessEnv): URL | 'none' | 'malformed' {
  const raw = env[ALERT_WEBHOOK_VAR]?.trim();
  if (!raw) return 'none';
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : 'malformed';
  } catch {
    return 'malformed';
  }
}

/**
 * Checks CATALOG_SYNC_ALERT_WEBHOOK_URL when the worker starts, so a malformed one stops it in one
 * line (naming the variable, never its value) instead of failing every alert later.
 */
export function checkAlertWebhook(env: NodeJS.ProcessEnv): { configured: boolean } {
  const url = readWebhook(env);
  if (url === 'malformed') throw new Error(MALFORMED);
  return { configured: url !== 'none' };
}

/** The workflow's page in the Temporal UI, when the worker knows the UI's address. */
function uiUrl(env: NodeJS.ProcessEnv, workflowId: string): string | undefined {
  const base = env[ALERT_UI_URL_VAR]?.trim().replace(/\/+$/, '');
  if (!base) return undefined;
  const namespace = Context.current().info.namespace;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** A thrown undici error as a retryable failure naming only its code (its message may hold the host). */
function unreachable(err: unknown): ApplicationFailure {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  const code = [e.code, e.cause?.code, e.name].find((c): c is string => typeof c === 'string') ?? 'unknown error';
  return ApplicationFailure.create({
    type: AlertFailureType.AlertWebhookUnavailable,
    message: `the alert webhook could not be reached (${code}); retrying`,
  });
}

export function createAlertActivities(deps: AlertActivityDeps) {
  const timeoutMs = deps.requestTimeoutMs ?? 10_000;

  return {
    /** Posts the alert as JSON (docs/alerts.md); `sent: false` when no webhook is configured. */
    async postAlert(input: AlertInput): Promise<{ sent: boolean }> {
      const url = readWebhook(deps.env);
      if (url === 'none') return { sent: false };
      if (url === 'malformed') {
        throw ApplicationFailure.create({
          type: AlertFailureType.AlertWebhookMisconfigured,
          nonRetryable: true,
          message: MALFORMED,
        });
      }
      const link = uiUrl(deps.env, input.workflowId);
      const body: AlertBody = { text: alertText(input), ...input, ...(link !== undefined ? { uiUrl: link } : {}) };
      let status: number;
      try {
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: Context.current().cancellationSignal,
          ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
        });
        status = res.statusCode;
        await res.body.dump();
      } catch (err) {
        throw unreachable(err);
      }
      if (status >= 200 && status < 300) return { sent: true };
      const transient = status === 408 || status === 429 || status >= 500;
      throw ApplicationFailure.create({
        type: transient ? AlertFailureType.AlertWebhookUnavailable : AlertFailureType.AlertWebhookRefused,
        nonRetryable: !transient,
        message: `the alert webhook answered ${status}${transient ? '; retrying' : `; check ${ALERT_WEBHOOK_VAR}`}`,
      });
    },

    /**
     * Pauses the schedule, with a note saying why, when this run and the `failedRuns - 1` runs
     * before it all failed. A schedule already paused (by an operator) is left as it is.
     */
    async pauseFailingSchedule(input: PauseFailingScheduleInput): Promise<PausedSchedule> {
      const client = deps.client ?? Context.current().client;
      const handle = client.schedule.getHandle(input.scheduleId);
      let described;
      try {
        described = await handle.describe();
      } catch (err) {
        if (err instanceof ScheduleNotFoundError) return { paused: false };
        throw err;
      }
      if (described.state.paused) return { paused: false };
      // The runs before this one, newest last (a description lists the last 10).
      const need = input.failedRuns - 1;
      const before = described.info.recentActions
        .map((a) => a.action.workflow)
        .filter((w) => w.firstExecutionRunId !== input.runId);
      if (before.length < need) return { paused: false };
      for (const w of need > 0 ? before.slice(-need) : []) {
        try {
          const { status } = await client.workflow.getHandle(w.workflowId, w.firstExecutionRunId).describe();
          if (!FAILED.has(status.name)) return { paused: false };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return { paused: false };
          throw err;
        }
      }
      const note = pauseNote(input.scheduleId, input.failedRuns, input.reason);
      await handle.pause(note);
      return { paused: true, note };
    },
  };
}

export type AlertActivities = ReturnType<typeof createAlertActivities>;
