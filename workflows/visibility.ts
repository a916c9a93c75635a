/**
 * What operators see in the Temporal UI: typed search attributes (provider, phase, counts) to
 * filter syncs by, the current details line saying what a sync waits for, and custom metrics.
 * Search attributes are upserted only when the sync was started with them (the client does so
 * unless told the namespace lacks them), so a namespace without them never blocks a sync.
 */
import { condition, metricMeter, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import {
  SA_ACCEPTED,
  SA_FAILED,
  SA_KIND,
  SA_PHASE,
  SA_PROVIDER,
  SA_REJECTED,
  SA_SCHEDULE,
  formatCount,
  type WorkflowKind,
  type Counts,
  type SyncPhase,
} from '../contracts/index.ts';

export interface Published {
  phase?: SyncPhase;
  accepted?: number;
  rejected?: number;
  failed?: number;
  /** When it was published (Temporal's clock, ms). */
  at?: number;
}

/** Progress (details, search attributes, a slice's signal) is published at most once per this many ms. */
export const PROGRESS_EVERY_MS = 5_000;

const withAttributes = (): boolean => workflowInfo().typedSearchAttributes.get(SA_PROVIDER) !== undefined;

/**
 * A slice's search attributes: its sync's provider and schedule, and `CatalogSyncKind = 'slice'`,
 * so the README's queries (`CatalogSyncKind = 'sync'`) list the syncs and never their parts. Counts
 * stay on the sync: a slice's are rolled up into it.
 */
export function sliceAttributes(): { typedSearchAttributes?: SearchAttributePair[] } {
  const own = workflowInfo().typedSearchAttributes;
  const provider = own.get(SA_PROVIDER);
  if (provider === undefined) return {};
  const schedule = own.get(SA_SCHEDULE);
  return {
    typedSearchAttributes: [
      { key: SA_PROVIDER, value: provider },
      { key: SA_KIND, value: 'slice' satisfies WorkflowKind },
      ...(schedule !== undefined ? [{ key: SA_SCHEDULE, value: schedule }] : []),
    ],
  };
}

/** Upserts what changed since the last call; returns what is now published. */
export function publish(last: Published, phase: SyncPhase, counts: Counts, details: string): Published {
  setCurrentDetails(details);
  const now: Published = {
    phase,
    accepted: counts.accepted,
    rejected: counts.rejected,
    failed: counts.failed,
    at: Date.now(),
  };
  if (!withAttributes()) return now;
  const changed = [
    ...(last.phase !== phase ? [{ key: SA_PHASE, value: phase }] : []),
    ...(last.accepted !== counts.accepted ? [{ key: SA_ACCEPTED, value: counts.accepted }] : []),
    ...(last.rejected !== counts.rejected ? [{ key: SA_REJECTED, value: counts.rejected }] : []),
    ...(last.failed !== counts.failed ? [{ key: SA_FAILED, value: counts.failed }] : []),
  ];
  if (changed.length > 0) upsertSearchAttributes(changed);
  return now;
}

/** The one line a sync or slice shows while it sends: "12,000 of 40,000 targets settled (accepted ...)". */
export function progressDetails(counts: Counts): string {
  const settled = counts.submitted - counts.pending;
  return (
    `${formatCount(settled)} of ${formatCount(counts.submitted)} targets settled ` +
    `(accepted ${formatCount(counts.accepted)}, rejected ${formatCount(counts.rejected)}, failed ${formatCount(counts.failed)})` +
    (counts.unchanged > 0 ? `; ${formatCount(counts.unchanged)} unchanged, not sent` : '')
  );
}

/**
 * Calls `tick` while `active()` whenever `settled()` has moved, at most once per `everyMs` after
 * `lastAt()`. Wakes on the activations that move the counts (answers, signals); a timer is started
 * only for a move that came too soon, so history grows by at most one timer per tick.
 */
export async function watchProgress(spec: {
  active: () => boolean;
  settled: () => number;
  lastAt: () => number;
  tick: () => Promise<void> | void;
  everyMs?: number;
}): Promise<void> {
  const every = spec.everyMs ?? PROGRESS_EVERY_MS;
  let shown = spec.settled();
  while (spec.active()) {
    await condition(() => !spec.active() || spec.settled() !== shown);
    if (!spec.active()) return;
    const wait = spec.lastAt() + every - Date.now();
    if (wait > 0 && (await condition(() => !spec.active(), wait))) return;
    if (!spec.active()) return;
    shown = spec.settled();
    await spec.tick();
  }
}

const targetsSettled = metricMeter.createCounter(
  'catalog_sync_targets',
  'targets',
  'Targets settled by syncs, by provider and final state',
);

/** Counts a closed sync's targets by state (replay-safe: the SDK skips metrics on replay). */
export function recordOutcome(provider: string, counts: Counts): void {
  for (const state of ['accepted', 'rejected', 'failed', 'superseded'] as const) {
    if (counts[state] > 0) targetsSettled.add(counts[state], { provider, state });
  }
}
