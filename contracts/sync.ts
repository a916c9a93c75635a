/**
 * The sync request, its options and its report: the shapes callers, the workflow and the
 * activities agree on. Free of Node-only imports: the workflow bundle takes this module.
 */
import { z } from 'zod';
import { AlertThresholdSchema } from './alerts.ts';
import { PRIORITY_KEYS, PRIORITY_KEY_MESSAGE } from './priority.ts';
import type { RefusedItem } from './resubmission.ts';

/** Duration strings as Temporal reads them ("90s", "15m", "1h") or milliseconds. */
export const DurationSchema = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, 'a duration such as "90s", "15m" or "1h"'),
]);

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration DurationSchema took (a number is milliseconds already). */
export function durationMillis(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value);
  return m ? Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1) : Number.NaN;
}

/** How a duration limit reads in messages: "30d", "1h", "10ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Bounds of the sync's duration options. A window of years would keep a workflow open for good,
 * a retry interval of days would make a transient error look like a hang.
 */
export const DURATION_LIMITS = {
  resubmissionWindow: { min: 0, max: 30 * 86_400_000 },
  callInitialInterval: { min: 10, max: 10 * 60_000 },
  callMaximumInterval: { min: 10, max: 60 * 60_000 },
} as const;

/** A duration option within [min, max]; the message names the field, the limit and the fix. */
export const boundedDuration = (field: keyof typeof DURATION_LIMITS) => {
  const { min, max } = DURATION_LIMITS[field];
  return DurationSchema.superRefine((value, ctx) => {
    const ms = durationMillis(value);
    if (ms > max || ms < min) {
      ctx.addIssue({
        code: 'custom',
        message: `${field} is ${typeof value === 'number' ? `${value}ms` : value}, ${ms > max ? `over the limit of ${formatDuration(max)}` : `under the minimum of ${formatDuration(min)}`}; give a duration from ${formatDuration(min)} to ${formatDuration(max)}`,
      });
    }
  });
};

/** False for a string with a lone surrogate (not well-formed Unicode: it cannot be sent as UTF-8). */
export const isWellFormedText = (s: string): boolean =>
  !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

/** Control characters (C0, DEL, C1): never part of a key, a path or a URL a caller means. */
// eslint-disable-next-line no-control-regex
export const hasControlChars = (s: string): boolean => /[\u0000-\u001f\u007f-\u009f]/.test(s);

export const SyncOptionsSchema = z
  .object({
    /** Targets per provider call, at most the provider's own maximum (Octogen 500, Insider 1000). */
    batchSize: z.number().int().positive().optional(),
    /** How long the sync stays open for re-submission once the first pass has settled (at most 30d). */
    resubmissionWindow: boundedDuration('resubmissionWindow').optional(),
    /** How many times a target the provider rejected for a transient reason is re-sent. */
    transientResends: z.number().int().min(0).max(20).optional(),
    /** Provider-call retry policy: attempts per batch call, first (10ms-10m) and longest (10ms-1h) backoff. */
    callAttempts: z.number().int().positive().max(100).optional(),
    callInitialInterval: boundedDuration('callInitialInterval').optional(),
    callMaximumInterval: boundedDuration('callMaximumInterval').optional(),
    /** Batches in flight at once for this sync. */
    concurrency: z.number().int().positive().max(64).optional(),
    /** Targets per slice: a large sync fans out to one child workflow per slice. */
    sliceSize: z.number().int().min(10).max(100_000).optional(),
    /** Slices one run of the sync handles before it continues as new (history stays bounded). */
    slicesPerRun: z.number().int().positive().max(1000).optional(),
    /** Task priority of the sync: 1 most urgent .. 5 least, default 3 (contracts/priority.ts). */
    priorityKey: z
      .number({ error: PRIORITY_KEY_MESSAGE })
      .int({ error: PRIORITY_KEY_MESSAGE })
      .min(PRIORITY_KEYS.min, { error: PRIORITY_KEY_MESSAGE })
      .max(PRIORITY_KEYS.max, { error: PRIORITY_KEY_MESSAGE })
      .optional(),
    /** Alert (CATALOG_SYNC_ALERT_WEBHOOK_URL) when the closed sync's rejected + failed are above it (docs/alerts.md). */
    alertThreshold: AlertThresholdSchema.optional(),
    /**
     * Send only what changed (docs/state.md): a target whose content equals the last one the
     * provider accepted for that item is not sent and is counted `unchanged`, outside `submitted`.
     */
    changedOnly: z.boolean().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.callInitialInterval === undefined || o.callMaximumInterval === undefined) return;
    const first = durationMillis(o.callInitialInterval);
    if (first > durationMillis(o.callMaximumInterval)) {
      ctx.addIssue({
        code: 'custom',
        path: ['callMaximumInterval'],
        message: `callMaximumInterval (${String(o.callMaximumInterval)}) is shorter than callInitialInterval (${String(o.callInitialInterval)}); give a maximum at least as long as the first interval`,
      });
    }
  });
