/**
 * Scheduled syncs over Temporal Schedules: each schedule starts `scheduledSyncWorkflow` for one
 * provider and one source (an NDJSON file or URL, or a change feed) on a cron expression or an
 * interval. Overlapping runs are never allowed to send at once (overlap `skip` by default, or
 * `buffer-one`), and a manual trigger follows the schedule's own overlap policy.
 */
import path from 'node:path';
import {
  ScheduleAlreadyRunning,
  WorkflowNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleExecutionResult,
  type ScheduleOverlapPolicy,
} from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time';
import { z } from 'zod';
import { lastSuccessfulRun, type SuccessfulRun } from '../activities/last-run.ts';
import { providerAdapter, providerNames } from '../activities/providers/index.ts';
import { shownUrl } from '../activities/source-policy.ts';
import {
  DEFAULT_ALERT_AFTER_FAILED_RUNS,
  MAX_ALERT_AFTER_FAILED_RUNS,
  SA_KIND,
  SA_SCHEDULE,
  SyncOptionsSchema,
  type SyncOptions,
  type WorkflowKind,
} from '../contracts/index.ts';
import type { FeedRetry, ScheduledSource, ScheduledSyncInput, scheduledSyncWorkflow } from '../workflows/scheduled.ts';
import { scheduledWorkflowIdPrefix } from '../contracts/scheduled.ts';

/** A schedule request the client refuses before anything is created; the message names the field. */
export class ScheduleRequestError extends Error {
  override readonly name = 'ScheduleRequestError';
}

export const SCHEDULED_WORKFLOW_TYPE = 'scheduledSyncWorkflow';
/** Missed runs (server down) are still started within this window; past it they are dropped. */
export const DEFAULT_CATCHUP_WINDOW = '10m';
/** The memo key a schedule keeps its request under (cron and sources as the caller wrote them). */
const MEMO_KEY = 'catalogSyncSchedule';

export const CRON_EXAMPLE = '0 * * * *';
export const cronError = (cron: string, detail?: string): string =>
  `schedule spec: "${cron}" is not a valid cron expression (e.g. "${CRON_EXAMPLE}")${detail ? `: ${detail}` : ''}`;

/** A quick local check; the server has the last word on ranges (its message is passed on). */
export function cronLooksValid(cron: string): boolean {
  const c = cron.trim().replace(/^(CRON_TZ|TZ)=\S+\s+/, '');
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(c)) return true;
  if (/^@every\s+\S+$/.test(c)) return true;
  const fields = c.split(/\s+/);
  return fields.length >= 5 && fields.length <= 7 && fields.every((f) => /^[\w*?,/#-]+$/.test(f));
}

const duration = (what: string, example: string) =>
  z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, `${what}: a duration such as "${example}"`);

const ScheduleIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][\w.-]{0,99}$/,
    'letters, digits, ".", "_" and "-" (at most 100), starting with a letter or digit',
  );

const httpUrl = (what: string) => z.url({ protocol: /^https?$/, error: `${what}: an http(s) URL` });

/** Where a schedule's runs read their targets. */
export const ScheduleSourceSchema = z.union([
  z.strictObject({ file: z.string().min(1, 'file: a path of an NDJSON file every worker can read') }),
  z.strictObject({ url: httpUrl('url (NDJSON)') }),
  z.strictObject({ feed: httpUrl('feed (a change feed answering ?since=CURSOR)') }),
]);
export type ScheduleSource = z.infer<typeof ScheduleSourceSchema>;

const ALERT_AFTER_MESSAGE =
  `alertAfterFailedRuns must be a whole number of runs from 1 to ${MAX_ALERT_AFTER_FAILED_RUNS} ` +
  `(default ${DEFAULT_ALERT_AFTER_FAILED_RUNS}), or 0 never to pause the schedule`;

