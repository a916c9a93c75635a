/**
 * The scheduled sync's input and result (workflows/scheduled.ts runs it): shared by the workflow,
 * the schedule commands that start it and the activity that reads a past run's cursor.
 */
import type { Duration } from '@temporalio/common';
import type { CarriedCounts, Counts, SyncOptions, SyncReport, TargetsRef } from './sync.ts';

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
  /**
   * After its sync, the run sends again the items whose last answer (in an earlier sync) was a
   * transient rejection or a failure, unless a later sync settled them, as the child sync
   * `<run>/carried` (docs/state.md, "Failures carried forward"). Default true; with the workers'
   * target-state store off (CATALOG_SYNC_STATE_URL=off) there is nothing to carry.
   */
  carryForward?: boolean;
  /** Carry every rejected item forward too, not only the transient ones (default false). */
  carryRejected?: boolean;
}

/** What a run carried forward: the counts, and the carried sync's ID and counts (its report is its result). */
export interface CarriedResult extends CarriedCounts {
  /** The carried sync, `<run>/carried`; absent when nothing was carried. */
  workflowId?: string;
  /** The carried sync's counts (its full report is that workflow's result). */
  counts?: Counts;
  /** Why nothing (or not all) could be carried: the store could not answer, or the carried sync failed. */
  error?: string;
}

/** The ID prefix of the workflows a schedule starts; Temporal appends `-<scheduled time>`. */
export const scheduledWorkflowIdPrefix = (provider: string, scheduleId: string): string =>
  `catalog-sync-${provider}-schedule-${scheduleId}`;

/** The most a run carries forward: bytes of targets (they travel inline, in history) and targets. */
export const CARRY_FORWARD_BYTES = 128 * 1024;
export const CARRY_FORWARD_TARGETS = 10_000;

export interface ScheduledSyncResult {
  /** The child sync's report; absent when the feed had no changes (nothing was synced). */
  report?: SyncReport;
  /** Feed only: the cursor the next run starts from, once this run has succeeded. */
  cursor?: string;
  /** Feed only: the cursor this run started from (absent: from the feed's beginning). */
  since?: string;
  /** Feed only: how many changed targets the feed gave. */
  count?: number;
  /**
   * What the run carried forward after its sync: absent when there was nothing to carry (or with
   * carryForward off, the store off, or in runs from before it).
   */
  carried?: CarriedResult;
}