export type SyncOptions = z.infer<typeof SyncOptionsSchema>;

export const DEFAULT_OPTIONS = {
  resubmissionWindow: '1h',
  transientResends: 3,
  callAttempts: 8,
  callInitialInterval: '1s',
  callMaximumInterval: '60s',
  concurrency: 4,
  sliceSize: 100_000,
  slicesPerRun: 200,
} as const;

export type ResolvedOptions = { batchSize?: number; priorityKey?: number; changedOnly?: boolean } & {
  -readonly [K in keyof typeof DEFAULT_OPTIONS]: K extends
    'resubmissionWindow' | 'callInitialInterval' | 'callMaximumInterval'
    ? string | number
    : number;
};

/** The options a sync runs with: the caller's, or the defaults where the caller gave none. */
export function resolveOptions(o: SyncOptions): ResolvedOptions {
  return {
    ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
    ...(o.priorityKey !== undefined ? { priorityKey: o.priorityKey } : {}),
    ...(o.changedOnly === true ? { changedOnly: true } : {}),
    resubmissionWindow: o.resubmissionWindow ?? DEFAULT_OPTIONS.resubmissionWindow,
    transientResends: o.transientResends ?? DEFAULT_OPTIONS.transientResends,
    callAttempts: o.callAttempts ?? DEFAULT_OPTIONS.callAttempts,
    callInitialInterval: o.callInitialInterval ?? DEFAULT_OPTIONS.callInitialInterval,
    callMaximumInterval: o.callMaximumInterval ?? DEFAULT_OPTIONS.callMaximumInterval,
    concurrency: o.concurrency ?? DEFAULT_OPTIONS.concurrency,
    sliceSize: o.sliceSize ?? DEFAULT_OPTIONS.sliceSize,
    slicesPerRun: o.slicesPerRun ?? DEFAULT_OPTIONS.slicesPerRun,
  };
}

/**
 * Where a sync's targets are. Inline for small requests; by reference (NDJSON, one target a line)
 * for large ones, so history carries cursors and counts instead of targets.
 */
export const TargetsRefSchema = z.union([
  z.strictObject({ file: z.string().min(1, 'file: a path every worker can read') }),
  z.strictObject({ url: z.url({ protocol: /^https?$/, error: 'url: an http(s) URL of NDJSON' }) }),
]);
/**
 * A reference as the sync carries it. `spooled` marks a file the client (or a change feed) wrote to
 * the private spool folder for this sync: the sync deletes it when it closes. `sealed`: each of its
 * lines is encrypted with the codec key (CATALOG_SYNC_CODEC_KEYS). Callers never set either: the
 * request schema above is strict.
 */
export type TargetsRef = { file: string; spooled?: true; sealed?: true } | { url: string };

/** Where a sync's targets are; a spooled source is a `ref` whose `ref.spooled` is set. */
export type TargetSource = { kind: 'inline'; targets: unknown[] } | { kind: 'ref'; ref: TargetsRef };

/** True for a source the sync owns (a spooled file): released when the sync closes. */
export const isSpooled = (source: TargetSource): boolean =>
  source.kind === 'ref' && 'file' in source.ref && source.ref.spooled === true;

/** The caller's idempotency key: it becomes part of the workflow ID, so printable text only. */
export const SyncKeySchema = z
  .string()
  .min(1, 'key must not be empty; leave it out for a new sync each time')
  .max(200, 'key must be at most 200 characters')
  .refine((k) => isWellFormedText(k) && !hasControlChars(k) && !/[\s/]/.test(k), {
    message: 'key must be printable text without spaces, slashes or control characters (e.g. "order-2024-05-01")',
  });