export const SyncScheduleRequestSchema = z
  .strictObject({
    id: ScheduleIdSchema,
    provider: z.string().min(1),
    /** Cron expression (5 fields, or @hourly etc.), in UTC unless prefixed with CRON_TZ=Zone. */
    cron: z.string().optional(),
    /** Or an interval: "2s", "15m", "1h" (at least 1s). */
    every: duration('every', '15m').optional(),
    source: ScheduleSourceSchema,
    options: SyncOptionsSchema.optional(),
    /** A run due while another still runs: skipped (default), or one kept to start after it. */
    overlap: z.enum(['skip', 'buffer-one']).optional(),
    catchupWindow: duration('catchupWindow', '10m').optional(),
    paused: z.boolean().optional(),
    note: z.string().max(1000).optional(),
    taskQueue: z.string().min(1),
    /**
     * Once this many runs in a row have failed (default 3), the schedule is paused with a note
     * saying why and an alert is posted (docs/alerts.md); 0: never.
     */
    alertAfterFailedRuns: z
      .number({ error: ALERT_AFTER_MESSAGE })
      .int({ error: ALERT_AFTER_MESSAGE })
      .min(0, { error: ALERT_AFTER_MESSAGE })
      .max(MAX_ALERT_AFTER_FAILED_RUNS, { error: ALERT_AFTER_MESSAGE })
      .optional(),
    /**
     * After its sync, each run sends again the items an earlier sync left rejected for a transient
     * reason or failed, unless a later sync settled them (docs/state.md, "Failures carried
     * forward"). Default true; it needs the target-state store on the workers.
     */
    carryForward: z.boolean({ error: 'carryForward must be true or false' }).optional(),
    /** Carry every rejected item forward too, not only transient rejections and failures (default false). */
    carryRejected: z.boolean({ error: 'carryRejected must be true or false' }).optional(),
    /** Feed only: how a run retries the feed before it fails. */
    feedRetry: z
      .strictObject({
        attempts: z.number().int().positive().max(100).optional(),
        initialInterval: duration('feedRetry.initialInterval', '1s').optional(),
        maximumInterval: duration('feedRetry.maximumInterval', '30s').optional(),
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.cron === undefined) === (r.every === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['cron'],
        message: `give exactly one of cron (e.g. "${CRON_EXAMPLE}") or every (e.g. "15m")`,
      });
    }
    if (r.cron !== undefined && !cronLooksValid(r.cron)) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: cronError(r.cron) });
    }
    if (r.every !== undefined && msToNumber(r.every as `${number}s`) < 1000) {
      ctx.addIssue({
        code: 'custom',
        path: ['every'],
        message: `schedule spec: every "${r.every}" is under the 1s minimum`,
      });
    }
    if (r.catchupWindow !== undefined && msToNumber(r.catchupWindow as `${number}s`) < 10_000) {
      ctx.addIssue({ code: 'custom', path: ['catchupWindow'], message: 'catchupWindow: at least 10s' });
    }
    if (r.carryForward === false && r.carryRejected === true) {
      ctx.addIssue({
        code: 'custom',
        path: ['carryRejected'],
        message: 'carryRejected needs carryForward: leave carryForward on, or drop carryRejected',
      });
    }
    if (r.feedRetry !== undefined && !('feed' in r.source)) {
      ctx.addIssue({ code: 'custom', path: ['feedRetry'], message: 'feedRetry: only for a feed source' });
    }
  });
export type SyncScheduleRequest = z.input<typeof SyncScheduleRequestSchema>;

export { scheduledWorkflowIdPrefix } from '../contracts/scheduled.ts';

const toOverlap = (o: 'skip' | 'buffer-one' | undefined): ScheduleOverlapPolicy =>
  o === 'buffer-one' ? 'BUFFER_ONE' : 'SKIP';
const fromOverlap = (o: ScheduleOverlapPolicy): string => (o ?? 'SKIP').toLowerCase().replace(/_/g, '-');

