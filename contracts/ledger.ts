/**
 * The ledger's shape: every target a sync received is in exactly one state; accepted targets are
 * only counted, every other one keeps an entry. Plain JSON: a run hands it to the next one on
 * continue-as-new (`SyncInput.carried`), under CARRY_BYTES.
 */
import type {
  CarriedCounts,
  ProviderCall,
  RejectionOrigin,
  SliceRef,
  SyncOptions,
  TargetSource,
  TargetState,
  Warning,
} from './sync.ts';
import type { RefusedItem } from './resubmission.ts';

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
  /** Carried across continue-as-new instead of `workflowId` when that is `<sync id>/slice-<slice>`. */
  slice?: number;
  rejected: number;
  failed: number;
  warnings?: number;
}

export interface Ledger {
  /** Targets received so far: originals scanned plus re-submissions taken. */
  submitted: number;
  /** Accepted targets (they keep no entry). */
  accepted: number;
  /** Targets found unchanged (`changedOnly`): never sent, taken out of `submitted` when found. */
  unchanged?: number;
  /** Keyed by sequence number; integer keys iterate in ascending order. */
  entries: Record<string, Entry>;
  elsewhere: Elsewhere[];
  warnings: Warning[];
  calls: ProviderCall[];
  refused: RefusedItem[];
  /** Provider calls and refused items not kept (past CALLS_KEPT / REFUSED_KEPT): counted, never silently dropped. */
  omittedCalls?: number;
  omittedRefused?: number;
}

/** The sync workflow's input: the request as the client normalised it (no secrets, ever). */
export interface SyncInput {
  provider: string;
  source: TargetSource;
  options?: SyncOptions;
  /** Set only by continue-as-new: where the previous run left off (under CARRY_BYTES). */
  carried?: Carried;
  /** Set by a schedule's run for the sync of items it carried forward: shown in the report as `carried`. */
  carriedForward?: CarriedCounts;
}

/** What a sync run hands to the next one on continue-as-new: cursors and counts, never the source. */
export interface Carried {
  ledger: Ledger;
  inlineBytes: number;
  /** The source's pages (at most 1,000 targets each), packed: a few bytes a page (workflows/pages.ts). */
  pages?: PackedPages;
  /** The pages as runs before packing carried them (kept readable for histories recorded then). */
  slices?: SliceRef[];
  nextSlice: number;
  finishRequested: boolean;
}

/**
 * Pages in a few bytes each: one comma-separated token a page, `length` when the page holds `size`
 * targets right after the previous one, else `length:count:startGap:lineGap`.
 */
export interface PackedPages {
  size: number;
  tokens: string;
}

/** Bytes the carried state may take: well under Temporal's payload limit (and the 256 KB the tests hold). */
export const CARRY_BYTES = 224 * 1024;
