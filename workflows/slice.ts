/**
 * The first pass over one slice of a sync's targets: plan (validation and batching, in a local
 * activity that reads the slice), then send. Runs inside the sync for a single slice, or as a
 * child workflow per slice when the sync fans out, so no run's history grows with the catalog.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SlicePlan, SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  resolveOptions,
  type ProviderCall,
  type ResolvedOptions,
  type SliceRef,
  type SyncOptions,
  type TargetSource,
  type Warning,
  jsonBytes,
  sliceEntriesQuery,
  sliceProgressSignal,
  sliceWarningsQuery,
  statusQuery,
  type SyncPhase,
  HANDLER_DESCRIPTIONS,
  pageRequest,
} from '../contracts/index.ts';
import { counts, newLedger, receive, settle, settleUnchanged, type Entry, type Ledger } from './ledger.ts';
import { buildReport, pageEntries, pageWarnings } from './report.ts';
import { PROGRESS_EVERY_MS, progressDetails, watchProgress } from './visibility.ts';
import { createSender, type Sender } from './sender.ts';
import { runLanes, splitShares, unsettled, type LaneShare } from './lanes.ts';

export interface SliceInput {
  provider: string;
  /** Inline: the targets of these pages only (from the first page's start). A reference: the whole source. */
  source: TargetSource;
  /** Consecutive pages of the source, each planned by one activity call. */
  pages: SliceRef[];
  /** How activity summaries name this slice ("slice 3"); absent when the sync runs it itself. */
  label?: string;
  /** The slice's index in its sync (fan-out only): named in its calls, heartbeats and progress signals. */
  index?: number;
  /** How often at most the slice signals its counts to the sync (fan-out only; default 5 s). */
  progressEveryMs?: number;
  options?: SyncOptions;
  /** A later part of a slice by reference: where each lane resumes (the part before ran out of room). */
  shares?: LaneShare[];
}

export interface SliceResult {
  accepted: number;
  rejected: number;
  failed: number;
  /** Targets found unchanged (changedOnly), never sent: the sync takes them out of its `submitted`. */
  unchanged?: number;
  /** The slice's targets that were not accepted, by sequence number, as far as the budget allows. */
  entries: Record<string, Entry>;
  /** False when some entries stayed behind: the slice's `sliceEntries` query pages them all. */
  complete: boolean;
  /** The slice's warnings when they fit; else none, and its `sliceWarnings` query pages all `warningCount`. */
  warnings: Warning[];
  warningCount?: number;
  /** The first provider calls, of `callCount` in all. */
  calls: ProviderCall[];
  callCount?: number;
  abortReason?: string;
  /** The slice ended early (its history or entries reached their budget): the next part goes on from here. */
  rest?: LaneShare[];
}

/** When a part of a slice by reference stops early, so its history and results stay bounded. */
export interface PartLimit {
  stop(outcomeBytes: number): boolean;
  rest?: LaneShare[];
}

/** Runs the first pass of the pages into `ledger`; returns why the sync must end, if it must. */
export async function runSlice(input: SliceInput, ledger: Ledger, part?: PartLimit): Promise<string | undefined> {
  const opts = resolveOptions(input.options ?? {});
  const { source, pages } = input;
  if (source.kind === 'inline') return sendInline(input, source.targets, opts, ledger);
  // By reference: lanes, each keeping one call in flight (workflows/lanes.ts).
  const out = await runLanes({
    provider: input.provider,
    ref: source.ref,
    pages,
    options: opts,
    ledger,
    shares: input.shares ?? splitShares(pages.length, opts.concurrency),
    ...(input.index !== undefined ? { slice: input.index } : {}),
    ...(input.label !== undefined ? { label: input.label } : {}),
    stop: part?.stop ?? (() => false),
  });
  if (part && out.rest) part.rest = out.rest;
  return out.abortReason;
}

/** Pages never sent after an abort still count, as failed, so the counts add up. */
function failPages(ledger: Ledger, pages: SliceRef[], code: string, message: string, received = false): void {
  pages.forEach((p, i) => {
    if (!(received && i === 0)) receive(ledger, p.firstSeq, p.count);
    for (let n = 0; n < p.count; n += 1) settle(ledger, p.firstSeq + n, 'failed', { code, message });
  });
}

