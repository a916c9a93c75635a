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
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { FeedActivities } from '../activities/feed.ts';
import {
  DEFAULT_ALERT_AFTER_FAILED_RUNS,
  FailureType,
  SA_KIND,
  SA_PHASE,
  SA_PROVIDER,
  SA_SCHEDULE,
  ScheduledFailureType,
  type WorkflowKind,
  type SyncOptions,
  type SyncReport,
  type TargetsRef,
} from '../contracts/index.ts';
import { syncWorkflow } from './sync.ts';
import { pauseScheduleIfFailing } from './alerts.ts';

import type { ScheduledSyncInput, ScheduledSyncResult } from '../contracts/scheduled.ts';

export type { FeedRetry, ScheduledSource, ScheduledSyncInput, ScheduledSyncResult } from '../contracts/scheduled.ts';

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

  if (source.kind === 'ref') return { report: await sync(source.ref) };

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
