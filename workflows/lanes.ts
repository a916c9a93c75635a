/**
 * Sending a slice by reference in lanes (contracts/lane.ts): `lanes` loops, each running lane
 * activities over its share of the pages one after the other, so each keeps one provider call in
 * flight all the time. Lane results (counts and non-accepted outcomes) go into the ledger; targets
 * rejected for a transient reason and batches too large with no governor go to the sender, which
 * re-sends or splits them. A slice that must end early (its history or entries reached their
 * budget) stops its lanes at their cursors and hands the rest to the next part.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  patched,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  LANE_PAGES_PER_RUN,
  CHANGED_ONLY_PAGES,
  countOutside,
  formatCount,
  inRanges,
  jsonBytes,
  mergeRanges,
  providerTaskQueue,
  toRanges,
  type LaneCursor,
  type LaneInput,
  type LaneResult,
  type ResolvedOptions,
  type SliceRef,
  type TargetsRef,
} from '../contracts/index.ts';
import { addCalls, markUnchanged, receive, settle, warningOf, type Ledger } from './ledger.ts';
import { createSender, providerCallPriority, type Sender } from './sender.ts';

/** A lane's share of a slice's pages, [from, to) by index, and where in it the lane stands. */
export interface LaneShare {
  from: number;
  to: number;
  cursor?: LaneCursor;
}

export interface LanesSpec {
  provider: string;
  ref: TargetsRef;
  pages: SliceRef[];
  options: ResolvedOptions;
  ledger: Ledger;
  /** Where each lane starts: a slice's first part splits its pages evenly; a later part resumes. */
  shares: LaneShare[];
  slice?: number;
  label?: string;
  /** True once the slice must end early (given the outcome bytes so far): lanes stop at their cursors. */
  stop(outcomeBytes: number): boolean;
}

export interface LanesOutcome {
  abortReason?: string;
  /** The lanes' unfinished shares when the slice stopped early. */
  rest?: LaneShare[];
  /** Bytes of outcomes the lanes brought into the ledger. */
  outcomeBytes: number;
}

/** `count` near-equal consecutive shares of `pages`. */
export function splitShares(pages: number, count: number): LaneShare[] {
  const n = Math.max(1, Math.min(count, pages));
  return Array.from({ length: n }, (_, i) => ({
    from: Math.floor((i * pages) / n),
    to: Math.floor(((i + 1) * pages) / n),
  })).filter((s) => s.to > s.from);
}

/** Targets a share has not settled yet. */
export function unsettled(pages: SliceRef[], share: LaneShare): number {
  let n = 0;
  const first = share.from + (share.cursor?.page ?? 0);
  for (let i = first; i < share.to; i += 1) n += pages[i]?.count ?? 0;
  for (const [a, b] of share.cursor?.done ?? []) n -= b - a;
  return n;
}

/** The page holding `seq`. */
const pageOf = (pages: SliceRef[], seq: number) => pages.find((p) => seq >= p.firstSeq && seq < p.firstSeq + p.count);

/** Re-sent or split batches stay within one page (a batch by reference names one page). */
function perPage(pages: SliceRef[], seqs: number[]): number[][] {
  const groups = new Map<number, number[]>();
  for (const seq of seqs) {
    const key = pageOf(pages, seq)?.index ?? -1;
    const group = groups.get(key);
    if (group) group.push(seq);
    else groups.set(key, [seq]);
  }
  return [...groups.values()];
}

/**
 * Lane results are counted by target: a target a lane's earlier results already settled is not
 * counted again when a later result names it too (a retried run that resumed from a heartbeat
 * behind its place sends and reports answered batches again), and a lane's cursor never moves back.
 */
export const LANE_COUNT_ONCE_PATCH = 'lane-outcomes-counted-once';

/** What a share has settled, as sorted ranges: every target before its cursor's page, and the page's done ranges. */
export function settledRanges(pages: SliceRef[], share: LaneShare): [number, number][] {
  const from = pages[share.from]?.firstSeq ?? 0;
  const index = share.from + (share.cursor?.page ?? 0);
  const last = pages[share.to - 1];
  const upTo = index >= share.to ? (last ? last.firstSeq + last.count : from) : (pages[index]?.firstSeq ?? from);
  return mergeRanges([[from, upTo]], share.cursor?.done ?? []);
}

