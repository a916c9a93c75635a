/**
 * "Where is this product?": the target-state store's answers as the CLI and the HTTP front show
 * them (one library call each; the front ends only format). Each item names its last state, code,
 * message, when, and the sync that said so with its Temporal UI link. A scoped caller (the HTTP
 * front's `caller=token`) sees only the items of its own syncs: another's item is "not found".
 */
import { z } from 'zod';
import { providerNames } from '../activities/providers/index.ts';
import {
  NO_STATE_STORE,
  openStateStore,
  stateLocation,
  stateStoreConfigured,
  stateWhere,
} from '../activities/state/index.ts';
import {
  TargetCursorError,
  targetListQuerySchema,
  type TargetRow,
  type TargetState,
  type TargetStateStore,
} from '../contracts/target-state.ts';
import { workflowUiLink, type TemporalSettings } from '../temporal/connection.ts';

/** A lookup the caller must change: one line naming the field and the fix. */
export class TargetLookupError extends Error {
  override readonly name = 'TargetLookupError';
}

/** The store could not answer: names the store (kind, host, database), never its password. */
export class TargetStoreError extends Error {
  override readonly name = 'TargetStoreError';
}

/** An item as the front ends show it. */
export interface TargetView {
  provider: string;
  identity: string;
  /** The provider-account digest (never a credential). */
  account: string;
  state: TargetState;
  code?: string;
  message?: string;
  /** When the provider last answered for it (ISO 8601). */
  at: string;
  syncId: string;
  /** The sync in the Temporal UI. */
  syncUrl: string;
  /** Content hash of the last accepted payload, and when it was accepted. */
  acceptedHash?: string;
  acceptedAt?: string;
  caller?: string;
  /** Its last answer was transient (a rejection or a failure): the next run of the schedule that sent it carries it forward. */
  retryable?: true;
  /** Its target (this many bytes of JSON) was over the store's cap: never carried forward. */
  tooLargeToCarry?: number;
}

export interface TargetViewPage {
  items: TargetView[];
  next?: string;
}

type Ui = Pick<TemporalSettings, 'uiUrl' | 'namespace'>;

const providerField = (provider: string): string => {
  if (!providerNames().includes(provider)) {
    throw new TargetLookupError(`unknown provider "${provider}": use one of ${providerNames().join(', ')}`);
  }
  return provider;
};

const identitySchema = z
  .string()
  .min(1, {
    error: () => 'the identity is empty: give the item\u2019s identity (item_id:locale, uuid:<uuid>, url:<url>)',
  })
  .max(1000, { error: () => 'the identity is over 1,000 characters: give the identity a report shows' });

export function viewOf(row: TargetRow, ui: Ui): TargetView {
  return {
    provider: row.provider,
    identity: row.identity,
    account: row.account,
    state: row.state,
    ...(row.code !== undefined ? { code: row.code } : {}),
    ...(row.message !== undefined ? { message: row.message } : {}),
    at: new Date(row.at).toISOString(),
    syncId: row.syncId,
    syncUrl: workflowUiLink(ui, row.syncId),
    ...(row.acceptedHash !== undefined ? { acceptedHash: row.acceptedHash } : {}),
    ...(row.acceptedAt !== undefined ? { acceptedAt: new Date(row.acceptedAt).toISOString() } : {}),
    ...(row.caller !== undefined ? { caller: row.caller } : {}),
    ...(row.retryable === true ? { retryable: true as const } : {}),
    ...(row.tooLargeToCarry !== undefined ? { tooLargeToCarry: row.tooLargeToCarry } : {}),
  };
}

/** Runs a read against the store, turning its failures into one line naming the store. */
async function reading<T>(store: TargetStateStore, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TargetCursorError || err instanceof TargetLookupError) throw err;
    const first = ((err as Error).message ?? String(err)).split('\n')[0];
    throw new TargetStoreError(
      `the target-state store (${store.where}) cannot be read: ${first}; check CATALOG_SYNC_STATE_URL and that the store is up`,
    );
  }
}

/**
 * The item's rows, one per provider account that has it (usually one); empty when the store has
 * none, or (for a scoped caller) only another caller's.
 */
export async function showTarget(
  store: TargetStateStore,
  ui: Ui,
  q: { provider: string; identity: string; caller?: string | undefined },
): Promise<TargetView[]> {
  const provider = providerField(q.provider);
  const identity = identitySchema.safeParse(q.identity);
  if (!identity.success) throw new TargetLookupError(identity.error.issues[0]?.message ?? 'the identity is invalid');
  const rows = await reading(store, () => store.find(provider, identity.data));
  return rows.filter((r) => q.caller === undefined || r.caller === q.caller).map((r) => viewOf(r, ui));
}

/** A page of a provider's items, optionally in one state, in a stable order; `next` fetches the page after. */
export async function listTargets(
  store: TargetStateStore,
  ui: Ui,
  q: {
    provider: string;
    state?: string | undefined;
    limit?: number | string | undefined;
    after?: string | undefined;
    caller?: string | undefined;
  },
): Promise<TargetViewPage> {
  const provider = providerField(q.provider);
  const parsed = targetListQuerySchema.safeParse({
    ...(q.state !== undefined ? { state: q.state } : {}),
    ...(q.limit !== undefined ? { limit: q.limit } : {}),
    ...(q.after !== undefined ? { after: q.after } : {}),
  });
  if (!parsed.success) throw new TargetLookupError(parsed.error.issues[0]?.message ?? 'invalid page request');
  try {
    const page = await reading(store, () =>
      store.list({ provider, ...parsed.data, ...(q.caller !== undefined ? { caller: q.caller } : {}) }),
    );
    return { items: page.items.map((r) => viewOf(r, ui)), ...(page.next !== undefined ? { next: page.next } : {}) };
  } catch (err) {
    if (err instanceof TargetCursorError) throw new TargetLookupError(err.message);
    throw err;
  }
}

/** The store CATALOG_SYNC_STATE_URL names, opened for `fn` and closed after; a URL it cannot use is one line. */
export async function withStateStore<T>(
  env: NodeJS.ProcessEnv,
  fn: (store: TargetStateStore) => Promise<T>,
): Promise<T> {
  let store: TargetStateStore;
  if (!stateStoreConfigured(env)) throw new TargetStoreError(NO_STATE_STORE);
  try {
    store = openStateStore(env);
  } catch (err) {
    let where: string;
    try {
      where = stateWhere(stateLocation(env));
    } catch {
      throw new TargetStoreError((err as Error).message);
    }
    throw new TargetStoreError(
      `the target-state store (${where}) cannot be opened: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  try {
    return await fn(store);
  } finally {
    await store.close().catch(() => undefined);
  }
}
