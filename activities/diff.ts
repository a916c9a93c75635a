/**
 * Send only what changed (docs/state.md): which planned targets carry the content the provider
 * last accepted for their item. The hash compared is the one recorded on acceptance: of the
 * adapter's diff content (Octogen: the record's `version` or `etag`), else of the parsed target.
 * Pure but for the one store query; callers say what a store that cannot answer means.
 */
import type { TargetStateStore } from '../contracts/target-state.ts';
import type { AnyProviderAdapter } from './providers/adapter.ts';
import { contentHash } from './state/index.ts';

/** The hash a changed-only sync compares; undefined when the target has nothing to compare (always sent). */
export function diffHash(adapter: AnyProviderAdapter, target: unknown): string | undefined {
  const content = adapter.diffContent ? adapter.diffContent(target) : target;
  return content === undefined ? undefined : contentHash(content);
}

/** What an accepted answer records: the diff hash, else the hash of the target as sent. */
export const acceptedHash = (adapter: AnyProviderAdapter, target: unknown): string =>
  diffHash(adapter, target) ?? contentHash(target);

/**
 * Of `items` (valid, parsed targets with their bounded identities), the sequence numbers whose diff
 * hash equals their item's last accepted one, in one store query. Throws what the store throws.
 */
export async function unchangedSeqs(
  store: TargetStateStore,
  account: string,
  adapter: AnyProviderAdapter,
  items: readonly { seq: number; identity: string; target: unknown }[],
  /** The sync asking: its own acceptances do not count (TargetStateStore.acceptedHashes). */
  exceptSync?: string,
): Promise<number[]> {
  const hashed: { seq: number; identity: string; hash: string }[] = [];
  for (const item of items) {
    const hash = diffHash(adapter, item.target);
    if (hash !== undefined) hashed.push({ seq: item.seq, identity: item.identity, hash });
  }
  if (hashed.length === 0) return [];
  const accepted = await store.acceptedHashes(
    account,
    hashed.map((h) => h.identity),
    exceptSync,
  );
  return hashed.filter((h) => accepted.get(h.identity) === h.hash).map((h) => h.seq);
}