/** The further of two cursors of a share: a later page, or the same page with both done lists. */
function furthest(a: LaneCursor | undefined, b: LaneCursor): LaneCursor {
  if (!a || b.page > a.page) return b;
  if (b.page < a.page) return a;
  return { page: a.page, done: mergeRanges(a.done, b.done) };
}

/**
 * Of a lane result, what is new: the targets its share had not settled before the run, each once
 * (non-accepted targets by sequence number; accepted and unchanged ones by range, or by count from
 * a worker that sends counts only).
 */
function newOutcomes(r: LaneResult, settled: [number, number][]): LaneResult {
  const seen = new Set<number>();
  const fresh = (seq: number) => {
    if (seen.has(seq) || inRanges(settled, seq)) return false;
    seen.add(seq);
    return true;
  };
  const warned = new Set<number>();
  const outcomes = r.outcomes.filter((o) => {
    if (o.state !== 'warning') return fresh(o.seq);
    if (warned.has(o.seq) || inRanges(settled, o.seq)) return false;
    warned.add(o.seq);
    return true;
  });
  const failures = r.failures.flatMap((f) => {
    // `identities` and `lines` follow the expanded ranges: kept for the targets that stay.
    const seqs: number[] = [];
    const identities: string[] = [];
    const lines: (number | null)[] = [];
    let i = 0;
    for (const [from, to] of f.seqs) {
      for (let seq = from; seq < to; seq += 1, i += 1) {
        if (!fresh(seq)) continue;
        seqs.push(seq);
        if (f.identities) identities.push(f.identities[i] ?? '');
        if (f.lines) lines.push(f.lines[i] ?? null);
      }
    }
    if (seqs.length === 0) return [];
    return [
      {
        seqs: toRanges(seqs),
        code: f.code,
        message: f.message,
        ...(f.identities ? { identities } : {}),
        ...(f.lines ? { lines } : {}),
      },
    ];
  });
  const transient = r.transient.filter((t) => fresh(t.seq));
  const tooLarge = r.tooLarge.map((batch) => batch.filter(fresh)).filter((batch) => batch.length > 0);
  const accepted = r.acceptedSeqs ? countOutside(mergeRanges(r.acceptedSeqs), settled) : r.accepted;
  const unchanged = r.unchangedSeqs ? countOutside(mergeRanges(r.unchangedSeqs), settled) : (r.unchanged ?? 0);
  return { ...r, accepted, unchanged, outcomes, failures, transient, tooLarge };
}

/** A lane result's acceptances, rejections, warnings and failures, into the ledger. */
function recordOutcomes(ledger: Ledger, r: LaneResult): void {
  ledger.accepted += r.accepted;
  // Unchanged targets (changedOnly) were never sent: out of `submitted`, into `unchanged`.
  markUnchanged(ledger, r.unchanged ?? 0);
  for (const o of r.outcomes) {
    if (o.state === 'warning') {
      ledger.warnings.push(warningOf(o.seq, o));
      continue;
    }
    receive(ledger, o.seq, 1);
    settle(ledger, o.seq, 'rejected', {
      code: o.code,
      message: o.message,
      origin: o.origin,
      ...(o.identity !== undefined ? { identity: o.identity } : {}),
      ...(o.target !== undefined ? { target: o.target } : {}),
      ...(o.line !== undefined ? { line: o.line } : {}),
    });
  }
  for (const f of r.failures) {
    // `identities` and `lines` follow the expanded ranges, when the lane had room for them.
    let i = 0;
    for (const [from, to] of f.seqs) {
      for (let seq = from; seq < to; seq += 1, i += 1) {
        const identity = f.identities?.[i];
        const line = f.lines?.[i];
        receive(ledger, seq, 1);
        settle(ledger, seq, 'failed', {
          code: f.code,
          message: f.message,
          ...(identity ? { identity } : {}),
          ...(line !== undefined && line !== null ? { line } : {}),
        });
      }
    }
  }
}

/** Targets a share never sent because the sync ended: failed, so the counts add up. */
function failNotSent(ledger: Ledger, pages: SliceRef[], share: LaneShare, reason: string): void {
  const first = share.from + (share.cursor?.page ?? 0);
  const done = share.cursor?.done ?? [];
  for (let i = first; i < share.to; i += 1) {
    const page = pages[i];
    if (!page) continue;
    for (let seq = page.firstSeq; seq < page.firstSeq + page.count; seq += 1) {
      // Done ranges may reach past the cursor's page (a changed-only lane settles several at once).
      if (done.some(([a, b]) => seq >= a && seq < b)) continue;
      receive(ledger, seq, 1);
      settle(ledger, seq, 'failed', { code: FailureType.SyncAborted, message: `not sent: ${reason}` });
    }
  }
}

