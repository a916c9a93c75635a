/**
 * The workflow a Temporal Schedule starts: one sync of a provider from a fixed source (an NDJSON
 * file or URL), or from a change feed. For a feed, the run starts from the cursor the last
 * *successful* run of the same schedule returned, so a run that fails (feed unreachable, sync
 * aborted, targets failed) never makes the next one skip its changes. The sync itself is a child
 * `syncWorkflow`, `<this workflow id>/sync`. After it, the run carries forward the items an earlier
 * sync left rejected for a transient reason or failed (docs/state.md, "Failures carried forward"),
 * as a second child sync `<this workflow id>/carried`. Deterministic: all I/O is in activities.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { FeedActivities } from '../activities/feed.ts';
import type { SyncActivities } from '../activities/index.ts';
import {
  DEFAULT_ALERT_AFTER_FAILED_RUNS,
  FailureType,
  SA_KIND,
  SA_PHASE,
  SA_PROVIDER,
  SA_SCHEDULE,
  ScheduledFailureType,
  noneCarried,
  type WorkflowKind,
  type SyncOptions,
  type SyncReport,
  type TargetsRef,
} from '../contracts/index.ts';
import { syncWorkflow } from './sync.ts';
import { pauseScheduleIfFailing } from './alerts.ts';

import {
  CARRY_FORWARD_BYTES,
  CARRY_FORWARD_TARGETS,
  scheduledWorkflowIdPrefix,
  type CarriedResult,
  type ScheduledSyncInput,
  type ScheduledSyncResult,
} from '../contracts/scheduled.ts';

export type {
  CarriedResult,
  FeedRetry,
  ScheduledSource,
  ScheduledSyncInput,
  ScheduledSyncResult,
} from '../contracts/scheduled.ts';

/** Runs recorded before carrying forward existed replay without its activity and child. */
export const CARRY_FORWARD_PATCH = 'scheduled-carry-forward';

/** Failure type names of a scheduled run (the sync's own are in contracts/errors.ts). */

/**
 * What a scheduled sync runs with unless the schedule says otherwise: nobody is there to re-submit
 * corrections, and a sync that stayed open would hold back the schedule's next runs.
 */
export const SCHEDULED_SYNC_DEFAULTS: SyncOptions = { resubmissionWindow: '0s' };

export const DEFAULT_FEED_RETRY = { attempts: 5, initialInterval: '1s', maximumInterval: '30s' } as const;

const SCHEDULED_BY_ID = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

/**
 * A scheduled sync's search attributes, when the namespace has them (this wrapper was started with
 * some: schedules made before `CatalogSyncKind` set only the provider).
 */
function syncAttributes(provider: string, scheduleId: string | undefined) {
  const own = workflowInfo().typedSearchAttributes;
  if (own.get(SA_KIND) === undefined && own.get(SA_PROVIDER) === undefined) return {};
  return {
    typedSearchAttributes: [
      { key: SA_PROVIDER, value: provider },
      { key: SA_PHASE, value: 'validating' },
      { key: SA_KIND, value: 'sync' satisfies WorkflowKind },
      ...(scheduleId !== undefined ? [{ key: SA_SCHEDULE, value: scheduleId }] : []),
    ],
  };
}

export async function scheduledSyncWorkflow(input: ScheduledSyncInput): Promise<ScheduledSyncResult> {
  try {
    return await runScheduledSync(input);
  } catch (err) {
    // Its schedule's last runs all failed: paused, with a note saying why, and an alert posted.
    const scheduleId = scheduleIdOf(input);
    if (scheduleId !== undefined) {
      const { workflowId, firstExecutionRunId } = workflowInfo();
      const report = err instanceof ApplicationFailure ? (err.details?.[0] as SyncReport | undefined) : undefined;
      await pauseScheduleIfFailing({
        scheduleId,
        workflowId,
        runId: firstExecutionRunId,
        provider: input.provider,
        failedRuns: input.alertAfterFailedRuns ?? DEFAULT_ALERT_AFTER_FAILED_RUNS,
        error: err,
        ...(report?.counts !== undefined ? { counts: report.counts } : {}),
      });
    }
    throw err;
  }
}

/** The schedule that started this run: named in the input, else the search attribute the schedule sets. */
const scheduleIdOf = (input: ScheduledSyncInput): string | undefined =>
  input.scheduleId ?? workflowInfo().typedSearchAttributes.get(SCHEDULED_BY_ID);

