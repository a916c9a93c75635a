/** Signals, queries and updates of the sync workflow, defined once for workflow and client. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { Resubmission, ResubmissionAnswer } from './resubmission.ts';
import type { RejectionOrigin, SyncReport, TargetState, Warning } from './sync.ts';

export const statusQuery = defineQuery<SyncReport>('status');
export const resubmitSignal = defineSignal<[Resubmission]>('resubmit');
export const resubmitUpdate = defineUpdate<ResubmissionAnswer, [Resubmission]>('resubmitWithAnswer');
export const finishSignal = defineSignal('finish');

/** One target of a slice workflow, as its `sliceEntries` query pages them. */
export interface SliceEntryView {
  id: string;
  state: TargetState;
  /** The provider's identity of the item, when known (see ItemIdentity). */
  identity?: string;
  line?: number;
  target?: unknown;
  code?: string;
  message?: string;
  origin?: RejectionOrigin;
  /** For a superseded target: the id of the re-submitted target that replaced it. */
  by?: string;
}
/**
 * A slice workflow's (or the sync's own) non-accepted targets, at most `limit` from `offset`; a page
 * ends early at PAGE_BYTES, so callers advance by the entries they got.
 */
export const sliceEntriesQuery = defineQuery<{ total: number; entries: SliceEntryView[] }, [number, number]>(
  'sliceEntries',
);

/** Warnings of a slice workflow (or of the sync itself), `limit` from `offset`. */
export const sliceWarningsQuery = defineQuery<{ total: number; warnings: Warning[] }, [number, number]>(
  'sliceWarnings',
);

/** The slice workflows a sync names in `rejectedElsewhere`, `limit` from `offset` (all of them). */
export const rejectedElsewhereQuery = defineQuery<
  { total: number; slices: { workflowId: string; count: number; warnings: number }[] },
  [number, number]
>('rejectedElsewhere');

/**
 * Bytes one page of a paging query may take: pages end early rather than grow past it. Query
 * answers never enter history; half the 2 MB payload limit keeps paging a large sync quick (a
 * closed workflow answers each page by replaying its history).
 */
export const PAGE_BYTES = 1024 * 1024;

/**
 * A running slice's counts so far, signalled to its sync every few seconds (only when they
 * moved) so the sync's `status`, search attributes and details move while slices send. Counts
 * only: a few dozen bytes a signal.
 */
export const SliceProgressSchema = z.object({
  /** The slice's index (its workflow is `<sync id>/slice-<index>`). */
  slice: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
});
export type SliceProgress = z.infer<typeof SliceProgressSchema>;
export const sliceProgressSignal = defineSignal<[SliceProgress]>('sliceProgress');