/** What a caller sends. Targets stay `unknown` here: each is validated by its provider's schema. */
export const SyncRequestSchema = z
  .object({
    provider: z.string().min(1),
    targets: z
      .array(z.unknown())
      .max(1_000_000, 'at most 1,000,000 targets inline; give a larger catalog by targetsRef (an NDJSON file or URL)')
      .optional(),
    targetsRef: TargetsRefSchema.optional(),
    key: SyncKeySchema.optional(),
    options: SyncOptionsSchema.optional(),
  })
  .strict()
  .refine((r) => (r.targets === undefined) !== (r.targetsRef === undefined), {
    message: 'give exactly one of targets (inline) or targetsRef (an NDJSON file or URL)',
  });
export type SyncRequest = z.infer<typeof SyncRequestSchema>;

/**
 * A contiguous part of the source: `count` targets from sequence number `firstSeq`. For a
 * reference, `start`/`end` are byte offsets of its lines and `firstLine` the 1-based line number
 * of its first line; for inline targets they are array indexes.
 */
export interface SliceRef {
  index: number;
  firstSeq: number;
  count: number;
  start: number;
  end: number;
  firstLine: number;
}

/** What one provider call carries: the targets themselves, or where to read them. */
export type BatchRef =
  { kind: 'inline'; targets: unknown[] } | { kind: 'ref'; ref: TargetsRef; slice: SliceRef; seqs: [number, number][] };

/** Sorted sequence numbers as [from, to) ranges: what a batch by reference carries. */
export function toRanges(seqs: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const seq of seqs) {
    const last = out[out.length - 1];
    if (last && last[1] === seq) last[1] = seq + 1;
    else out.push([seq, seq + 1]);
  }
  return out;
}

/** Every target ends in exactly one of the final states; `pending` only while the sync runs. */
export type TargetState = 'pending' | 'accepted' | 'rejected' | 'failed' | 'superseded';

/** Where a rejection came from: our validation before any call, or the provider's answer. */
export type RejectionOrigin = 'validation' | 'provider';

/**
 * Provider calls run on a task queue of their own per provider, so a provider's request budget
 * can be declared as that queue's rate limit and enforced by Temporal across every worker.
 */
export const providerTaskQueue = (syncTaskQueue: string, provider: string): string => `${syncTaskQueue}.${provider}`;

/** Target identifiers in reports: "t" + the order in which the sync received it. */
export const targetId = (seq: number): string => `t${seq}`;
export const parseTargetId = (id: string): number | undefined => {
  const m = /^t(\d+)$/.exec(id);
  return m ? Number(m[1]) : undefined;
};

/**
 * The provider's own name for a target (`item_id:locale` for Insider, `uuid:<uuid>` or `url:<url>`
 * for Octogen), at most 256 characters (a longer one keeps its start and a digest). Carried by every
 * warning, rejection and failure whose target was read; absent for a target that never parsed
 * (its provider fields are not known) or was never read (a sync aborted before its page).
 */
export type ItemIdentity = string;

export interface Rejection {
  /** The identifier a re-submission names in `fixes`. */
  id: string;
  /** The provider's identity of the item (see ItemIdentity). */
  identity?: ItemIdentity;
  /** The 1-based line of the target in a by-reference source. */
  line?: number;
  target: unknown;
  code: string;
  message: string;
  origin: RejectionOrigin;
}

export interface Failure {
  id: string;
  /** The provider's identity of the item (see ItemIdentity). */
  identity?: ItemIdentity;
  /** The 1-based line of the target in a by-reference source. */
  line?: number;
  target: unknown;
  /** The failure type of the last error (see FailureType), or a provider rejection code. */
  code: string;
  message: string;
}

/** A target the provider accepted with a warning (Insider: an attribute it ignored). */
export interface Warning {
  id: string;
  /** The provider's identity of the item the warning names (Insider's `document_ids`). */
  identity?: ItemIdentity;
  /** The 1-based line of the target in a by-reference source. */
  line?: number;
  message: string;
}

/** One provider call that got an answer, kept for tracing with the provider's support. */
export interface ProviderCall {
  /** The slice the batch belongs to (large syncs), and the batch's number within it. */
  slice?: number;
  batch: number;
  httpStatus: number;
  targets: number;
  requestId?: string;
  providerWorkflowId?: string;
}

