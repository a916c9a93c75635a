/**
 * The sync workflow: one per sync request, read in phases over one state object (sync-run.ts):
 *
 *   scan           how many targets, cut into pages (one planning call each) and slices of pages
 *   first pass     in this run for one slice, or one child workflow per slice for a large sync,
 *                  continuing as new every few slices so history stays bounded
 *   window         open for corrected re-submissions until nothing is left to fix, the window
 *                  ends, or the caller says finish
 *   close          settle what is in flight, publish, release the spool, alert, report
 *
 * Handlers are registered in one place (sync-handlers.ts). Deterministic: all I/O is in
 * activities; time is Temporal's.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import {
  CARRY_BYTES,
  FailureType,
  SyncOptionsSchema,
  formatCount,
  jsonBytes,
  packPages,
  resolveOptions,
  unpackPages,
  type SliceRef,
  type SyncInput,
  type SyncReport,
  type TargetSource,
} from '../contracts/index.ts';
import { addCalls, counts, markUnchanged } from './ledger.ts';
import { carriedLedgerBytes, compactForCarry } from './report.ts';
import { progressDetails, recordOutcome, sliceAttributes, watchProgress } from './visibility.ts';
import { runSlice, syncSliceWorkflow, type SliceResult } from './slice.ts';
import type { LaneShare } from './lanes.ts';
import { releaseSpooledSource } from './release.ts';
import { alertClosedSync } from './alerts.ts';
import { carryOf, createSyncRun, type SyncRun } from './sync-run.ts';
import { CARRY_RESERVE, registerSyncHandlers } from './sync-handlers.ts';

/** Bytes of entries and warnings a sync keeps itself; past this, a slice's stay in its own workflow. */
const INLINE_BYTES = 128 * 1024;
/** Targets a sync sends itself, in one slice, at most: more fan out to slice workflows. */
const SINGLE_SLICE_TARGETS = 10_000;
/** Slice workflows one sync fans out to, at most (rounded up to a multiple of `concurrency`). */
const MAX_SLICES = 1000;

