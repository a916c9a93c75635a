/**
 * The workflow a Temporal Schedule starts: one sync of a provider from a fixed source (an NDJSON
 * file or URL), or from a change feed. For a feed, the run starts from the cursor the last
 * *successful* run of the same schedule returned, so a run that fails (feed unreachable, sync
 * aborted, targets failed) never makes the next one skip its changes. The sync itself is a child
 * `syncWorkflow`, `<this workflow id>/sync`. Deterministic: all I/O is in activities.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, type Duration } from '@temporalio/common';
import type { FeedActivities } from '../activities/feed.ts';
import {
  DEFAULT_ALERT_AFTER_FAILED_RUNS,
  FailureType,
  ScheduledFailureType,
  type SyncOptions,
  type SyncReport,
  type TargetsRef,
} from '../contracts/index.ts';
import { syncWorkflow } from './sync.ts';
import { pauseScheduleIfFailing } from './alerts.ts';

/** Where a scheduled sync reads its targets: the same file or URL every run, or a change feed. */
export type ScheduledSource = { kind: 'ref'; ref: TargetsRef } | { kind: 'feed'; url: string };

/** How a run retries the change feed before it fails (and the next run tries again). */
export interface FeedRetry {
  attempts?: number;
  initialInterval?: Duration;
  maximumInterval?: Duration;
}

export interface ScheduledSyncInput {
  provider: string;
  source: ScheduledSource;
  options?: SyncOptions;
  /**
   * The schedule that starts this workflow (set by createSyncSchedule). Without it the run reads
   * the `TemporalScheduledById` search attribute the schedule sets.
   */
  scheduleId?: string;
  feedRetry?: FeedRetry;
  /**
   * The schedule is paused (with a note saying why) and an alert posted once this many runs in a
   * row have failed, this one included (default 3; 0: never). See docs/alerts.md.
   */
  alertAfterFailedRuns?: number;
}

export interface ScheduledSyncResult {
  /** The child sync's report; absent when the feed had no changes (nothing was synced). */
  report?: SyncReport;
  /** Feed only: the cursor the next run starts from, once this run has succeeded. */
  cursor?: string;
  /** Feed only: the cursor this run started from (absent: from the feed's beginning). */
  since?: string;
  /** Feed only: how many changed targets the feed gave. */
  count?: number;
}

/** Failure type names of a scheduled run (the sync's own are in contracts/errors.ts). */

/**
 * What a scheduled sync runs with unless the schedule says otherwise: nobody is there to re-submit
 * corrections, and a sync that stayed open would hold back the schedule's next runs.
 */
export const SCHEDULED_SYNC_DEFAULTS: SyncOptions = { resubmissionWindow: '0s' };

export const DEFAULT_FEED_RETRY = { attempts: 5, initialInterval: '1s', maximumInterval: '30s' } as const;

const SCHEDULED_BY_ID = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

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

  const sync = async (ref: TargetsRef): Promise<SyncReport> => {
    try {
      return await executeChild(syncWorkflow, {
        workflowId: childId,
        args: [{ provider, source: { kind: 'ref', ref }, options }],
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

  if (source.kind === 'ref') return { report: await sync(source.ref) };

  const scheduleId = scheduleIdOf(input);
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
  if (feed.count === 0 || feed.ref === undefined) return common;

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
  return { ...common, report };
}