/** Checks a request without a server (the CLI does so before it connects); throws ScheduleRequestError. */
export function validateSyncScheduleRequest(request: SyncScheduleRequest) {
  const parsed = SyncScheduleRequestSchema.safeParse(request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const message = issue?.message ?? 'invalid';
    throw new ScheduleRequestError(
      message.startsWith('schedule spec:')
        ? message
        : `invalid schedule: ${issue?.path.join('.') || 'request'}: ${message}`,
    );
  }
  const adapter = providerAdapter(parsed.data.provider);
  if (!adapter) {
    throw new ScheduleRequestError(
      `unknown provider "${parsed.data.provider}"; use one of: ${providerNames().join(', ')}`,
    );
  }
  // The same limit a sync's own request check applies: every run of the schedule would hit it.
  const max = adapter.documentedLimits.maxTargets;
  const batchSize = parsed.data.options?.batchSize;
  if (batchSize !== undefined && batchSize > max) {
    throw new ScheduleRequestError(
      `invalid schedule: options.batchSize is ${batchSize}, over ${adapter.title}'s limit of ${max} targets a call; give at most ${max}, or leave it out`,
    );
  }
  return parsed.data;
}

const toScheduledSource = (s: ScheduleSource): ScheduledSource =>
  'feed' in s
    ? { kind: 'feed', url: s.feed }
    : { kind: 'ref', ref: 'file' in s ? { file: path.resolve(s.file) } : { url: s.url } };

interface ScheduleMemo {
  provider: string;
  source: ScheduleSource;
  cron?: string;
  every?: string;
}

/** One line naming what a schedule syncs, when and from where (a URL without its query or credentials). */
export function scheduleNote(memo: ScheduleMemo): string {
  const from =
    'file' in memo.source
      ? `file ${memo.source.file}`
      : 'url' in memo.source
        ? `url ${shownUrl(memo.source.url)}`
        : `feed ${shownUrl(memo.source.feed)}`;
  const when = memo.cron !== undefined ? `cron "${memo.cron}"` : `every ${memo.every ?? '?'}`;
  return `catalog-sync: ${memo.provider} sync of ${from}, ${when}`;
}

