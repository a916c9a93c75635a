/**
 * The change-feed activities of a scheduled sync: where the last successful run of the schedule
 * left the cursor, and the targets changed since it (written as NDJSON to the spool folder, so
 * the sync reads them by reference and history carries a path, not a catalog).
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { lastSuccessfulRun } from './last-run.ts';
import { writeSpool } from './spool.ts';
import { FeedFailureType, type TargetsRef } from '../contracts/index.ts';
import { parseRetryAfter } from './failures.ts';

/** Failure type names of the feed activities; stable public strings. */

export interface FeedActivityDeps {
  /** Reads the schedule and its runs; without one, the worker's own client (Context.client). */
  client?: Client;
  /** Tests inject one; production uses undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /** CATALOG_SYNC_SPOOL_DIR: where the changed targets are written. */
  env: NodeJS.ProcessEnv;
  /** Per-request timeout for the feed, in milliseconds (default 60 s). */
  requestTimeoutMs?: number;
}

export interface LastFeedCursorInput {
  scheduleId: string;
  /** The asking run's ID, never taken as "the last successful one". */
  runId?: string;
}

export interface FetchFeedInput {
  url: string;
  /** Absent: from the feed's beginning. */
  cursor?: string;
}

export interface FetchedFeed {
  /** Where the changed targets were written; absent when there were none. */
  ref?: TargetsRef;
  count: number;
  cursor: string;
}

const FeedAnswerSchema = z.object({
  targets: z.array(z.unknown()),
  cursor: z.union([z.string(), z.number().finite()]),
});

/** The feed's URL without its query and credentials, for messages (a query may hold a token). */
const shown = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(malformed feed URL)';
  }
};

const HEARTBEAT_EVERY_MS = 5_000;

export function createFeedActivities(deps: FeedActivityDeps) {
  const timeoutMs = deps.requestTimeoutMs ?? 60_000;

  return {
    /** The cursor the last successful run of the schedule ended at; none before the first one. */
    async lastFeedCursor(input: LastFeedCursorInput): Promise<{ cursor?: string; workflowId?: string }> {
      const client = deps.client ?? Context.current().client;
      const last = await lastSuccessfulRun(client, input.scheduleId, {
        ...(input.runId !== undefined ? { exclude: input.runId } : {}),
      });
      if (last?.result.cursor === undefined) return {};
      return { cursor: last.result.cursor, workflowId: last.workflowId };
    },

    /** GET `url?since=<cursor>`: the targets changed since the cursor, and the new cursor. */
    async fetchFeed(input: FetchFeedInput): Promise<FetchedFeed> {
      const where = shown(input.url);
      let url: URL;
      try {
        url = new URL(input.url);
      } catch {
        throw ApplicationFailure.create({
          type: FeedFailureType.FeedRefused,
          nonRetryable: true,
          message: `the change feed URL is malformed (${where}): fix the schedule's feed`,
        });
      }
      if (input.cursor !== undefined) url.searchParams.set('since', input.cursor);
      const ctx = Context.current();
      const heartbeat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      let status: number;
      let headers: Record<string, string | string[] | undefined>;
      let text: string;
      try {
        const res = await request(url, {
          method: 'GET',
          headers: { accept: 'application/json' },
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: ctx.cancellationSignal,
          ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
        });
        status = res.statusCode;
        headers = res.headers;
        text = await res.body.text();
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        const code = (e as { code?: unknown }).code ?? (e.cause as { code?: unknown } | undefined)?.code;
        throw ApplicationFailure.create({
          type: FeedFailureType.FeedUnavailable,
          message: `the change feed at ${where} could not be reached (${typeof code === 'string' ? code : e.name}: ${e.message}); retrying`,
          cause: e,
        });
      } finally {
        clearInterval(heartbeat);
      }

      if (status === 408 || status === 429 || status >= 500) {
        const wait = parseRetryAfter(headers['retry-after']);
        throw ApplicationFailure.create({
          type: FeedFailureType.FeedUnavailable,
          message: `the change feed at ${where} answered ${status}; retrying`,
          details: [{ httpStatus: status }],
          ...(wait !== undefined ? { nextRetryDelay: wait } : {}),
        });
      }
      if (status < 200 || status >= 300) {
        throw ApplicationFailure.create({
          type: FeedFailureType.FeedRefused,
          nonRetryable: true,
          message:
            `the change feed at ${where} answered ${status}${input.cursor !== undefined ? ` for since=${input.cursor}` : ''}: ` +
            `${text.slice(0, 200)}; check the schedule's feed URL`,
          details: [{ httpStatus: status }],
        });
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const parsed = FeedAnswerSchema.safeParse(json);
      if (!parsed.success) {
        throw ApplicationFailure.create({
          type: FeedFailureType.FeedBadAnswer,
          message:
            `the change feed at ${where} answered ${status} without the expected ` +
            `{"targets": [...], "cursor": "..."} (${json === undefined ? 'not JSON' : parsed.error.issues[0]?.path.join('.') || 'body'}); retrying`,
          details: [{ httpStatus: status }],
        });
      }
      const cursor = String(parsed.data.cursor);
      const { targets } = parsed.data;
      if (targets.length === 0) return { count: 0, cursor };

      // Spooled like a large inline sync (private, sealed with the codec key when set): history
      // carries only its path, and the child sync that reads it deletes it when it closes. Named
      // after this run, which stays running while its child sync reads the file (the sweep asks).
      const ref = await writeSpool(ctx.info.workflowExecution?.workflowId ?? 'feed', targets, deps.env);
      return { ref, count: targets.length, cursor };
    },
  };
}

export type FeedActivities = ReturnType<typeof createFeedActivities>;
