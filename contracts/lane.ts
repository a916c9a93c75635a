/**
 * Lanes: how a sync by reference sends. A lane is one activity that reads its pages of the source
 * (each page's byte span only), plans them, and sends their batches back to back, so the provider
 * sees the sync's `concurrency` calls in flight all the time. It heartbeats its cursor and compact
 * outcomes after every answered batch; a retried lane resumes there, so no batch whose answer was
 * heartbeated goes again. Results and heartbeats carry counts and non-accepted outcomes only.
 * Shared by the workflow (which runs lanes) and the activity (which is one).
 */
import type { ProviderCall, SliceRef, TargetsRef } from './sync.ts';

/** Where a lane is: the page in hand (index into its pages) and the sequence numbers of it already settled. */
export interface LaneCursor {
  page: number;
  /** [from, to) ranges of the page's sequence numbers settled (answered, rejected when planned, or unchanged). */
  done: [number, number][];
}

/** A target that did not end plainly accepted: rejected, failed, or accepted with a warning. */
export type LaneOutcome =
  | {
      seq: number;
      state: 'rejected';
      code: string;
      message: string;
      origin: 'validation' | 'provider';
      identity?: string;
      target?: unknown;
      line?: number;
    }
  | { seq: number; state: 'warning'; message: string; identity?: string; line?: number };

/** A run of targets that failed the same way (a batch whose calls all failed): one entry, not one per target. */
export interface LaneFailure {
  seqs: [number, number][];
  code: string;
  message: string;
  /**
   * Each target's identity and line, in the order of `seqs` (expanded), when the batch was read and
   * they fit the run's outcome budget; else absent (the failures are recorded without them).
   */
  identities?: string[];
  lines?: (number | null)[];
}

export interface LaneInput {
  provider: string;
  ref: TargetsRef;
  /** The lane's pages, in order; it starts at `cursor` (page 0, nothing done, when absent). */
  pages: SliceRef[];
  cursor?: LaneCursor;
  batchSize?: number;
  /** The slice the lane works for (fan-out): named in heartbeat details and calls. */
  slice?: number;
  lane: number;
  /** Failed calls of the batch at the cursor so far; at `callAttempts` the batch is failed and the lane goes on. */
  headAttempts?: number;
  callAttempts: number;
  /** Backoff for a failed call when the provider named no wait: first, longest (milliseconds). */
  callInitialMs: number;
  callMaximumMs: number;
  /** Send only what changed: a target whose content equals its last accepted one is settled `unchanged`, not sent. */
  changedOnly?: boolean;
}

/** What a lane run did; also its heartbeat details, so a retried run resumes from them. */
export interface LaneProgress {
  cursor: LaneCursor;
  /** The first sequence number of the run's pages, and of the page in hand: every target from `runFrom` up to `pageFrom` is settled. */
  runFrom?: number;
  pageFrom?: number;
  accepted: number;
  /**
   * The accepted targets' sequence numbers, as sorted [from, to) ranges: the workflow counts a
   * target once however many results name it (absent from workers that sent counts only).
   */
  acceptedSeqs?: [number, number][];
  /** Targets found unchanged (`changedOnly`) and not sent; their seqs are in the cursor's `done` like sent ones. */
  unchanged?: number;
  /** The unchanged targets' sequence numbers, as sorted [from, to) ranges (as `acceptedSeqs`). */
  unchangedSeqs?: [number, number][];
  outcomes: LaneOutcome[];
  failures: LaneFailure[];
  /** Targets the provider rejected for a transient reason: the workflow re-sends them (bounded). */
  transient: { seq: number; code: string; message: string; identity?: string; line?: number }[];
  /** Batches the provider found too large with no governor to learn from: the workflow splits them. */
  tooLarge: number[][];
  /** The first calls the run made, of `callCount`. */
  calls: ProviderCall[];
  callCount: number;
  /** Failed calls of the batch at the cursor (carried when a retried run resumes). */
  headAttempts?: number;
  /** The batch in hand (named in heartbeat details while pending): its number in the lane and size. */
  batch?: number;
  targets?: number;
  slice?: number;
  lane?: number;
}

export interface LaneResult extends LaneProgress {
  /** Every page of the lane is settled. */
  done: boolean;
  /** The batch at the cursor failed; run again after `delayMs` with `headAttempts`. */
  retry?: { delayMs: number; headAttempts: number; reason: string };
  /** A failure that ends the sync (bad credentials, provider not configured): nothing more is sent. */
  abort?: { type: string; message: string };
  /** The provider has a declared budget: each run makes one call, so the next run needs one page only. */
  oneCallPerRun?: boolean;
}

/** Pages a lane run is given at most (its input stays a few dozen KB). */
export const LANE_PAGES_PER_RUN = 256;

/**
 * Pages a changed-only lane reads, plans and diffs as one: with 1 % changed, a page of 1,000 holds
 * about 10 targets to send, and a batch a page would make a call of 10. The cursor stays at the
 * unit's first page until the whole unit is settled, so a retried run reads the same unit again;
 * a lane with one call a run (a budget) still gets this many pages a run.
 */
export const CHANGED_ONLY_PAGES = 16;

/** Bytes of outcomes a lane run gathers before it returns (its result and heartbeats stay small). */
export const LANE_OUTCOME_BYTES = 16 * 1024;
/** A lane run returns after about this long, so the sync's counts move while it sends. */
export const LANE_RUN_MS = 4_000;
/** Calls a lane run keeps in its result; the rest are counted. */
export const LANE_CALLS_KEPT = 20;

/** Sorted lists of [from, to) ranges as one sorted, disjoint list, touching ranges joined. */
export function mergeRanges(...lists: [number, number][][]): [number, number][] {
  const all = lists.flat().sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [from, to] of all) {
    if (to <= from) continue;
    const last = out[out.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

/** How many sequence numbers of `ranges` are outside `known` (both sorted and disjoint). */
export function countOutside(ranges: [number, number][], known: [number, number][]): number {
  let n = 0;
  let k = 0;
  for (const [from, to] of ranges) {
    n += to - from;
    while (k < known.length && (known[k] as [number, number])[1] <= from) k += 1;
    for (let j = k; j < known.length; j += 1) {
      const [a, b] = known[j] as [number, number];
      if (a >= to) break;
      n -= Math.min(b, to) - Math.max(a, from);
    }
  }
  return n;
}

/** Whether `seq` is in one of `ranges`. */
export const inRanges = (ranges: readonly [number, number][], seq: number): boolean =>
  ranges.some(([from, to]) => seq >= from && seq < to);
