/**
 * What operators see in the Temporal UI: typed search attributes (provider, phase, counts) to
 * filter syncs by, the current details line saying what a sync waits for, and custom metrics.
 * Search attributes are upserted only when the sync was started with them (the client does so
 * unless told the namespace lacks them), so a namespace without them never blocks a sync.
 */
import { metricMeter, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  SA_ACCEPTED,
  SA_FAILED,
  SA_PHASE,
  SA_PROVIDER,
  SA_REJECTED,
  type Counts,
  type SyncPhase,
} from '../contracts/index.ts';

export interface Published {
  phase?: SyncPhase;
  accepted?: number;
  rejected?: number;
  failed?: number;
}

const withAttributes = (): boolean => workflowInfo().typedSearchAttributes.get(SA_PROVIDER) !== undefined;

/** Upserts what changed since the last call; returns what is now published. */
export function publish(last: Published, phase: SyncPhase, counts: Counts, details: string): Published {
  setCurrentDetails(details);
  const now: Published = { phase, accepted: counts.accepted, rejected: counts.rejected, failed: counts.failed };
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
