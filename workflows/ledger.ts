/**
 * The ledger: one entry per target the sync received (originals, then re-submissions), each in
 * exactly one state. Every count in every report is derived from it, so they always add up.
 * Plain JSON-friendly data only: it must survive continue-as-new.
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
  target: unknown;
  state: TargetState;
  identity?: string;
  code?: string;
  message?: string;
  origin?: RejectionOrigin;
  warning?: string;
  /** Times re-sent after a transient rejection. */
  resends: number;
  /** Sequence number of the re-submission that replaced this entry. */
  supersededBy?: number;
}

export interface Ledger {
  entries: Entry[];
  calls: ProviderCall[];
  refused: RefusedItem[];
}

export const newLedger = (targets: unknown[]): Ledger => ({
  entries: targets.map((target) => ({ target, state: 'pending', resends: 0 })),
  calls: [],
  refused: [],
});

export function settle(
  entry: Entry,
  state: 'accepted' | 'rejected' | 'failed',
  detail: {
    code?: string;
    message?: string;
    origin?: RejectionOrigin;
    warning?: string;
  } = {},
): void {
  entry.state = state;
  if (detail.code !== undefined) entry.code = detail.code;
  if (detail.message !== undefined) entry.message = detail.message;
  if (detail.origin !== undefined) entry.origin = detail.origin;
  if (detail.warning !== undefined) entry.warning = detail.warning;
}

/** Rejected or failed: what a re-submission may fix. */
export const isFixable = (e: Entry): boolean => e.state === 'rejected' || e.state === 'failed';

export function counts(ledger: Ledger): Counts {
  const c: Counts = {
    submitted: ledger.entries.length,
    pending: 0,
    accepted: 0,
    rejected: 0,
    failed: 0,
    superseded: 0,
  };
  for (const e of ledger.entries) c[e.state] += 1;
  return c;
}

export function listRejected(ledger: Ledger): Rejection[] {
  const out: Rejection[] = [];
  ledger.entries.forEach((e, seq) => {
    if (e.state === 'rejected') {
      out.push({
        id: targetId(seq),
        target: e.target,
        code: e.code ?? 'rejected',
        message: e.message ?? '',
        origin: e.origin ?? 'provider',
      });
    }
  });
  return out;
}

export function listFailed(ledger: Ledger): Failure[] {
  const out: Failure[] = [];
  ledger.entries.forEach((e, seq) => {
    if (e.state === 'failed')
      out.push({
        id: targetId(seq),
        target: e.target,
        code: e.code ?? 'failed',
        message: e.message ?? '',
      });
  });
  return out;
}

export function listWarnings(ledger: Ledger): Warning[] {
  const out: Warning[] = [];
  ledger.entries.forEach((e, seq) => {
    if (e.warning !== undefined) out.push({ id: targetId(seq), message: e.warning });
  });
  return out;
}

export function listSuperseded(ledger: Ledger): { id: string; by: string }[] {
  const out: { id: string; by: string }[] = [];
  ledger.entries.forEach((e, seq) => {
    if (e.state === 'superseded' && e.supersededBy !== undefined)
      out.push({ id: targetId(seq), by: targetId(e.supersededBy) });
  });
  return out;
}
