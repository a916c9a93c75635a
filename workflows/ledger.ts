/**
 * The ledger: every target a sync received (originals, then re-submissions) is in exactly one
 * state. Accepted targets are only counted; every other target keeps an entry (pending, rejected,
 * failed, superseded) keyed by its sequence number. Counts in every report derive from it, so
 * they always add up. Plain JSON-friendly data only: it must survive continue-as-new.
 */
import type {
  Counts,
  Failure,
  ProviderCall,
  RefusedItem,
  Rejection,
  RejectionOrigin,
  TargetState,
  Warning,
} from '../contracts/index.ts';
import { targetId } from '../contracts/index.ts';

export interface Entry {
  state: TargetState;
  /** Kept for inline targets (they are sent from here) and as an echo for rejections. */
  target?: unknown;
  line?: number;
  identity?: string;
  code?: string;
  message?: string;
  origin?: RejectionOrigin;
  /** Times re-sent after a transient rejection. */
  resends: number;
  /** Sequence number of the re-submission that replaced this entry. */
  supersededBy?: number;
}

/** Rejections and failures held by a slice workflow because the sync's own list was full. */
export interface Elsewhere {
  /** The slice workflow that lists them; absent for slices never sent (an aborted sync). */
  workflowId?: string;
  rejected: number;
  failed: number;
  warnings?: number;
}

export interface Ledger {
  /** Targets received so far: originals scanned plus re-submissions taken. */
  submitted: number;
  /** Accepted targets (they keep no entry). */
  accepted: number;
  /** Keyed by sequence number; integer keys iterate in ascending order. */
  entries: Record<string, Entry>;
  elsewhere: Elsewhere[];
  warnings: Warning[];
  calls: ProviderCall[];
  refused: RefusedItem[];
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
    if (detail.warning !== undefined) ledger.warnings.push({ id: targetId(seq), message: detail.warning });
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
  };
  for (const e of Object.values(ledger.entries)) if (e.state !== 'pending') c[e.state] += 1;
  for (const x of ledger.elsewhere) {
    c.rejected += x.rejected;
    c.failed += x.failed;
  }
  c.pending = c.submitted - c.accepted - c.rejected - c.failed - c.superseded;
  return c;
}

const withLine = (e: Entry) => (e.line !== undefined ? { line: e.line } : {});

export function listRejected(ledger: Ledger): Rejection[] {
  return Object.entries(ledger.entries)
    .filter(([, e]) => e.state === 'rejected')
    .map(([seq, e]) => ({
      id: targetId(Number(seq)),
      ...withLine(e),
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
      ...withLine(e),
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
