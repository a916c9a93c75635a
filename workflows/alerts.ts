/**
 * Alerts from workflows (docs/alerts.md): a closed sync above its threshold or aborted, and a
 * schedule paused because its last runs failed. The webhook is posted by an activity that reads
 * its URL from the worker's environment; the workflow never knows it. An alert's own failure is
 * logged and never fails the sync or the run. Every alert activity is behind the
 * `catalog-sync-alerts` patch, so histories recorded before alerts existed replay unchanged.
 */
import { ActivityFailure, TemporalFailure, isCancellation, log, patched, proxyActivities } from '@temporalio/workflow';
import type { AlertActivities } from '../activities/alerts.ts';
import {
  AlertFailureType,
  overThreshold,
  type AlertInput,
  type AlertThreshold,
  type Counts,
} from '../contracts/index.ts';

export const ALERTS_PATCH = 'catalog-sync-alerts';

const { postAlert } = proxyActivities<AlertActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '1 second',
    backoffCoefficient: 2,
    nonRetryableErrorTypes: [AlertFailureType.AlertWebhookRefused, AlertFailureType.AlertWebhookMisconfigured],
  },
});

const { pauseFailingSchedule } = proxyActivities<AlertActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

/** What went wrong, in one line: an activity's own failure rather than "activity task failed". */
const messageOf = (err: unknown): string =>
  err instanceof ActivityFailure && err.cause !== undefined
    ? err.cause.message
    : err instanceof Error
      ? err.message
      : String(err);

/** Posts the alert; a webhook that stays down is logged, never thrown (an alert never fails a sync). */
async function sendAlert(alert: AlertInput): Promise<void> {
  try {
    await postAlert(alert);
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('alert not sent', { kind: alert.kind, workflowId: alert.workflowId, error: messageOf(err) });
  }
}

export interface ClosedSync {
  workflowId: string;
  provider: string;
  counts: Counts;
  threshold?: AlertThreshold;
  abortReason?: string;
}

/** The alert a closed sync calls for, if any: aborted, or rejected + failed above its threshold. */
export function closedSyncAlert(sync: ClosedSync): AlertInput | undefined {
  const { workflowId, provider, counts } = sync;
  if (sync.abortReason !== undefined) {
    return { kind: 'sync_aborted', workflowId, provider, counts, reason: sync.abortReason };
  }
  if (sync.threshold !== undefined && overThreshold(counts, sync.threshold)) {
    return { kind: 'sync_rejections', workflowId, provider, counts, threshold: sync.threshold };
  }
  return undefined;
}

/** At a sync's close: posts its alert, if it calls for one. */
export async function alertClosedSync(sync: ClosedSync): Promise<void> {
  const alert = closedSyncAlert(sync);
  if (alert === undefined || !patched(ALERTS_PATCH)) return;
  await sendAlert(alert);
}

export interface FailedScheduledRun {
  scheduleId: string;
  /** The failing run's own workflow ID and first run ID. */
  workflowId: string;
  runId: string;
  provider: string;
  /** Runs that must all have failed before the schedule is paused; 0: never. */
  failedRuns: number;
  error: unknown;
  counts?: Counts;
}

/**
 * When a scheduled run fails: if its schedule's last `failedRuns` runs (this one included) all
 * failed, the schedule is paused with a note saying why, and a `schedule_paused` alert is posted.
 */
export async function pauseScheduleIfFailing(run: FailedScheduledRun): Promise<void> {
  // Only a failure that fails the run: any other error fails the workflow task, which is retried.
  const failsRun = run.error instanceof TemporalFailure && !isCancellation(run.error);
  if (run.failedRuns <= 0 || !failsRun || !patched(ALERTS_PATCH)) return;
  let paused;
  try {
    paused = await pauseFailingSchedule({
      scheduleId: run.scheduleId,
      runId: run.runId,
      failedRuns: run.failedRuns,
      reason: messageOf(run.error),
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('could not check the schedule for repeated failures', {
      scheduleId: run.scheduleId,
      error: messageOf(err),
    });
    return;
  }
  if (!paused.paused) return;
  log.warn('schedule paused', { scheduleId: run.scheduleId, note: paused.note });
  await sendAlert({
    kind: 'schedule_paused',
    workflowId: run.workflowId,
    provider: run.provider,
    scheduleId: run.scheduleId,
    ...(run.counts !== undefined ? { counts: run.counts } : {}),
    ...(paused.note !== undefined ? { reason: paused.note } : {}),
  });
}
