/**
 * The sync workflow: one per sync request. Scans the source, runs the first pass (in this run for
 * one slice, or as one child workflow per slice for a large sync, continuing as new every few
 * slices so history stays bounded), then stays open for corrected re-submissions until nothing is
 * left to fix, the window ends, or the caller says finish. Deterministic: all I/O is in
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
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { SyncActivities } from '../activities/index.ts';
import {
  CARRY_BYTES,
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  SyncOptionsSchema,
  checkResubmission,
  formatCount,
  jsonBytes,
  packPages,
  unpackPages,
  rejectedElsewhereQuery,
  sliceEntriesQuery,
  sliceWarningsQuery,
  finishSignal,
  resolveOptions,
  resubmitSignal,
  resubmitUpdate,
  sliceProgressSignal,
  statusQuery,
  type Carried,
  type ClosedReason,
  type RefusedItem,
  type Resubmission,
  type ResubmissionAnswer,
  type SliceRef,
  type TargetSource,
  type SyncInput,
  type SyncPhase,
  type SyncReport,
  HANDLER_DESCRIPTIONS,
  clipText,
  pageRequest,
} from '../contracts/index.ts';
import { addCalls, addRefused, counts, newLedger, type Ledger } from './ledger.ts';
import {
  boundAnswer,
  buildReport,
  carriedLedgerBytes,
  compactForCarry,
  expandCarried,
  pageEntries,
  pageWarnings,
} from './report.ts';
import { takeResubmission } from './resubmission.ts';
import {
  progressDetails,
  publish,
  sliceAttributes,
  recordOutcome,
  watchProgress,
  type Published,
} from './visibility.ts';
import { createLiveSlices } from './progress.ts';
import { createSender } from './sender.ts';
import { runSlice, syncSliceWorkflow, type SliceResult } from './slice.ts';
import type { LaneShare } from './lanes.ts';
import { releaseSpooledSource } from './release.ts';
import { alertClosedSync } from './alerts.ts';

/** Bytes of entries and warnings a sync keeps itself; past this, a slice's stay in its own workflow. */
const INLINE_BYTES = 128 * 1024;
/** Targets a planning call reads and validates at most: keeps every planning result (a local activity marker) well under 256 KB. */
const PAGE = 1000;
/** Room kept in the carried state for the slices it names (about 1,000 at ~45 bytes) and short lists. */
const CARRY_RESERVE = 64 * 1024;
/** Targets a sync sends itself, in one slice, at most: more fan out to slice workflows. */
const SINGLE_SLICE_TARGETS = 10_000;
/** Slice workflows one sync fans out to, at most (rounded up to a multiple of `concurrency`). */
const MAX_SLICES = 1000;
/** What one re-submitted target may add to the carried ledger once settled (no echo, message cut). */
const CARRIED_BYTES_PER_ITEM = 400;