/** The next run of a lane: its summary (what operators see) and its input. */
function laneRun(spec: LanesSpec, lane: number, share: LaneShare, pagesPerRun: number, headAttempts: number) {
  const { options: opts, pages } = spec;
  const base = share.from + (share.cursor?.page ?? 0);
  const runPages = pages.slice(base, Math.min(share.to, base + pagesPerRun));
  const firstSeq = runPages[0]?.firstSeq ?? 0;
  const summary =
    `${spec.provider} lane ${lane + 1}${spec.label !== undefined ? ` of ${spec.label}` : ''}: ` +
    `from target ${formatCount(firstSeq + 1)}, ${formatCount(unsettled(pages, share))} to go`;
  const input: LaneInput = {
    provider: spec.provider,
    ref: spec.ref,
    pages: runPages,
    ...(share.cursor && share.cursor.done.length > 0 ? { cursor: { page: 0, done: share.cursor.done } } : {}),
    ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    ...(spec.slice !== undefined ? { slice: spec.slice } : {}),
    lane,
    headAttempts,
    callAttempts: opts.callAttempts,
    callInitialMs: msToNumber(opts.callInitialInterval),
    callMaximumMs: msToNumber(opts.callMaximumInterval),
    ...(opts.changedOnly ? { changedOnly: true } : {}),
  };
  return { base, summary, input };
}

/** The lane activity: a run lasts a few seconds plus its call; a retry resumes from the last heartbeat. */
function laneActivity(provider: string, opts: ResolvedOptions) {
  return proxyActivities<SyncActivities>({
    taskQueue: providerTaskQueue(workflowInfo().taskQueue, provider),
    // A run lasts a few seconds plus its call; waits for an account's pause heartbeat too.
    startToCloseTimeout: '10 minutes',
    // A worker that dies mid-lane is noticed here; the retry resumes from the last heartbeat.
    heartbeatTimeout: '10 seconds',
    priority: providerCallPriority(opts),
    retry: {
      initialInterval: '1 second',
      maximumAttempts: opts.callAttempts,
      nonRetryableErrorTypes: [FailureType.InvalidSyncRequest, FailureType.ProviderNotConfigured],
    },
  }).sendLane;
}

/** What the lanes of one slice (part) share while they run. */
interface Lanes {
  spec: LanesSpec;
  sendLane: ReturnType<typeof laneActivity>;
  resender: Sender;
  batchNumber: number;
  abortReason: string | undefined;
  outcomeBytes: number;
  /** Re-sends waiting out their first interval. */
  waiting: number;
  /** Shares not finished when the part stopped: the next part goes on from them. */
  rest: LaneShare[];
  /** Results counted by target, each once, and cursors never moving back (LANE_COUNT_ONCE_PATCH). */
  countOnce: boolean;
}

export async function runLanes(spec: LanesSpec): Promise<LanesOutcome> {
  const { ledger, options: opts, provider, pages } = spec;
  const lanes: Lanes = {
    spec,
    sendLane: laneActivity(provider, opts),
    // Transient rejections and too-large batches: re-sent or split a batch at a time, as for inline syncs.
    resender: createSender({
      provider,
      options: opts,
      ledger,
      ...(spec.slice !== undefined ? { slice: spec.slice } : {}),
      nextBatchNumber: () => (lanes.batchNumber += 1),
      summary: (n, size) =>
        `${provider} re-send ${n}${spec.label !== undefined ? ` of ${spec.label}` : ''}, ${size} targets`,
      batchRef: (batch) => {
        const page = pageOf(pages, batch[0] ?? 0) ?? pages[0];
        return page
          ? { kind: 'ref', ref: spec.ref, slice: page, seqs: toRanges(batch) }
          : { kind: 'inline', targets: [] };
      },
    }),
    batchNumber: 0,
    abortReason: undefined,
    outcomeBytes: 0,
    waiting: 0,
    rest: [],
    countOnce: patched(LANE_COUNT_ONCE_PATCH),
  };
  await Promise.all(spec.shares.map((share, lane) => runLane(lanes, lane, share)));
  await condition(() => lanes.waiting === 0 && lanes.resender.idle());
  const outcome: LanesOutcome = { outcomeBytes: lanes.outcomeBytes };
  const abort = lanes.abortReason ?? lanes.resender.abortReason();
  if (abort !== undefined) outcome.abortReason = abort;
  if (lanes.rest.length > 0 && abort === undefined) outcome.rest = lanes.rest;
  return outcome;
}