/** Creates the schedule; refused with a one-line reason when a field (such as the cron) is wrong. */
export async function createSyncSchedule(
  client: Client,
  request: SyncScheduleRequest,
): Promise<{ scheduleId: string }> {
  const req = validateSyncScheduleRequest(request);
  const scheduled = toScheduledSource(req.source);
  const source: ScheduleSource = scheduled.kind === 'feed' ? { feed: scheduled.url } : scheduled.ref;
  // A file or URL holds the whole catalog each run: only what changed since the provider last
  // accepted it goes (docs/state.md), unless the schedule says changedOnly: false. A feed holds changes.
  const options =
    scheduled.kind !== 'feed' && req.options?.changedOnly === undefined
      ? { ...req.options, changedOnly: true }
      : req.options;
  const input: ScheduledSyncInput = {
    provider: req.provider,
    source: scheduled,
    scheduleId: req.id,
    ...(options ? { options } : {}),
    ...(req.feedRetry ? { feedRetry: req.feedRetry as FeedRetry } : {}),
    ...(req.alertAfterFailedRuns !== undefined ? { alertAfterFailedRuns: req.alertAfterFailedRuns } : {}),
    ...(req.carryForward !== undefined ? { carryForward: req.carryForward } : {}),
    ...(req.carryRejected !== undefined ? { carryRejected: req.carryRejected } : {}),
  };
  const memo: ScheduleMemo = {
    provider: req.provider,
    source,
    ...(req.cron !== undefined ? { cron: req.cron } : {}),
    ...(req.every !== undefined ? { every: req.every } : {}),
  };
  try {
    await client.schedule.create({
      scheduleId: req.id,
      spec:
        req.cron !== undefined
          ? { cronExpressions: [req.cron.trim()] }
          : { intervals: [{ every: req.every as string }] },
      action: {
        type: 'startWorkflow',
        workflowType: SCHEDULED_WORKFLOW_TYPE,
        workflowId: scheduledWorkflowIdPrefix(req.provider, req.id),
        taskQueue: req.taskQueue,
        args: [input] satisfies Parameters<typeof scheduledSyncWorkflow>,
        // The wrapper is told apart from its sync (`<wrapper id>/sync`, which carries the provider and counts).
        ...(process.env.CATALOG_SYNC_SEARCH_ATTRIBUTES !== 'off'
          ? {
              typedSearchAttributes: [
                { key: SA_KIND, value: 'scheduled-run' satisfies WorkflowKind },
                { key: SA_SCHEDULE, value: req.id },
              ],
            }
          : {}),
        staticSummary: scheduleNote(memo),
        // The scheduled syncs' priority key; their slices and provider calls inherit it.
        ...(req.options?.priorityKey !== undefined ? { priority: { priorityKey: req.options.priorityKey } } : {}),
      },
      policies: {
        overlap: toOverlap(req.overlap),
        catchupWindow: req.catchupWindow ?? DEFAULT_CATCHUP_WINDOW,
        pauseOnFailure: false,
      },
      memo: { [MEMO_KEY]: memo },
      // The note names provider and source, so `temporal schedule list/describe` shows what it syncs.
      state: { paused: req.paused ?? false, note: req.note ?? scheduleNote(memo) },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new ScheduleRequestError(`a schedule "${req.id}" already exists: delete it first, or pick another id`);
    }
    // The server's own check of the spec comes back as a TypeError with its reason.
    if (err instanceof TypeError) {
      const detail = err.message.split('\n')[0];
      if (req.cron !== undefined) throw new ScheduleRequestError(cronError(req.cron, detail));
      throw new ScheduleRequestError(`schedule spec: every "${req.every}" was refused: ${detail}`);
    }
    throw err;
  }
  return { scheduleId: req.id };
}

/** One run a schedule started. */
export interface ScheduledRun {
  workflowId: string;
  runId: string;
  scheduledAt: string;
  startedAt: string;
}

export interface SyncScheduleSummary {
  id: string;
  provider?: string;
  source?: ScheduleSource;
  cron?: string;
  every?: string;
  paused: boolean;
  note?: string;
  /** ISO times of the next runs (none while paused). */
  nextRuns: string[];
  /** The most recent runs, oldest first (at most 10). */
  recentRuns: ScheduledRun[];
}

export interface SyncScheduleDescription extends SyncScheduleSummary {
  taskQueue: string;
  workflowIdPrefix?: string;
  options?: SyncOptions;
  overlap: string;
  catchupWindow: string;
  createdAt: string;
  actionsTaken: number;
  skippedOverlap: number;
  missedCatchupWindow: number;
  /** Workflow IDs of runs in progress. */
  running: string[];
  recentRuns: (ScheduledRun & { status?: string })[];
  /** Feed only: the cursor of the last successful run, where the next run starts. */
  lastCursor?: string;
  /** Failed runs in a row after which the schedule is paused (docs/alerts.md); 0: never. */
  alertAfterFailedRuns: number;
  /** Whether runs carry forward transient rejections and failures (docs/state.md), and every rejection. */
  carryForward: boolean;
  carryRejected: boolean;
}

const toRun = (a: ScheduleExecutionResult): ScheduledRun => ({
  workflowId: a.action.workflow.workflowId,
  runId: a.action.workflow.firstExecutionRunId,
  scheduledAt: a.scheduledAt.toISOString(),
  startedAt: a.takenAt.toISOString(),
});

const memoOf = (memo: Record<string, unknown> | undefined): Partial<ScheduleMemo> =>
  (memo?.[MEMO_KEY] as ScheduleMemo | undefined) ?? {};

const summaryFields = (memo: Partial<ScheduleMemo>) => ({
  ...(memo.provider !== undefined ? { provider: memo.provider } : {}),
  ...(memo.source !== undefined ? { source: memo.source } : {}),
  ...(memo.cron !== undefined ? { cron: memo.cron } : {}),
  ...(memo.every !== undefined ? { every: memo.every } : {}),
});

/** Every catalog-sync schedule of the namespace (schedules of other workflows are left out). */
export async function listSyncSchedules(client: Client): Promise<SyncScheduleSummary[]> {
  const out: SyncScheduleSummary[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.workflowType !== SCHEDULED_WORKFLOW_TYPE) continue;
    out.push({
      id: s.scheduleId,
      ...summaryFields(memoOf(s.memo)),
      paused: s.state.paused,
      ...(s.state.note ? { note: s.state.note } : {}),
      nextRuns: s.state.paused ? [] : s.info.nextActionTimes.map((d) => d.toISOString()),
      recentRuns: s.info.recentActions.map(toRun),
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** Describes the schedule, refusing one that is not a catalog-sync schedule. */
async function describeOwn(client: Client, scheduleId: string): Promise<ScheduleDescription> {
  const d = await client.schedule.getHandle(scheduleId).describe();
  if (d.action.workflowType !== SCHEDULED_WORKFLOW_TYPE) {
    throw new ScheduleRequestError(
      `schedule "${scheduleId}" starts ${d.action.workflowType}, not a catalog-sync; it is left alone`,
    );
  }
  return d;
}

const humanMs = (ms: number): string =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;

export async function describeSyncSchedule(client: Client, scheduleId: string): Promise<SyncScheduleDescription> {
  const d = await describeOwn(client, scheduleId);
  const memo = memoOf(d.memo);
  const input = d.action.args?.[0] as ScheduledSyncInput | undefined;
  const recentRuns = await Promise.all(
    d.info.recentActions.map(async (a) => {
      const run = toRun(a);
      try {
        const w = await client.workflow.getHandle(run.workflowId, run.runId).describe();
        return { ...run, status: w.status.name };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return run; // past the namespace's retention
        throw err;
      }
    }),
  );
  const last = input?.source.kind === 'feed' ? await lastSuccessfulRun(client, scheduleId) : undefined;
  return {
    id: d.scheduleId,
    ...summaryFields(memo),
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    nextRuns: d.state.paused ? [] : d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns,
    taskQueue: d.action.taskQueue,
    ...(d.action.workflowId !== undefined ? { workflowIdPrefix: d.action.workflowId } : {}),
    ...(input?.options ? { options: input.options } : {}),
    overlap: fromOverlap(d.policies.overlap),
    catchupWindow: humanMs(d.policies.catchupWindow),
    createdAt: d.info.createdAt.toISOString(),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    ...(last?.result.cursor !== undefined ? { lastCursor: last.result.cursor } : {}),
    alertAfterFailedRuns: input?.alertAfterFailedRuns ?? DEFAULT_ALERT_AFTER_FAILED_RUNS,
    carryForward: input?.carryForward ?? true,
    carryRejected: input?.carryRejected ?? false,
  };
}

export async function pauseSyncSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  await describeOwn(client, scheduleId);
  await client.schedule.getHandle(scheduleId).pause(note ?? 'paused by catalog-sync');
}

export async function unpauseSyncSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  await describeOwn(client, scheduleId);
  await client.schedule.getHandle(scheduleId).unpause(note ?? 'unpaused by catalog-sync');
}

/**
 * Starts a run now, under the schedule's own overlap policy (the SDK's default for a trigger would
 * be ALLOW_ALL): with `skip`, a trigger while a run is in progress is dropped; with `buffer-one`,
 * it starts when that run ends. Answers with the runs in progress when it was asked.
 */
export async function triggerSyncSchedule(
  client: Client,
  scheduleId: string,
): Promise<{ overlap: string; running: string[] }> {
  const d = await describeOwn(client, scheduleId);
  await client.schedule.getHandle(scheduleId).trigger(d.policies.overlap ?? 'SKIP');
  return { overlap: fromOverlap(d.policies.overlap), running: d.info.runningActions.map((a) => a.workflow.workflowId) };
}

/** Deletes the schedule; runs in progress go on to their end. */
export async function deleteSyncSchedule(client: Client, scheduleId: string): Promise<void> {
  await describeOwn(client, scheduleId);
  await client.schedule.getHandle(scheduleId).delete();
}

// The lookup runs in the feed activity; it lives with it and is re-exported here for callers.
export { lastSuccessfulRun, type SuccessfulRun };
