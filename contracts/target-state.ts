/**
 * The target-state store's contract: where every item of a provider account last stood (state,
 * code, message, the sync that said so) and the content hash of its last accepted payload.
 * Activities write it after each provider answer (activities/state/); the CLI and the HTTP front
 * read it. Workflow code never touches it: nothing here is a workflow input.
 *
 * One row per (account, identity): `account` is the provider-account digest of
 * activities/governor.ts (never a credential), `identity` the bounded identity of
 * activities/plan.ts. A write is idempotent: the same outcome written again by a retried activity
 * changes nothing, and an older answer never overwrites a newer one.
 */
import { z } from 'zod';

export const TARGET_STATES = ['accepted', 'rejected', 'failed', 'superseded'] as const;
export type TargetState = (typeof TARGET_STATES)[number];

/** One item's outcome as an activity records it. */
export interface TargetOutcomeRecord {
  provider: string;
  /** The provider-account digest (activities/governor.ts `governorAccount`). */
  account: string;
  identity: string;
  state: TargetState;
  code?: string | undefined;
  message?: string | undefined;
  /** The content hash of the payload sent: kept as the last accepted one when `state` is accepted. */
  contentHash?: string | undefined;
  /** The sync's workflow ID (a slice's outcomes name their sync, not the slice). */
  syncId: string;
  /** The call that answered (workflow, activity and batch): the same outcome of the same call changes nothing. */
  batch: string;
  /** The HTTP front's caller the sync was started for (its memo), if any. */
  caller?: string | undefined;
  /** When the provider answered, in ms since the epoch. */
  at: number;
  /**
   * Rejected for a reason the adapter calls transient, or failed: a schedule's next run carries it
   * forward (docs/state.md, "Failures carried forward"). Cleared by an acceptance.
   */
  retryable?: boolean | undefined;
  /**
   * A rejected or failed item's target as sent (JSON), kept for carrying it forward while it is at
   * most MAX_CARRIED_TARGET_BYTES; over that, only `targetBytes` is kept (the item is never carried).
   * Targets hold no credentials. Cleared by an acceptance.
   */
  target?: string | undefined;
  /** The size of the target as sent, in bytes of JSON (rejected and failed items). */
  targetBytes?: number | undefined;
}

/** A rejected or failed item's target is kept for carrying forward up to this many bytes of JSON. */
export const MAX_CARRIED_TARGET_BYTES = 32 * 1024;

/** An item as the store keeps it. */
export interface TargetRow {
  provider: string;
  account: string;
  identity: string;
  state: TargetState;
  code?: string;
  message?: string;
  /** Content hash of the last accepted payload (kept when a later answer rejected the item). */
  acceptedHash?: string;
  /** When that payload was accepted (ms). */
  acceptedAt?: number;
  syncId: string;
  caller?: string;
  /** When the last answer came (ms). */
  at: number;
  /** How many answers changed the row (a retried write of the same answer does not count). */
  writes: number;
  /** Its last answer was a transient rejection or a failure: a schedule's next run carries it forward. */
  retryable?: true;
  /** A rejected or failed item whose target (this many bytes) was over MAX_CARRIED_TARGET_BYTES: never carried. */
  tooLargeToCarry?: number;
}

/** Which items a schedule's run carries forward (docs/state.md, "Failures carried forward"). */
export interface CarryQuery {
  provider: string;
  account: string;
  /** Every rejection too, not only the retryable ones (the schedule's `carryRejected`). */
  includeRejected: boolean;
  /**
   * Only items last answered by a run of this schedule: sync IDs `<runsPrefix><time>/...`, the
   * runs' workflow ID prefix with its dash, followed by the time Temporal appends.
   */
  runsPrefix: string;
  /** Items last answered in these syncs are not carried (the run's own syncs settled them). */
  excludeSyncs: readonly string[];
  /** Only items last answered before this time (ms): the answers of syncs still in flight are theirs. */
  before: number;
  limit: number;
  /** The `next` of the page before: pages go oldest answer first. */
  after?: CarryCursor | undefined;
  /** Count every item that matches (`total`), not only this page's. */
  count?: boolean | undefined;
}

/** Where a page of carried items ends: the last item's answer time and identity. */
export type CarryCursor = [at: number, identity: string];

export interface CarryRow {
  identity: string;
  state: 'rejected' | 'failed';
  code?: string;
  retryable: boolean;
  syncId: string;
  at: number;
  /** The target as sent (JSON); absent when it was over the cap (`targetBytes` says its size). */
  target?: string;
  targetBytes?: number;
}

export interface CarryPage {
  items: CarryRow[];
  next?: CarryCursor;
  /** With `count`: every item that matches the query and can be carried (its target was kept). */
  total?: number;
  /** With `count`: the items that match but were too large to keep (never carried). */
  tooLarge?: number;
}

export interface TargetListQuery {
  provider: string;
  state?: TargetState | undefined;
  /** Only the items of this caller (the HTTP front's scoped tokens); undefined: every caller's. */
  caller?: string | undefined;
  limit: number;
  /** The `next` cursor of the page before. */
  after?: string | undefined;
}

export interface TargetPage {
  items: TargetRow[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** The store, as activities, the CLI and the HTTP front use it. */
export interface TargetStateStore {
  /** What the store is, for messages: "sqlite <file>" or "postgres <host:port>/<db>" (never a password). */
  readonly where: string;
  /** Records outcomes in one transaction; returns how many rows changed. */
  record(outcomes: readonly TargetOutcomeRecord[]): Promise<number>;
  /** Every account's row for this provider's item (usually one). */
  find(provider: string, identity: string): Promise<TargetRow[]>;
  /** Rows in (account, identity) order, a page at a time. */
  list(query: TargetListQuery): Promise<TargetPage>;
  /**
   * The last accepted content hash of each identity that has one. With `exceptSync`, an item whose
   * last answer is that sync's own acceptance has none: a changed-only sync retried after its store
   * took a later batch's answers must not count targets it sent itself as unchanged (it sends them
   * again, and counts them accepted).
   */
  acceptedHashes(account: string, identities: readonly string[], exceptSync?: string): Promise<Map<string, string>>;
  /** Items a schedule's run may carry forward, oldest answer first, a page at a time. */
  carryable(query: CarryQuery): Promise<CarryPage>;
  close(): Promise<void>;
}

export const MAX_TARGET_PAGE = 1000;
export const DEFAULT_TARGET_PAGE = 100;

export const targetStateSchema = z.enum(TARGET_STATES, {
  error: () => `state must be one of: ${TARGET_STATES.join(', ')}`,
});

/** A page request from a front end: each field names its fix. */
export const targetListQuerySchema = z.object({
  state: targetStateSchema.optional(),
  limit: z.coerce
    .number({ error: () => `limit must be a whole number from 1 to ${MAX_TARGET_PAGE}` })
    .int({ error: () => `limit must be a whole number from 1 to ${MAX_TARGET_PAGE}` })
    .min(1, { error: () => `limit must be a whole number from 1 to ${MAX_TARGET_PAGE}` })
    .max(MAX_TARGET_PAGE, { error: () => `limit must be a whole number from 1 to ${MAX_TARGET_PAGE}` })
    .default(DEFAULT_TARGET_PAGE),
  after: z
    .string()
    .max(4096, { error: () => 'after must be the `next` cursor of the page before' })
    .regex(/^[A-Za-z0-9_-]+$/, { error: () => 'after must be the `next` cursor of the page before' })
    .optional(),
});

/** A cursor that is not a `next` the store gave. */
export class TargetCursorError extends Error {
  override readonly name = 'TargetCursorError';
}