export async function syncWorkflow(input: SyncInput): Promise<SyncReport> {
  const parsedOptions = SyncOptionsSchema.safeParse(input.options ?? {});
  if (!parsedOptions.success) {
    throw ApplicationFailure.create({
      type: FailureType.InvalidSyncRequest,
      nonRetryable: true,
      message: `invalid sync options: ${parsedOptions.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    });
  }
  const opts = resolveOptions(parsedOptions.data);
  /** Targets a page (one planning call) holds. */
  const pageSize = Math.min(PAGE, opts.sliceSize);
  const { provider, source } = input;
  const carried = input.carried;

  const { planTargets } = proxyLocalActivities<SyncActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  // A re-submission is planned by a regular activity: a local one awaited in a signal or update
  // handler, resolved in another workflow task than the one that started it, is replayed in a
  // different command order, and a worker that replays the sync (after a crash) fails it as
  // nondeterministic (`npm run chaos`, docs/reliability.md).
  const { planTargets: planResubmission } = proxyActivities<SyncActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  const { scanSource } = proxyActivities<SyncActivities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '1 minute',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.InvalidSyncRequest] },
  });

  const ledger: Ledger = carried ? expandCarried(carried.ledger, workflowInfo().workflowId) : newLedger();
  let slices: SliceRef[] = carried?.pages ? unpackPages(carried.pages) : (carried?.slices ?? []);
  let nextSlice = carried?.nextSlice ?? 0;
  let phase: SyncPhase = carried ? 'sending' : 'validating';
  let firstPassSettled = false;
  let windowEndsAt: number | undefined;
  let closedReason: ClosedReason | undefined;
  let abortReason: string | undefined;
  let finishRequested = carried?.finishRequested ?? false;
  let closing = false;
  let resubmitBatch = 0;
  let inlineBytes = carried?.inlineBytes ?? 0;
  let published: Published = {};
  // Slices running now, with the counts they last signalled: shown until each closes.
  const live = createLiveSlices();
  const current = () => live.counts(counts(ledger));
  let shown = '';
  /** Why the last re-submission signal was refused: signals have no answer, so the details say it. */
  let refusal: string | undefined;
  const show = (details: string) => {
    shown = details;
    const line = refusal !== undefined ? `${details}; last re-submission signal refused: ${refusal}` : details;
    published = publish(published, phase, current(), line);
  };
  const refusedSignal = (message: string) => {
    refusal = clipText(message, 300);
    show(shown);
  };

  // Every report (result, `status` answer, SyncAborted details) is built under REPORT_BYTES; what
  // does not fit is paged by the queries below and named in `rejectedElsewhere` and `omitted`.
  const report = (): SyncReport =>
    buildReport(
      {
        workflowId: workflowInfo().workflowId,
        provider,
        phase,
        counts: current(),
        firstPassSettled,
        ...(windowEndsAt !== undefined ? { windowEndsAt: new Date(windowEndsAt).toISOString() } : {}),
        ...(closedReason !== undefined ? { closedReason } : {}),
        ...(abortReason !== undefined ? { abortReason } : {}),
      },
      ledger,
    );

  // Re-submitted targets are few and inline: this run sends them itself.
  const resubmissions = createSender({
    provider,
    options: opts,
    ledger,
    nextBatchNumber: () => (resubmitBatch += 1),
    summary: (n, size) => `${provider} re-submission batch ${n}, ${size} targets`,
    batchRef: (batch) => ({ kind: 'inline', targets: batch.map((seq) => ledger.entries[seq]?.target) }),
  });
  const idle = () => resubmissions.idle();
  /** Targets the sync received from its source (re-submissions come after them). */
  const originals = () => slices.reduce((n, p) => n + p.count, 0);

  /** Set while this run starts slices: until the last has started, it may continue as new. */
  let fanningOut = false;
  /** True while this run may still continue as new: what re-submissions add is carried. */
  const mayContinue = () => fanningOut && nextSlice < groups.length;
  /** Why this sync cannot take the re-submission now, if it cannot. */
  const cannotTake = (resubmission: Resubmission): { code: string; message: string } | undefined => {
    if (closing) {
      return { code: 'sync_closed', message: 'the sync has closed its re-submission window; start a new sync' };
    }
    if (mayContinue()) {
      const after =
        carriedLedgerBytes(ledger) +
        jsonBytes(packPages(slices, pageSize)) +
        CARRY_RESERVE +
        // Settled before any continue-as-new: targets are not carried, only entries without echoes.
        resubmission.items.length * CARRIED_BYTES_PER_ITEM;
      if (after > CARRY_BYTES) {
        return {
          code: 'sync_state_full',
          message:
            `this sync is still in its first pass and the state it carries from run to run is full (limit ${formatCount(CARRY_BYTES)} bytes); ` +
            're-submit after the first pass has settled (status firstPassSettled: true), or in smaller re-submissions',
        };
      }
    }
    return undefined;
  };
  const refuseAll = (resubmission: Resubmission, why: { code: string; message: string }): ResubmissionAnswer => {
    const refused: RefusedItem[] = resubmission.items.map((item, index) => ({
      index,
      ...why,
      ...(item.fixes !== undefined ? { fixes: item.fixes } : {}),
    }));
    addRefused(ledger, refused);
    return boundAnswer({ taken: [], refused });
  };

  const resubmit = async (resubmission: Resubmission): Promise<ResubmissionAnswer> => {
    const why = cannotTake(resubmission);
    if (why) return refuseAll(resubmission, why);
    const plan = await (patched('resubmission-planned-by-activity') ? planResubmission : planTargets)({
      provider,
      targets: resubmission.items.map((item, seq) => ({ seq, target: item.target })),
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    });
    // Checked again: other re-submissions may have filled the carried state while this one was planned.
    const late = mayContinue() ? cannotTake(resubmission) : undefined;
    if (late) return refuseAll(resubmission, late);
    const { answer, batches } = takeResubmission(ledger, resubmission, plan, originals());
    resubmissions.enqueue(batches);
    return boundAnswer(answer);
  };

  const d = HANDLER_DESCRIPTIONS;
  setHandler(statusQuery, report, { description: d.status });
  // The sync's own entries and warnings, by page: what its report had no room for.
  setHandler(sliceEntriesQuery, (...page) => pageEntries(ledger, pageRequest(...page)), {
    description: d.sliceEntries,
  });
  setHandler(sliceWarningsQuery, (...page) => pageWarnings(ledger.warnings, pageRequest(...page)), {
    description: d.sliceWarnings,
  });
  setHandler(
    rejectedElsewhereQuery,
    (...page) => {
      const all = ledger.elsewhere.flatMap((x) =>
        x.workflowId ? [{ workflowId: x.workflowId, count: x.rejected + x.failed, warnings: x.warnings ?? 0 }] : [],
      );
      const { offset, limit } = pageRequest(...page);
      const n = Number.isFinite(limit) ? Math.min(1000, Math.max(1, Math.floor(limit))) : 1000;
      return { total: all.length, slices: all.slice(offset, offset + n) };
    },
    { description: d.rejectedElsewhere },
  );
  setHandler(sliceProgressSignal, live.update, { description: d.sliceProgress });
  setHandler(
    finishSignal,
    () => {
      finishRequested = true;
    },
    { description: d.finish },
  );
  setHandler(
    resubmitSignal,
    async (raw) => {
      // The payload is in history already: an over-limit or malformed one is refused once, as a whole.
      const checked = checkResubmission(raw);
      if (!checked.success) {
        addRefused(ledger, [{ index: -1, code: 'invalid_resubmission', message: checked.message }]);
        refusedSignal(checked.message);
        return;
      }
      await resubmit(checked.data);
    },
    { description: d.resubmit },
  );
  setHandler(resubmitUpdate, resubmit, {
    description: d.resubmitWithAnswer,
    // Rejected updates never enter history: the caller gets the reason at once.
    validator: (raw) => {
      const checked = checkResubmission(raw);
      if (!checked.success) {
        throw ApplicationFailure.create({
          type: FailureType.InvalidResubmission,
          nonRetryable: true,
          message: `invalid re-submission: ${checked.message}`,
        });
      }
      if (closing) {
        throw ApplicationFailure.create({
          type: FailureType.InvalidResubmission,
          nonRetryable: true,
          message: 'the sync has closed its re-submission window; start a new sync',
        });
      }
    },
  });

  // ---- Scan: how many targets, cut into pages (one planning call each) and slices of pages. ----
  if (!carried) {
    if (source.kind === 'inline') {
      const n = source.targets.length;
      for (let start = 0; start < n; start += pageSize) {
        const count = Math.min(pageSize, n - start);
        slices.push({ index: slices.length, firstSeq: start, count, start, end: start + count, firstLine: start + 1 });
      }
    } else {
      try {
        slices = unpackPages((await scanSource({ ref: source.ref, sliceSize: pageSize })).pages);
      } catch (err) {
        abortReason = (err as ApplicationFailure).cause?.message ?? (err as Error).message;
      }
    }
    ledger.submitted = slices.reduce((n, s) => n + s.count, 0);
    phase = 'sending';
  }
  show(`sending ${ledger.submitted} targets`);
  // While sending, details and search attributes follow the counts, at most once per 5 s.
  void watchProgress({
    active: () => phase === 'sending',
    settled: () => {
      const c = current();
      return c.submitted - c.pending;
    },
    lastAt: () => published.at ?? 0,
    tick: () => show(`sending: ${progressDetails(current())}${live.describe(groups.length)}`),
  });

  /** The slices: consecutive pages of up to `sliceSize` targets, one child workflow each. */
  const groups: SliceRef[][] = [];
  {
    // When the sync fans out, a multiple of `concurrency` slices of near-equal size, so every slot
    // has about the same work and none sits idle while the last slices finish.
    const pagesPerSlice = Math.max(1, Math.floor(opts.sliceSize / pageSize));
    // At most MAX_SLICES slice workflows (about that many): a larger catalog gets larger slices,
    // so the list of slices a sync names and carries across runs stays bounded.
    let count = Math.min(MAX_SLICES, Math.ceil(slices.length / pagesPerSlice));
    // Past SINGLE_SLICE_TARGETS the sync fans out to at least one slice per lane, so no run's history holds them all.
    const total = slices.reduce((n, p) => n + p.count, 0);
    if (count > 1 || total > SINGLE_SLICE_TARGETS) count = opts.concurrency * Math.ceil(count / opts.concurrency);
    count = Math.max(1, Math.min(count, slices.length));
    for (let i = 0; i < count; i += 1) {
      const group = slices.slice(
        Math.floor((i * slices.length) / count),
        Math.floor(((i + 1) * slices.length) / count),
      );
      if (group.length > 0) groups.push(group);
    }
  }
  const groupSource = (group: SliceRef[]): TargetSource =>
    source.kind === 'inline'
      ? { kind: 'inline', targets: source.targets.slice(group[0]?.start ?? 0, group[group.length - 1]?.end ?? 0) }
      : source;

  /** A slice's outcome joins this run's report while it fits; past that it stays with the slice. */
  const merge = (result: SliceResult, workflowId: string) => {
    ledger.accepted += result.accepted;
    addCalls(ledger, result.calls, result.callCount ?? result.calls.length);
    const bytes = jsonBytes(result.entries) + jsonBytes(result.warnings);
    // Merged only while the state this run may carry to the next stays under CARRY_BYTES.
    const carriedAfter = carriedLedgerBytes(ledger) + bytes + jsonBytes(packPages(slices, pageSize)) + CARRY_RESERVE;
    if (result.complete && inlineBytes + bytes <= INLINE_BYTES && carriedAfter <= CARRY_BYTES) {
      inlineBytes += bytes;
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
    if (result.abortReason !== undefined && abortReason === undefined) abortReason = result.abortReason;
  };

  // ---- First pass. ----
  if (abortReason === undefined && groups.length === 1 && nextSlice === 0 && groups[0]) {
    // One slice: no child workflow, the fastest path from submit to the first provider call.
    abortReason = await runSlice({ provider, source, pages: groups[0], options: opts }, ledger);
    nextSlice = 1;
  } else {
    fanningOut = true;
    // K slices at once, one call in flight each: while one slice plans or closes, the others
    // send, so the provider sees close to K calls at a time and never more.
    const childrenAtOnce = opts.concurrency;
    const perChild = { ...opts, concurrency: 1 };
    // Each slice signals its counts at most this often: the sync gets about one signal a second or less.
    const progressEveryMs = Math.max(5_000, childrenAtOnce * 1_250);
    let running = 0;
    let startedThisRun = 0;
    const runChild = async (index: number, group: SliceRef[]) => {
      const firstId = `${workflowInfo().workflowId}/slice-${index}`;
      let count = group.reduce((n, p) => n + p.count, 0);
      // A slice by reference whose part ran out of room goes on in another part, from its lanes' cursors.
      let shares: LaneShare[] | undefined;
      for (let part = 0; ; part += 1) {
        const workflowId = part === 0 ? firstId : `${firstId}-part-${part}`;
        live.start(index, count);
        try {
          const result = await executeChild(syncSliceWorkflow, {
            workflowId,
            args: [
              {
                provider,
                source: groupSource(group),
                pages: group,
                options: perChild,
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
          merge(result, workflowId);
          if (!result.rest || result.abortReason !== undefined) return;
          shares = result.rest;
          count -= result.accepted + result.rejected + result.failed;
        } catch (err) {
          const message = err instanceof ChildWorkflowFailure ? (err.cause?.message ?? err.message) : String(err);
          live.end(index);
          ledger.elsewhere.push({ rejected: 0, failed: count, workflowId });
          abortReason ??= `slice ${index} failed: ${message}`;
          return;
        }
      }
    };
    while (nextSlice < groups.length && abortReason === undefined) {
      await condition(() => running < childrenAtOnce);
      if (startedThisRun >= opts.slicesPerRun || workflowInfo().continueAsNewSuggested) break;
      const index = nextSlice;
      const group = groups[index];
      nextSlice += 1;
      if (!group) continue;
      running += 1;
      startedThisRun += 1;
      void runChild(index, group).finally(() => {
        running -= 1;
      });
    }
    await condition(() => running === 0);
    if (nextSlice < groups.length && abortReason === undefined) {
      // History stays bounded: the next run carries cursors and counts, not targets.
      await condition(() => idle() && allHandlersFinished());
      compactForCarry(ledger, workflowInfo().workflowId);
      const next: Carried = { ledger, inlineBytes, pages: packPages(slices, pageSize), nextSlice, finishRequested };
      const bytes = jsonBytes(next);
      if (bytes > CARRY_BYTES) log.warn('carried state over its budget', { bytes, budget: CARRY_BYTES });
      await continueAsNew<typeof syncWorkflow>({ ...input, carried: next });
    }
    fanningOut = false;
  }
  if (abortReason !== undefined) {
    // Slices never started are counted as failed, so the report still adds up.
    const unsent = groups.slice(nextSlice).reduce((n, g) => n + g.reduce((m, p) => m + p.count, 0), 0);
    if (unsent > 0) ledger.elsewhere.push({ rejected: 0, failed: unsent });
  }
  await condition(idle);
  firstPassSettled = true;

  // ---- Open for re-submission. ----
  const nothingToFix = () => {
    const c = counts(ledger);
    return c.rejected === 0 && c.failed === 0;
  };
  if (abortReason === undefined) {
    phase = 'open';
    windowEndsAt = Date.now() + msToNumber(opts.resubmissionWindow); // Temporal's clock in workflows
    for (;;) {
      const c = counts(ledger);
      show(
        `open for re-submission until ${new Date(windowEndsAt).toISOString()}: ${c.rejected} rejected and ${c.failed} failed to fix` +
          (c.pending > 0 ? `, ${c.pending} re-submitted in flight` : ''),
      );
      if (resubmissions.abortReason() !== undefined) break;
      if (finishRequested) {
        closedReason = 'finished';
        break;
      }
      if (idle() && nothingToFix()) {
        closedReason = 'nothing-to-fix';
        break;
      }
      const remaining = windowEndsAt - Date.now();
      if (remaining <= 0) {
        closedReason = 'window-ended';
        break;
      }
      // Also wakes when counts change, so the UI's details and search attributes stay current.
      const shown = counts(ledger);
      const moved = () => {
        const now = counts(ledger);
        return now.pending !== shown.pending || now.submitted !== shown.submitted;
      };
      await condition(
        () => finishRequested || resubmissions.abortReason() !== undefined || (idle() && nothingToFix()) || moved(),
        remaining,
      );
    }
  }
  closing = true;
  await condition(() => idle() && allHandlersFinished());
  phase = 'closed';
  abortReason ??= resubmissions.abortReason();
  show(abortReason !== undefined ? `aborted: ${abortReason}` : `closed: ${closedReason ?? 'finished'}`);
  recordOutcome(provider, counts(ledger));
  log.info('sync closed', {
    provider,
    closedReason: abortReason !== undefined ? 'aborted' : closedReason,
    ...counts(ledger),
  });
  await releaseSpooledSource(source); // a spooled source is the sync's own: gone once it closes
  // Aborted, or over its alert threshold: the webhook hears of it (an alert never fails the sync).
  await alertClosedSync({
    workflowId: workflowInfo().workflowId,
    provider,
    counts: counts(ledger),
    ...(parsedOptions.data.alertThreshold !== undefined ? { threshold: parsedOptions.data.alertThreshold } : {}),
    ...(abortReason !== undefined ? { abortReason } : {}),
  });

  if (abortReason !== undefined) {
    closedReason = 'aborted';
    throw ApplicationFailure.create({
      type: FailureType.SyncAborted,
      nonRetryable: true,
      message: abortReason,
      details: [report()],
    });
  }
  return report();
}

export { syncSliceWorkflow };