export async function syncWorkflow(input: SyncInput): Promise<SyncReport> {
  const parsed = SyncOptionsSchema.safeParse(input.options ?? {});
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: FailureType.InvalidSyncRequest,
      nonRetryable: true,
      message: `invalid sync options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    });
  }
  const run = createSyncRun(input, parsed.data, resolveOptions(parsed.data));
  registerSyncHandlers(run);
  await scan(run);
  await firstPass(run);
  await resubmissionWindow(run);
  return close(run);
}

/** How many targets, cut into pages; then the slices, and progress shown while sending. */
async function scan(run: SyncRun): Promise<void> {
  const { state, source, pageSize } = run;
  if (!run.continued) {
    if (source.kind === 'inline') {
      const n = source.targets.length;
      for (let start = 0; start < n; start += pageSize) {
        const count = Math.min(pageSize, n - start);
        state.slices.push({
          index: state.slices.length,
          firstSeq: start,
          count,
          start,
          end: start + count,
          firstLine: start + 1,
        });
      }
    } else {
      try {
        state.slices = unpackPages((await run.activities.scanSource({ ref: source.ref, sliceSize: pageSize })).pages);
      } catch (err) {
        state.abortReason = (err as ApplicationFailure).cause?.message ?? (err as Error).message;
      }
    }
    state.ledger.submitted = state.slices.reduce((n, s) => n + s.count, 0);
    state.phase = 'sending';
  }
  run.show(`sending ${state.ledger.submitted} targets`);
  // While sending, details and search attributes follow the counts, at most once per 5 s.
  void watchProgress({
    active: () => state.phase === 'sending',
    settled: () => {
      const c = run.current();
      return c.submitted - c.pending;
    },
    lastAt: () => state.published.at ?? 0,
    tick: () => run.show(`sending: ${progressDetails(run.current())}${run.live.describe(state.groups.length)}`),
  });
  state.groups = cutSlices(run);
}

/**
 * The slices: consecutive pages of up to `sliceSize` targets, one child workflow each. When the
 * sync fans out, a multiple of `concurrency` slices of near-equal size, so every slot has about
 * the same work and none sits idle while the last slices finish.
 */
function cutSlices(run: SyncRun): SliceRef[][] {
  const { slices } = run.state;
  const pagesPerSlice = Math.max(1, Math.floor(run.opts.sliceSize / run.pageSize));
  // At most MAX_SLICES slice workflows (about that many): a larger catalog gets larger slices,
  // so the list of slices a sync names and carries across runs stays bounded.
  let count = Math.min(MAX_SLICES, Math.ceil(slices.length / pagesPerSlice));
  // Past SINGLE_SLICE_TARGETS the sync fans out to at least one slice per lane, so no run's history holds them all.
  const total = slices.reduce((n, p) => n + p.count, 0);
  if (count > 1 || total > SINGLE_SLICE_TARGETS) count = run.opts.concurrency * Math.ceil(count / run.opts.concurrency);
  count = Math.max(1, Math.min(count, slices.length));
  const groups: SliceRef[][] = [];
  for (let i = 0; i < count; i += 1) {
    const group = slices.slice(Math.floor((i * slices.length) / count), Math.floor(((i + 1) * slices.length) / count));
    if (group.length > 0) groups.push(group);
  }
  return groups;
}

/** Every original target sent and answered: in this run for one slice, else in slice workflows. */
async function firstPass(run: SyncRun): Promise<void> {
  const { state } = run;
  const only = state.groups[0];
  if (state.abortReason === undefined && state.groups.length === 1 && state.nextSlice === 0 && only) {
    // One slice: no child workflow, the fastest path from submit to the first provider call.
    state.abortReason = await runSlice(
      { provider: run.provider, source: run.source, pages: only, options: run.opts },
      state.ledger,
    );
    state.nextSlice = 1;
  } else {
    await fanOut(run);
  }
  if (state.abortReason !== undefined) {
    // Slices never started are counted as failed, so the report still adds up.
    const unsent = state.groups.slice(state.nextSlice).reduce((n, g) => n + g.reduce((m, p) => m + p.count, 0), 0);
    if (unsent > 0) state.ledger.elsewhere.push({ rejected: 0, failed: unsent });
  }
  await condition(run.idle);
  state.firstPassSettled = true;
}

/**
 * K slices at once, one call in flight each: while one slice plans or closes, the others send, so
 * the provider sees close to K calls at a time and never more. Past `slicesPerRun` (or when
 * Temporal suggests it) the run continues as new, carrying cursors and counts, not targets.
 */
async function fanOut(run: SyncRun): Promise<void> {
  const { state, opts } = run;
  state.fanningOut = true;
  const childrenAtOnce = opts.concurrency;
  let running = 0;
  let startedThisRun = 0;
  while (state.nextSlice < state.groups.length && state.abortReason === undefined) {
    await condition(() => running < childrenAtOnce);
    if (startedThisRun >= opts.slicesPerRun || workflowInfo().continueAsNewSuggested) break;
    const index = state.nextSlice;
    const group = state.groups[index];
    state.nextSlice += 1;
    if (!group) continue;
    running += 1;
    startedThisRun += 1;
    void runSliceChild(run, index, group).finally(() => {
      running -= 1;
    });
  }
  await condition(() => running === 0);
  if (state.nextSlice < state.groups.length && state.abortReason === undefined) {
    // History stays bounded: the next run carries cursors and counts, not targets.
    await condition(() => run.idle() && allHandlersFinished());
    compactForCarry(state.ledger, workflowInfo().workflowId);
    const next = carryOf(run);
    const bytes = jsonBytes(next);
    if (bytes > CARRY_BYTES) log.warn('carried state over its budget', { bytes, budget: CARRY_BYTES });
    await continueAsNew<typeof syncWorkflow>({ ...run.input, carried: next });
  }
  state.fanningOut = false;
}

/** One slice as a child workflow; a slice by reference whose part ran out of room goes on in another part. */
async function runSliceChild(run: SyncRun, index: number, group: SliceRef[]): Promise<void> {
  const { state, live } = run;
  const firstId = `${workflowInfo().workflowId}/slice-${index}`;
  // Each slice signals its counts at most this often: the sync gets about one signal a second or less.
  const progressEveryMs = Math.max(5_000, run.opts.concurrency * 1_250);
  let count = group.reduce((n, p) => n + p.count, 0);
  let shares: LaneShare[] | undefined;
  for (let part = 0; ; part += 1) {
    const workflowId = part === 0 ? firstId : `${firstId}-part-${part}`;
    live.start(index, count);
    try {
      const result = await executeChild(syncSliceWorkflow, {
        workflowId,
        args: [
          {
            provider: run.provider,
            source: sliceSource(run.source, group),
            pages: group,
            options: { ...run.opts, concurrency: 1 },
            label: part === 0 ? `slice ${index}` : `slice ${index} part ${part}`,
            index,
            progressEveryMs,
            ...(shares ? { shares } : {}),
          },
        ],
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        ...sliceAttributes(),
        staticSummary:
          `slice ${index}${part === 0 ? '' : ` part ${part}`} of ${workflowInfo().workflowId}: ` +
          `${formatCount(count)} targets`,
      });
      live.end(index);
      mergeSlice(run, result, workflowId);
      if (!result.rest || result.abortReason !== undefined) return;
      shares = result.rest;
      count -= result.accepted + result.rejected + result.failed + (result.unchanged ?? 0);
    } catch (err) {
      const message = err instanceof ChildWorkflowFailure ? (err.cause?.message ?? err.message) : String(err);
      live.end(index);
      state.ledger.elsewhere.push({ rejected: 0, failed: count, workflowId });
      state.abortReason ??= `slice ${index} failed: ${message}`;
      return;
    }
  }
}

const sliceSource = (source: TargetSource, group: SliceRef[]): TargetSource =>
  source.kind === 'inline'
    ? { kind: 'inline', targets: source.targets.slice(group[0]?.start ?? 0, group[group.length - 1]?.end ?? 0) }
    : source;

/** A slice's outcome joins this run's report while it fits; past that it stays with the slice. */
function mergeSlice(run: SyncRun, result: SliceResult, workflowId: string): void {
  const { state } = run;
  const { ledger } = state;
  ledger.accepted += result.accepted;
  markUnchanged(ledger, result.unchanged ?? 0); // never sent: out of `submitted`
  addCalls(ledger, result.calls, result.callCount ?? result.calls.length);
  const bytes = jsonBytes(result.entries) + jsonBytes(result.warnings);
  // Merged only while the state this run may carry to the next stays under CARRY_BYTES.
  const carriedAfter =
    carriedLedgerBytes(ledger) + bytes + jsonBytes(packPages(state.slices, run.pageSize)) + CARRY_RESERVE;
  if (result.complete && state.inlineBytes + bytes <= INLINE_BYTES && carriedAfter <= CARRY_BYTES) {
    state.inlineBytes += bytes;
    for (const [seq, e] of Object.entries(result.entries)) ledger.entries[seq] = e;
    ledger.warnings.push(...result.warnings);
  } else {
    ledger.elsewhere.push({
      workflowId,
      rejected: result.rejected,
      failed: result.failed,
      warnings: result.warningCount ?? result.warnings.length,
    });
  }
  if (result.abortReason !== undefined && state.abortReason === undefined) state.abortReason = result.abortReason;
}

/** Open for re-submission until nothing is left to fix, the window ends, or the caller says finish. */
async function resubmissionWindow(run: SyncRun): Promise<void> {
  const { state, resubmissions } = run;
  if (state.abortReason !== undefined) return;
  const nothingToFix = () => {
    const c = counts(state.ledger);
    return c.rejected === 0 && c.failed === 0;
  };
  state.phase = 'open';
  const endsAt = Date.now() + msToNumber(run.opts.resubmissionWindow); // Temporal's clock in workflows
  state.windowEndsAt = endsAt;
  for (;;) {
    const c = counts(state.ledger);
    run.show(
      `open for re-submission until ${new Date(endsAt).toISOString()}: ${c.rejected} rejected and ${c.failed} failed to fix` +
        (c.pending > 0 ? `, ${c.pending} re-submitted in flight` : ''),
    );
    if (resubmissions.abortReason() !== undefined) break;
    if (state.finishRequested) {
      state.closedReason = 'finished';
      break;
    }
    if (run.idle() && nothingToFix()) {
      state.closedReason = 'nothing-to-fix';
      break;
    }
    const remaining = endsAt - Date.now();
    if (remaining <= 0) {
      state.closedReason = 'window-ended';
      break;
    }
    // Also wakes when counts change, so the UI's details and search attributes stay current.
    const shown = counts(state.ledger);
    const moved = () => {
      const now = counts(state.ledger);
      return now.pending !== shown.pending || now.submitted !== shown.submitted;
    };
    await condition(
      () =>
        state.finishRequested || resubmissions.abortReason() !== undefined || (run.idle() && nothingToFix()) || moved(),
      remaining,
    );
  }
}

/** Settles what is in flight, then publishes, releases the spool, alerts and reports. */
async function close(run: SyncRun): Promise<SyncReport> {
  const { state, provider } = run;
  state.closing = true;
  await condition(() => run.idle() && allHandlersFinished());
  state.phase = 'closed';
  state.abortReason ??= run.resubmissions.abortReason();
  const abortReason = state.abortReason;
  run.show(abortReason !== undefined ? `aborted: ${abortReason}` : `closed: ${state.closedReason ?? 'finished'}`);
  recordOutcome(provider, counts(state.ledger));
  log.info('sync closed', {
    provider,
    closedReason: abortReason !== undefined ? 'aborted' : state.closedReason,
    ...counts(state.ledger),
  });
  await releaseSpooledSource(run.source); // a spooled source is the sync's own: gone once it closes
  // Aborted, or over its alert threshold: the webhook hears of it (an alert never fails the sync).
  await alertClosedSync({
    workflowId: workflowInfo().workflowId,
    provider,
    counts: counts(state.ledger),
    ...(run.options.alertThreshold !== undefined ? { threshold: run.options.alertThreshold } : {}),
    ...(abortReason !== undefined ? { abortReason } : {}),
  });
  if (abortReason !== undefined) {
    state.closedReason = 'aborted';
    throw ApplicationFailure.create({
      type: FailureType.SyncAborted,
      nonRetryable: true,
      message: abortReason,
      details: [run.report()],
    });
  }
  return run.report();
}

export { syncSliceWorkflow };
