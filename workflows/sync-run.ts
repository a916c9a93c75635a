/**
 * One run of a sync: its state in one typed object (what continue-as-new carries, and what the
 * run keeps besides), and the few services every phase uses (activities, the re-submission
 * sender, the running slices, what the UI shows, the report). Deterministic: no I/O here.
 */
import { proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  clipText,
  packPages,
  unpackPages,
  type Carried,
  type ClosedReason,
  type ResolvedOptions,
  type SliceRef,
  type SyncInput,
  type SyncOptions,
  type SyncPhase,
  type SyncReport,
  type TargetSource,
  type Counts,
} from '../contracts/index.ts';
import { counts, newLedger, type Ledger } from './ledger.ts';
import { buildReport, expandCarried } from './report.ts';
import { createLiveSlices, type LiveSlices } from './progress.ts';
import { createSender, type Sender } from './sender.ts';
import { publish, type Published } from './visibility.ts';

/** Targets a planning call reads and validates at most: keeps every planning result (a local activity marker) well under 256 KB. */
const PAGE = 1000;

/**
 * The state of one sync run. `ledger`, `inlineBytes`, `slices` (packed), `nextSlice` and
 * `finishRequested` are what continue-as-new carries (`carryOf`); the rest lives for one run.
 */
export interface SyncState {
  ledger: Ledger;
  inlineBytes: number;
  /** The source's pages (at most `pageSize` targets each). */
  slices: SliceRef[];
  /** The slices: consecutive pages, one child workflow each (or this run itself for one). */
  groups: SliceRef[][];
  nextSlice: number;
  finishRequested: boolean;
  phase: SyncPhase;
  firstPassSettled: boolean;
  windowEndsAt: number | undefined;
  closedReason: ClosedReason | undefined;
  abortReason: string | undefined;
  /** Set once the window closed: re-submissions are refused from then on. */
  closing: boolean;
  /** Set while this run starts slices: until the last has started, it may continue as new. */
  fanningOut: boolean;
  resubmitBatch: number;
  published: Published;
  /** The current details last shown, and why the last re-submission signal was refused. */
  shown: string;
  refusal: string | undefined;
}

export interface SyncRun {
  readonly input: SyncInput;
  readonly provider: string;
  readonly source: TargetSource;
  /** The options as the caller gave them (checked), and resolved with their defaults. */
  readonly options: SyncOptions;
  readonly opts: ResolvedOptions;
  /** Targets a page (one planning call) holds. */
  readonly pageSize: number;
  /** True for a run continued as new: its scan is done. */
  readonly continued: boolean;
  readonly state: SyncState;
  readonly live: LiveSlices;
  readonly resubmissions: Sender;
  readonly activities: {
    /** The local planning activity (kept for histories recorded before `resubmission-planned-by-activity`). */
    planTargets: SyncActivities['planTargets'];
    planResubmission: SyncActivities['planTargets'];
    scanSource: SyncActivities['scanSource'];
  };
  /** The counts of the moment, running slices' signalled counts included. */
  current(): Counts;
  /** Sets the current details (and search attributes); a refused signal's reason is kept on the line. */
  show(details: string): void;
  report(): SyncReport;
  /** Targets the sync received from its source (re-submissions come after them). */
  originals(): number;
  idle(): boolean;
}

export function createSyncRun(input: SyncInput, options: SyncOptions, opts: ResolvedOptions): SyncRun {
  const { provider, source, carried } = input;
  const pageSize = Math.min(PAGE, opts.sliceSize);
  const { planTargets } = proxyLocalActivities<SyncActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  // A re-submission is planned by a regular activity: a local one awaited in a signal or update
  // handler, resolved in another workflow task than the one that started it, is replayed in a
  // different command order, and a worker that replays the sync (after a crash) fails it as
  // nondeterministic (found by `npm run chaos`, docs/reliability.md).
  const { planTargets: planResubmission } = proxyActivities<SyncActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  const { scanSource } = proxyActivities<SyncActivities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '1 minute',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.InvalidSyncRequest] },
  });
  const state = initialState(carried);
  const live = createLiveSlices();
  // Re-submitted targets are few and inline: this run sends them itself.
  const resubmissions = createSender({
    provider,
    options: opts,
    ledger: state.ledger,
    nextBatchNumber: () => (state.resubmitBatch += 1),
    summary: (n, size) => `${provider} re-submission batch ${n}, ${size} targets`,
    batchRef: (batch) => ({ kind: 'inline', targets: batch.map((seq) => state.ledger.entries[seq]?.target) }),
  });
  const current = () => live.counts(counts(state.ledger));
  const run: SyncRun = {
    input,
    provider,
    source,
    options,
    opts,
    pageSize,
    continued: carried !== undefined,
    state,
    live,
    resubmissions,
    activities: { planTargets, planResubmission, scanSource },
    current,
    show(details) {
      state.shown = details;
      const line =
        state.refusal !== undefined ? `${details}; last re-submission signal refused: ${state.refusal}` : details;
      state.published = publish(state.published, state.phase, current(), line);
    },
    // Every report (result, `status` answer, SyncAborted details) is built under REPORT_BYTES; what
    // does not fit is paged by the queries and named in `rejectedElsewhere` and `omitted`.
    report: () =>
      buildReport(
        {
          workflowId: workflowInfo().workflowId,
          provider,
          phase: state.phase,
          counts: current(),
          firstPassSettled: state.firstPassSettled,
          ...(input.carriedForward !== undefined ? { carried: input.carriedForward } : {}),
          ...(state.windowEndsAt !== undefined ? { windowEndsAt: new Date(state.windowEndsAt).toISOString() } : {}),
          ...(state.closedReason !== undefined ? { closedReason: state.closedReason } : {}),
          ...(state.abortReason !== undefined ? { abortReason: state.abortReason } : {}),
        },
        state.ledger,
      ),
    originals: () => state.slices.reduce((n, p) => n + p.count, 0),
    idle: () => resubmissions.idle(),
  };
  return run;
}

function initialState(carried: Carried | undefined): SyncState {
  return {
    ledger: carried ? expandCarried(carried.ledger, workflowInfo().workflowId) : newLedger(),
    inlineBytes: carried?.inlineBytes ?? 0,
    slices: carried?.pages ? unpackPages(carried.pages) : (carried?.slices ?? []),
    groups: [],
    nextSlice: carried?.nextSlice ?? 0,
    finishRequested: carried?.finishRequested ?? false,
    phase: carried ? 'sending' : 'validating',
    firstPassSettled: false,
    windowEndsAt: undefined,
    closedReason: undefined,
    abortReason: undefined,
    closing: false,
    fanningOut: false,
    resubmitBatch: 0,
    published: {},
    shown: '',
    refusal: undefined,
  };
}

/** What this run hands to the next on continue-as-new: cursors and counts, never the source. */
export const carryOf = (run: SyncRun): Carried => ({
  ledger: run.state.ledger,
  inlineBytes: run.state.inlineBytes,
  pages: packPages(run.state.slices, run.pageSize),
  nextSlice: run.state.nextSlice,
  finishRequested: run.state.finishRequested,
});

/** A refused re-submission signal: its reason joins the current details (signals have no answer). */
export function showRefusal(run: SyncRun, message: string): void {
  run.state.refusal = clipText(message, 300);
  run.show(run.state.shown);
}