/** One lane: runs of `sendLane` over its share until it is done, stopped, or the sync aborts. */
async function runLane(lanes: Lanes, lane: number, start: LaneShare): Promise<void> {
  const { spec, resender } = lanes;
  const { ledger, pages } = spec;
  const share: LaneShare = { ...start };
  let headAttempts = 0;
  let pagesPerRun = LANE_PAGES_PER_RUN;
  for (;;) {
    const reason = lanes.abortReason ?? resender.abortReason();
    if (reason !== undefined) return failNotSent(ledger, pages, share, reason);
    if (spec.stop(lanes.outcomeBytes)) {
      lanes.rest.push(share);
      return;
    }
    const { base, summary, input } = laneRun(spec, lane, share, pagesPerRun, headAttempts);
    let r: LaneResult;
    try {
      r = await lanes.sendLane.executeWithOptions({ summary }, [input]);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const message = cause instanceof Error ? cause.message : String(err);
      const type = cause instanceof ApplicationFailure && cause.type ? cause.type : FailureType.SyncAborted;
      lanes.abortReason ??= message;
      return failNotSent(ledger, pages, share, `${type === FailureType.SyncAborted ? '' : `${type}: `}${message}`);
    }
    const cursor = { page: base + r.cursor.page - share.from, done: r.cursor.done };
    if (lanes.countOnce) {
      applyLaneResult(lanes, newOutcomes(r, settledRanges(pages, share)));
      share.cursor = furthest(share.cursor, cursor);
    } else {
      applyLaneResult(lanes, r);
      share.cursor = cursor;
    }
    const page = share.from + share.cursor.page;
    if (r.abort) {
      lanes.abortReason ??= r.abort.message;
      return failNotSent(ledger, pages, share, r.abort.message);
    }
    if (r.oneCallPerRun) pagesPerRun = spec.options.changedOnly ? CHANGED_ONLY_PAGES : 1;
    if (page >= share.to) return;
    headAttempts = r.retry?.headAttempts ?? 0;
    if (r.retry) await sleep(r.retry.delayMs);
  }
}

/** A lane run's outcomes into the ledger; its too-large batches and transient rejections to the re-sender. */
function applyLaneResult(lanes: Lanes, r: LaneResult): void {
  const { ledger, options: opts, pages } = lanes.spec;
  recordOutcomes(ledger, r);
  lanes.outcomeBytes += jsonBytes(r.outcomes) + jsonBytes(r.failures) + jsonBytes(r.transient);
  const calls = r.calls.map((c) => ({ ...c, batch: (lanes.batchNumber += 1) }));
  lanes.batchNumber += Math.max(0, r.callCount - r.calls.length);
  addCalls(ledger, calls, r.callCount);
  if (r.tooLarge.length > 0) {
    for (const seq of r.tooLarge.flat()) receive(ledger, seq, 1);
    lanes.resender.enqueue(r.tooLarge.flatMap((batch) => perPage(pages, batch)));
  }
  if (r.transient.length === 0) return;
  const seqs = r.transient.map((t) => t.seq);
  for (const t of r.transient) {
    receive(ledger, t.seq, 1);
    const e = ledger.entries[t.seq];
    if (!e) continue;
    e.resends = 1;
    // Kept while re-sent: a re-send that fails as a whole still names its item and line.
    if (t.identity !== undefined) e.identity = t.identity;
    if (t.line !== undefined) e.line = t.line;
  }
  if (opts.transientResends === 0) {
    for (const t of r.transient) settle(ledger, t.seq, 'failed', { code: t.code, message: t.message });
    return;
  }
  // The first re-send waits one initial interval, as for batches sent one by one.
  lanes.waiting += 1;
  void sleep(msToNumber(opts.callInitialInterval)).then(() => {
    lanes.waiting -= 1;
    lanes.resender.enqueue(perPage(pages, seqs));
  });
}
