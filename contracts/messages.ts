/** Signals, queries and updates of the sync workflow, defined once for workflow and client. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Resubmission, ResubmissionAnswer } from './resubmission.ts';
import type { RejectionOrigin, SyncReport, TargetState } from './sync.ts';

export const statusQuery = defineQuery<SyncReport>('status');
export const resubmitSignal = defineSignal<[Resubmission]>('resubmit');
export const resubmitUpdate = defineUpdate<ResubmissionAnswer, [Resubmission]>('resubmitWithAnswer');
export const finishSignal = defineSignal('finish');

/** One target of a slice workflow, as its `sliceEntries` query pages them. */
export interface SliceEntryView {
  id: string;
  state: TargetState;
  line?: number;
  target?: unknown;
  code?: string;
  message?: string;
  origin?: RejectionOrigin;
}
/** A slice workflow's non-accepted targets, `limit` from `offset`. */
export const sliceEntriesQuery = defineQuery<{ total: number; entries: SliceEntryView[] }, [number, number]>(
  'sliceEntries',
);