/** An inline slice: each page planned while the previous one's batches are already being sent. */
async function sendInline(
  input: SliceInput,
  targets: unknown[],
  opts: ResolvedOptions,
  ledger: Ledger,
): Promise<string | undefined> {
  const { pages } = input;
  const { planSlice } = proxyLocalActivities<SyncActivities>({
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  const base = pages[0]?.start ?? 0;
  let batchNumber = 0;
  let totalBatches = 0;
  let planned = 0;
  const sender = createSender({
    provider: input.provider,
    options: opts,
    ledger,
    ...(input.index !== undefined ? { slice: input.index } : {}),
    nextBatchNumber: () => (batchNumber += 1),
    summary: (n, size) =>
      `${input.provider} batch ${n}/${totalBatches}${planned < pages.length ? '+' : ''}` +
      `${input.label !== undefined ? ` of ${input.label}` : ''}, ${size} targets`,
    // Inline targets are sent from the ledger.
    batchRef: (batch) => ({ kind: 'inline', targets: batch.map((s) => ledger.entries[s]?.target) }),
  });
  for (const page of pages) {
    if (sender.abortReason() !== undefined) break;
    planned += 1;
    const pageTargets = targets.slice(page.start - base, page.end - base);
    receive(ledger, page.firstSeq, pageTargets);
    let plan;
    try {
      plan = await planSlice({
        provider: input.provider,
        source: { kind: 'inline', targets: pageTargets },
        slice: page,
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
        ...(opts.changedOnly ? { changedOnly: true } : {}),
      });
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const message = cause instanceof Error ? cause.message : String(err);
      const type = cause instanceof ApplicationFailure && cause.type ? cause.type : FailureType.SyncAborted;
      failPages(ledger, pages.slice(pages.indexOf(page)), type, `not sent: ${message}`, true);
      await condition(sender.idle);
      return message;
    }
    totalBatches += plan.batches.length;
    enqueuePlan(ledger, sender, page, plan);
  }
  await condition(sender.idle);
  const abort = sender.abortReason();
  if (abort !== undefined) failPages(ledger, pages.slice(planned), FailureType.SyncAborted, `not sent: ${abort}`);
  return abort;
}

/** A planned page: its validation rejections into the ledger, its batches to the sender. */
function enqueuePlan(ledger: Ledger, sender: Sender, page: SliceRef, plan: SlicePlan): void {
  for (const r of plan.rejections) {
    settle(ledger, r.seq, 'rejected', {
      code: r.code,
      message: r.message,
      origin: 'validation',
      ...(r.identity !== undefined ? { identity: r.identity } : {}),
      ...(r.target !== undefined ? { target: r.target } : {}),
      ...(r.line !== undefined ? { line: r.line } : {}),
    });
  }
  // Unchanged targets (changedOnly) are never sent: out of `submitted`, into `unchanged`.
  if (plan.unchanged) settleUnchanged(ledger, plan.unchanged);
  const seqs = Array.from({ length: page.count }, (_, i) => page.firstSeq + i);
  sender.enqueue(
    plan.batches.map((ranges) => ranges.flatMap(([from, to]) => seqs.slice(from - page.firstSeq, to - page.firstSeq))),
  );
}

/** Results stay well under Temporal's payload limits: entries past this stay here, paged by query. */
const RESULT_ENTRY_BYTES = 128 * 1024;
const RESULT_WARNING_BYTES = 16 * 1024;
const RESULT_CALLS = 50;

/** A part of a slice stops once its lanes brought this many bytes of outcomes, or its history grew this long. */
const PART_OUTCOME_BYTES = 1536 * 1024;
const PART_EVENTS = 4_000;

export async function syncSliceWorkflow(input: SliceInput): Promise<SliceResult> {
  const ledger = newLedger();
  const shares = input.shares;
  ledger.submitted = shares
    ? shares.reduce((n, s) => n + unsettled(input.pages, s), 0)
    : input.pages.reduce((n, p) => n + p.count, 0);
  const part: PartLimit = {
    stop: (bytes) =>
      bytes >= PART_OUTCOME_BYTES ||
      workflowInfo().historyLength >= PART_EVENTS ||
      workflowInfo().continueAsNewSuggested,
  };
  // Entries and warnings that do not fit in the result stay readable here, by page, for listRejected().
  setHandler(sliceEntriesQuery, (...page) => pageEntries(ledger, pageRequest(...page)), {
    description: HANDLER_DESCRIPTIONS.sliceEntries,
  });
  setHandler(sliceWarningsQuery, (...page) => pageWarnings(ledger.warnings, pageRequest(...page)), {
    description: HANDLER_DESCRIPTIONS.sliceWarnings,
  });
  const state: { phase: SyncPhase; abortReason?: string } = { phase: 'sending' };
  // The slice's own counts, bounded like the sync's report.
  setHandler(
    statusQuery,
    () =>
      buildReport(
        {
          workflowId: workflowInfo().workflowId,
          provider: input.provider,
          phase: state.phase,
          counts: counts(ledger),
          firstPassSettled: state.phase === 'closed',
          ...(state.abortReason !== undefined ? { abortReason: state.abortReason } : {}),
        },
        ledger,
      ),
    { description: HANDLER_DESCRIPTIONS.status },
  );
  const name = input.label ?? 'slice';
  setCurrentDetails(`${name}: sending, ${progressDetails(counts(ledger))}`);
  void reportProgress(input, ledger, () => state.phase === 'sending');
  const abortReason = await runSlice(input, ledger, part);
  state.phase = 'closed';
  if (abortReason !== undefined) state.abortReason = abortReason;
  setCurrentDetails(
    `${name}: closed, ${progressDetails(counts(ledger))}${abortReason !== undefined ? `; aborted: ${abortReason}` : ''}`,
  );
  const result = sliceResult(ledger, abortReason);
  if (part.rest && abortReason === undefined) result.rest = part.rest;
  return result;
}

/**
 * While the slice sends: its details, and its counts signalled to the sync that started it, at
 * most once per `progressEveryMs` and only when they moved. Counts only: a few dozen bytes each.
 */
async function reportProgress(input: SliceInput, ledger: Ledger, active: () => boolean): Promise<void> {
  const parent = workflowInfo().parent;
  const name = input.label ?? 'slice';
  let lastAt = 0; // the first counts that move are signalled at once
  const settled = () => {
    const c = counts(ledger);
    return c.submitted - c.pending;
  };
  await watchProgress({
    active,
    settled,
    lastAt: () => lastAt,
    everyMs: Math.max(PROGRESS_EVERY_MS, input.progressEveryMs ?? 0),
    tick: async () => {
      lastAt = Date.now();
      const c = counts(ledger);
      setCurrentDetails(`${name}: sending, ${progressDetails(c)}`);
      if (!parent || input.index === undefined) return;
      const progress = {
        slice: input.index,
        accepted: c.accepted,
        rejected: c.rejected,
        failed: c.failed,
        ...(c.unchanged > 0 ? { unchanged: c.unchanged } : {}),
      };
      try {
        await getExternalWorkflowHandle(parent.workflowId).signal(sliceProgressSignal, progress);
      } catch {
        // The sync has gone (closed or reset): progress has nobody to tell; the slice sends on.
      }
    },
  });
}

function sliceResult(ledger: Ledger, abortReason: string | undefined): SliceResult {
  const all = Object.entries(ledger.entries);
  const entries: Record<string, Entry> = {};
  let bytes = 0;
  let complete = true;
  for (const [seq, e] of all) {
    const size = jsonBytes(e) + seq.length + 4;
    if (bytes + size > RESULT_ENTRY_BYTES) {
      complete = false;
      break;
    }
    bytes += size;
    entries[seq] = e;
  }
  let warnings = ledger.warnings;
  if (jsonBytes(warnings) > RESULT_WARNING_BYTES) {
    warnings = [];
    complete = false;
  }
  const c = counts(ledger);
  return {
    accepted: ledger.accepted,
    rejected: c.rejected,
    failed: c.failed,
    ...(c.unchanged > 0 ? { unchanged: c.unchanged } : {}),
    entries,
    complete,
    warnings,
    warningCount: ledger.warnings.length,
    calls: ledger.calls.slice(0, RESULT_CALLS),
    callCount: ledger.calls.length + (ledger.omittedCalls ?? 0),
    ...(abortReason !== undefined ? { abortReason } : {}),
  };
}