async function runScheduledSync(input: ScheduledSyncInput): Promise<ScheduledSyncResult> {
  const { provider, source } = input;
  const options: SyncOptions = { ...SCHEDULED_SYNC_DEFAULTS, ...input.options };
  const childId = `${workflowInfo().workflowId}/sync`;

  const scheduleId = scheduleIdOf(input);
  const sync = async (ref: TargetsRef): Promise<SyncReport> => {
    try {
      return await executeChild(syncWorkflow, {
        workflowId: childId,
        args: [{ provider, source: { kind: 'ref', ref }, options }],
        // Found by the same queries as any other sync, and by its schedule.
        ...syncAttributes(provider, scheduleId),
        staticSummary: `${provider} sync of ${'file' in ref ? 'a file' : 'a URL'}${scheduleId !== undefined ? `, scheduled by ${scheduleId}` : ''}`,
        ...(options.priorityKey !== undefined ? { priority: { priorityKey: options.priorityKey } } : {}),
      });
    } catch (err) {
      if (!(err instanceof ChildWorkflowFailure)) throw err;
      const cause = err.cause;
      const report = cause instanceof ApplicationFailure ? (cause.details?.[0] as SyncReport | undefined) : undefined;
      throw ApplicationFailure.create({
        type: ScheduledFailureType.ScheduledSyncFailed,
        nonRetryable: true,
        message: `the sync ${childId} failed: ${cause?.message ?? err.message}`,
        cause: err,
        ...(report !== undefined ? { details: [report] } : {}),
      });
    }
  };

  // The items an earlier sync left rejected for a transient reason or failed, sent again after this run's sync.
  const carried = async (result: ScheduledSyncResult): Promise<ScheduledSyncResult> => {
    const c = await carryForward(input, options, scheduleId);
    return c === undefined ? result : { ...result, carried: c };
  };

  if (source.kind === 'ref') return carried({ report: await sync(source.ref) });

  if (scheduleId === undefined) {
    throw ApplicationFailure.create({
      type: FailureType.InvalidSyncRequest,
      nonRetryable: true,
      message:
        'a change-feed sync carries its cursor from one run of its schedule to the next: ' +
        'start it from a schedule (createSyncSchedule), or give scheduleId in the input',
    });
  }

  const { lastFeedCursor } = proxyActivities<FeedActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 5, initialInterval: '1s' },
  });
  const retry = { ...DEFAULT_FEED_RETRY, ...input.feedRetry };
  const { fetchFeed } = proxyActivities<FeedActivities>({
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '1 minute',
    retry: {
      maximumAttempts: retry.attempts,
      initialInterval: retry.initialInterval,
      maximumInterval: retry.maximumInterval,
    },
  });

  // By run ID: runs a schedule starts in the same second share their workflow ID.
  const last = await lastFeedCursor({ scheduleId, runId: workflowInfo().firstExecutionRunId });
  const since = last.cursor;
  const feed = await fetchFeed({ url: source.url, ...(since !== undefined ? { cursor: since } : {}) });
  const common = { cursor: feed.cursor, count: feed.count, ...(since !== undefined ? { since } : {}) };
  if (feed.count === 0 || feed.ref === undefined) return carried(common);

  const report = await sync(feed.ref);
  if (report.counts.failed > 0) {
    throw ApplicationFailure.create({
      type: ScheduledFailureType.ScheduledSyncIncomplete,
      nonRetryable: true,
      message:
        `${report.counts.failed} of ${report.counts.submitted} targets failed in ${childId}: ` +
        `this run does not advance the feed cursor (${since ?? 'start'}), so the next run sends them again`,
      details: [report],
    });
  }
  return carried({ ...common, report });
}

/**
 * Carrying forward (docs/state.md, "Failures carried forward"): the items whose last answer, in a
 * sync before this run, was a transient rejection or a failure (or any rejection, `carryRejected`)
 * and that no later sync settled, read from the target-state store by an activity and sent as the
 * child sync `<run>/carried`, inline and within CARRY_FORWARD_BYTES (the rest wait for the next
 * run; the result says how many). Undefined when off, when the workers keep no store, or when
 * there was nothing to carry. Neither a
 * store that cannot answer nor a carried sync that fails fails the run: `error` says what happened.
 */
async function carryForward(
  input: ScheduledSyncInput,
  options: SyncOptions,
  scheduleId: string | undefined,
): Promise<CarriedResult | undefined> {
  // Only a schedule has runs to carry from (its runs' IDs name it).
  if (input.carryForward === false || scheduleId === undefined || !patched(CARRY_FORWARD_PATCH)) return undefined;
  const { provider } = input;
  const { workflowId, runStartTime } = workflowInfo();
  const childId = `${workflowId}/carried`;
  const { carriedTargets } = proxyActivities<Pick<SyncActivities, 'carriedTargets'>>({
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 3, initialInterval: '1s' },
  });
  let found: Awaited<ReturnType<SyncActivities['carriedTargets']>>;
  try {
    found = await carriedTargets({
      provider,
      runsPrefix: `${scheduledWorkflowIdPrefix(provider, scheduleId)}-`,
      // Not by the run's own sync IDs: two runs triggered within one second share a workflow ID, so
      // an earlier run's failures would read as this run's. Its start time (`before`) already
      // leaves out everything its own syncs answered.
      excludeSyncs: [],
      before: runStartTime.getTime(),
      includeRejected: input.carryRejected === true,
      maxBytes: CARRY_FORWARD_BYTES,
      maxTargets: CARRY_FORWARD_TARGETS,
    });
  } catch (err) {
    const cause = err instanceof ActivityFailure ? (err.cause ?? err) : (err as Error);
    return { ...noneCarried(), error: `nothing carried forward: ${cause.message}` };
  }
  if (found.noStore === true) return undefined;
  // Nothing to carry and nothing waiting: the result stays as it was before carrying existed.
  if (found.targets.length === 0) return found.counts.tooLarge > 0 ? found.counts : undefined;
  // A carried target is always sent, as a re-submission is: compared with the last accepted content
  // it could be found unchanged, never sent, and so carried again by every run.
  const { changedOnly, ...carriedOptions } = options;
  void changedOnly;
  try {
    const report = await executeChild(syncWorkflow, {
      workflowId: childId,
      args: [
        {
          provider,
          source: { kind: 'inline', targets: found.targets },
          options: carriedOptions,
          carriedForward: found.counts,
        },
      ],
      // A sync like any other to operators (kind `sync`, its provider and schedule).
      ...syncAttributes(provider, scheduleId),
      staticSummary: `${provider} sync of ${found.counts.count} targets carried forward, scheduled by ${scheduleId}`,
      ...(options.priorityKey !== undefined ? { priority: { priorityKey: options.priorityKey } } : {}),
    });
    return { ...found.counts, workflowId: childId, counts: report.counts };
  } catch (err) {
    if (!(err instanceof ChildWorkflowFailure)) throw err;
    return {
      ...found.counts,
      workflowId: childId,
      error: `the carried sync ${childId} failed: ${err.cause?.message ?? err.message}`,
    };
  }
}
