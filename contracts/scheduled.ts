/**
 * The scheduled sync's input and result (workflows/scheduled.ts runs it): shared by the workflow,
 * the schedule commands that start it and the activity that reads a past run's cursor.
 */
import type { Duration } from '@temporalio/common';
import type { SyncOptions, SyncReport, TargetsRef } from './sync.ts';

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
