/**
 * The ledger: every target a sync received (originals, then re-submissions) is in exactly one
 * state. Accepted targets are only counted; every other target keeps an entry (pending, rejected,
 * failed, superseded) keyed by its sequence number. Counts in every report derive from it, so
 * they always add up. Plain JSON-friendly data only: it must survive continue-as-new.
 */
import type {
  Counts,
  Entry,
  Failure,
  Ledger,
  ProviderCall,
  RefusedItem,
  Rejection,
  RejectionOrigin,
  Warning,
} from '../contracts/index.ts';
import { clipText, targetId } from '../contracts/index.ts';

export type { Carried, Elsewhere, Entry, Ledger } from '../contracts/index.ts';

/** At most this many provider calls and refused items are kept: each list stays a few dozen KB. */
export const CALLS_KEPT = 200;
export const REFUSED_KEPT = 200;
/** Refused items' messages are kept this short. */
const REFUSED_MESSAGE_CHARS = 200;

export function addCalls(ledger: Ledger, calls: ProviderCall[], total = calls.length): void {
  const room = Math.max(0, CALLS_KEPT - ledger.calls.length);
  ledger.calls.push(...calls.slice(0, room));
  const left = total - Math.min(room, calls.length);
  if (left > 0) ledger.omittedCalls = (ledger.omittedCalls ?? 0) + left;
}

export function addRefused(ledger: Ledger, refused: RefusedItem[]): void {
  const room = Math.max(0, REFUSED_KEPT - ledger.refused.length);
  ledger.refused.push(
    ...refused.slice(0, room).map((r) => ({ ...r, message: clipText(r.message, REFUSED_MESSAGE_CHARS) })),
  );
  const left = refused.length - Math.min(room, refused.length);
  if (left > 0) ledger.omittedRefused = (ledger.omittedRefused ?? 0) + left;
}

export const newLedger = (): Ledger => ({
  submitted: 0,
  accepted: 0,
  entries: {},
  elsewhere: [],
  warnings: [],
  calls: [],
  refused: [],
});

/**
 * Adds pending entries for `count` targets from `firstSeq`, keeping the targets when given. The
 * caller counts them in `submitted` (a sync counts its whole source when it scans it).
 */
export function receive(ledger: Ledger, firstSeq: number, targets: unknown[] | number): void {
  const count = typeof targets === 'number' ? targets : targets.length;
  for (let i = 0; i < count; i += 1) {
    const entry: Entry = { state: 'pending', resends: 0 };
    if (typeof targets !== 'number') entry.target = targets[i];
    ledger.entries[firstSeq + i] = entry;
  }
}

export function settle(
  ledger: Ledger,
  seq: number,
  state: 'accepted' | 'rejected' | 'failed',
  detail: {
    code?: string;
    message?: string;
    origin?: RejectionOrigin;
    warning?: string;
    target?: unknown;
    identity?: string;
    line?: number;
  } = {},
): void {
  const entry = ledger.entries[seq];
  if (!entry || entry.state !== 'pending') return;
  if (state === 'accepted') {
    delete ledger.entries[seq];
    ledger.accepted += 1;
    if (detail.warning !== undefined) ledger.warnings.push(warningOf(seq, { ...detail, message: detail.warning }));
    return;
  }
  entry.state = state;
  if (detail.code !== undefined) entry.code = detail.code;
  if (detail.message !== undefined) entry.message = detail.message;
  if (detail.origin !== undefined) entry.origin = detail.origin;
  if (detail.target !== undefined && entry.target === undefined) entry.target = detail.target;
  if (detail.identity !== undefined) entry.identity = detail.identity;
  if (detail.line !== undefined) entry.line = detail.line;
}

/** A warning as the ledger keeps it: the target id, the item's identity and line when known, the message. */
export const warningOf = (
  seq: number,
  w: { message: string; identity?: string | undefined; line?: number | undefined },
): Warning => ({
  id: targetId(seq),
  ...(w.identity !== undefined ? { identity: w.identity } : {}),
  ...(w.line !== undefined ? { line: w.line } : {}),
  message: w.message,
});

/**
 * Targets found unchanged (`changedOnly`): never sent, so they leave `submitted` (and pending) for
 * `unchanged`, and `submitted = accepted + rejected + failed + superseded` still holds.
 */
export function markUnchanged(ledger: Ledger, count: number): void {
  if (count <= 0) return;
  ledger.submitted -= count;
  ledger.unchanged = (ledger.unchanged ?? 0) + count;
}

/** Inline targets found unchanged: their pending entries go, and they leave `submitted` for `unchanged`. */
export function settleUnchanged(ledger: Ledger, seqs: readonly number[]): void {
  let n = 0;
  for (const seq of seqs) {
    if (ledger.entries[seq]?.state !== 'pending') continue;
    delete ledger.entries[seq];
    n += 1;
  }
  markUnchanged(ledger, n);
}

/** Rejected or failed: what a re-submission may fix. */
export const isFixable = (e: Entry): boolean => e.state === 'rejected' || e.state === 'failed';

export function counts(ledger: Ledger): Counts {
  const c: Counts = {
    submitted: ledger.submitted,
    pending: 0,
    accepted: ledger.accepted,
    rejected: 0,
    failed: 0,
    superseded: 0,
    unchanged: ledger.unchanged ?? 0,
  };
  for (const e of Object.values(ledger.entries)) if (e.state !== 'pending') c[e.state] += 1;
  for (const x of ledger.elsewhere) {
    c.rejected += x.rejected;
    c.failed += x.failed;
  }
  c.pending = c.submitted - c.accepted - c.rejected - c.failed - c.superseded;
  return c;
}

const withItem = (e: Entry) => ({
  ...(e.identity !== undefined ? { identity: e.identity } : {}),
  ...(e.line !== undefined ? { line: e.line } : {}),
});

export function listRejected(ledger: Ledger): Rejection[] {
  return Object.entries(ledger.entries)
    .filter(([, e]) => e.state === 'rejected')
    .map(([seq, e]) => ({
      id: targetId(Number(seq)),
      ...withItem(e),
      target: e.target,
      code: e.code ?? 'rejected',
      message: e.message ?? '',
      origin: e.origin ?? 'provider',
    }));
}

export function listFailed(ledger: Ledger): Failure[] {
  return Object.entries(ledger.entries)
    .filter(([, e]) => e.state === 'failed')
    .map(([seq, e]) => ({
      id: targetId(Number(seq)),
      ...withItem(e),
      target: e.target,
      code: e.code ?? 'failed',
      message: e.message ?? '',
    }));
}

export function listSuperseded(ledger: Ledger): { id: string; by: string }[] {
  return Object.entries(ledger.entries)
    .filter(([, e]) => e.state === 'superseded' && e.supersededBy !== undefined)
    .map(([seq, e]) => ({ id: targetId(Number(seq)), by: targetId(e.supersededBy ?? 0) }));
}
