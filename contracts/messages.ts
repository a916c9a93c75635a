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
 * Which page a paging query answers: one JSON object, `{"offset":0,"limit":100}`, both optional
 * (offset 0, limit 1,000 by default). Also taken as two numbers (`offset, limit`), as the library
 * sent them before.
 */
export const PageRequestSchema = z.strictObject({
  offset: z.number().int().nonnegative().optional(),
  limit: z.number().int().positive().optional(),
});
export type PageRequest = z.infer<typeof PageRequestSchema>;
export type PageArgs = [page?: PageRequest | number | null, limit?: number];
export const PAGE_REQUEST_SHAPE = '{"offset":0,"limit":100} (both optional)';

/** The page a paging query's arguments ask for; a wrong shape fails the query naming the expected one. */
export function pageRequest(...[page, limit]: PageArgs): { offset: number; limit: number } {
  if (typeof page === 'number' || (page == null && typeof limit === 'number')) {
    // Positional numbers are not checked by a schema: an offset that is negative, fractional or not
    // finite reads from the start, as every paging query did before the object form.
    const offset = Number(page ?? 0);
    return {
      offset: Number.isFinite(offset) ? Math.max(0, Math.floor(offset)) : 0,
      limit: Number(limit ?? Number.NaN),
    };
  }
  const parsed = PageRequestSchema.safeParse(page ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'page';
    throw new Error(`${field}: ${issue?.message ?? 'invalid'}; send one JSON object such as ${PAGE_REQUEST_SHAPE}`);
  }
  return { offset: parsed.data.offset ?? 0, limit: parsed.data.limit ?? Number.NaN };
}

/**
 * A slice workflow's (or the sync's own) non-accepted targets, at most `limit` from `offset`; a page
 * ends early at PAGE_BYTES, so callers advance by the entries they got.
 */
export const sliceEntriesQuery = defineQuery<{ total: number; entries: SliceEntryView[] }, PageArgs>('sliceEntries');

/** Warnings of a slice workflow (or of the sync itself), `limit` from `offset`. */
export const sliceWarningsQuery = defineQuery<{ total: number; warnings: Warning[] }, PageArgs>('sliceWarnings');

/** The slice workflows a sync names in `rejectedElsewhere`, `limit` from `offset` (all of them). */
export const rejectedElsewhereQuery = defineQuery<
  { total: number; slices: { workflowId: string; count: number; warnings: number }[] },
  PageArgs
>('rejectedElsewhere');

/**
 * What each handler does, as `temporal workflow metadata` and the Temporal UI show it (docs/operate.md
 * gives the commands).
 */
export const HANDLER_DESCRIPTIONS = {
  status:
    "The sync's report so far: phase, counts (submitted = pending + accepted + rejected + failed + superseded), rejections, failures, warnings, refused re-submissions. No input.",
  sliceEntries: `Non-accepted targets (rejected, failed, superseded) by page. Input: ${PAGE_REQUEST_SHAPE}. Answers {total, entries}.`,
  sliceWarnings: `Warnings by page. Input: ${PAGE_REQUEST_SHAPE}. Answers {total, warnings}.`,
  rejectedElsewhere: `Slice workflows holding rejections the report had no room for. Input: ${PAGE_REQUEST_SHAPE}. Answers {total, slices}.`,
  resubmit:
    'Re-submit corrected targets while the sync is open. Input: {"items":[{"target":{...},"fixes":"t3"}]}. A refused item shows in status.refused and the current details.',
  resubmitWithAnswer:
    'Re-submit corrected targets and get the answer. Input: {"items":[{"target":{...},"fixes":"t3"}]}. Answers {taken, refused}; a wrong shape fails at once, not retryable.',
  finish: 'Close the re-submission window now: the sync settles what is in flight and closes. No input.',
  sliceProgress: "Internal: a slice workflow's counts, signalled to its sync. Not for operators.",
} as const;

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
  /** Targets found unchanged (never sent): the sync takes them out of its `submitted`. */
  unchanged: z.number().int().nonnegative().optional(),
});
export type SliceProgress = z.infer<typeof SliceProgressSchema>;
export const sliceProgressSignal = defineSignal<[SliceProgress]>('sliceProgress');