export interface Counts {
  submitted: number;
  pending: number;
  accepted: number;
  rejected: number;
  failed: number;
  superseded: number;
  /**
   * Targets not sent because their content equals the last accepted one (`changedOnly`): outside
   * `submitted`, so `submitted = accepted + rejected + failed + superseded` (+ pending) still holds.
   */
  unchanged: number;
}

/**
 * Items a schedule's run carried forward (docs/state.md, "Failures carried forward"): their last
 * state was a transient rejection or a failure (or, with `carryRejected`, any rejection) in an
 * earlier sync, and no later sync settled them. Outside `counts`: a carried sync's `submitted` are
 * the carried targets, counted as any sync counts its own.
 */
export interface CarriedCounts {
  /** Targets carried into the sync. */
  count: number;
  /** Of them, last rejected for a transient reason. */
  transient: number;
  /** Of them, last failed (transient failures that outlived their attempts). */
  failed: number;
  /** Of them, last rejected for another reason (`carryRejected` only). */
  rejected: number;
  /** Items that could be carried but were left for the next run (over this run's byte or target budget). */
  left: number;
  /** Items never carried: their target was over the store's cap when recorded (`target show` says so). */
  tooLarge: number;
}

/** Nothing carried: the counts a carry starts from. */
export const noneCarried = (): CarriedCounts => ({
  count: 0,
  transient: 0,
  failed: 0,
  rejected: 0,
  left: 0,
  tooLarge: 0,
});

export type SyncPhase = 'validating' | 'sending' | 'open' | 'closed';

export type ClosedReason = 'nothing-to-fix' | 'window-ended' | 'finished' | 'aborted';

export interface SyncReport {
  workflowId: string;
  provider: string;
  phase: SyncPhase;
  counts: Counts;
  rejected: Rejection[];
  failed: Failure[];
  warnings: Warning[];
  superseded: { id: string; by: string }[];
  /** Re-submitted items that were not taken (malformed, or naming nothing to fix). */
  refused: RefusedItem[];
  calls: ProviderCall[];
  /** ISO time at which the re-submission window closes, once the first pass has settled. */
  windowEndsAt?: string;
  closedReason?: ClosedReason;
  /** Why the sync was aborted, naming the problem and the fix. */
  abortReason?: string;
  /** True once the first pass (every original target sent and answered) has settled. */
  firstPassSettled: boolean;
  /** Set when a schedule's run started this sync with items carried forward (`<run>/carried`). */
  carried?: CarriedCounts;
  /**
   * Rejections too many to carry in the report itself: each slice workflow named here holds the
   * rest (its `status` query lists them). The client's listRejected() pages through them.
   */
  rejectedElsewhere?: { workflowId: string; count: number; warnings: number }[];
  /**
   * What the report left out to stay under its byte budget (REPORT_BYTES): counts never are. Set
   * only when something was left out; listRejected() pages in every rejection, failure and warning.
   */
  omitted?: ReportOmissions;
}

/** Bytes a report (workflow result, `status` answer, SyncAborted details) may take as JSON. */
export const REPORT_BYTES = 200 * 1024;

/** Items left out of a report's lists (they stay pageable unless said otherwise), and echoes dropped. */
export interface ReportOmissions {
  /** Rejections and failures of the sync's own list left out (the sync's `sliceEntries` query pages them). */
  rejected: number;
  failed: number;
  /** Warnings left out (the `sliceWarnings` queries of the sync and its slices page them). */
  warnings: number;
  /** Superseded pairs left out (the sync's `sliceEntries` query lists them with `by`). */
  superseded: number;
  /** Refused re-submission items left out (their update answers carried them). */
  refused: number;
  /** Provider calls left out (each slice's result keeps its own). */
  calls: number;
  /** Slice workflows left out of `rejectedElsewhere` (the sync's `rejectedElsewhere` query pages them). */
  rejectedElsewhere: number;
  /** Listed rejections and failures whose target echo was dropped or message cut short. */
  echoes: number;
}

/** True when the report's promise holds: every target is counted in exactly one state. */
export const countsAddUp = (c: Counts): boolean =>
  c.submitted === c.pending + c.accepted + c.rejected + c.failed + c.superseded;
