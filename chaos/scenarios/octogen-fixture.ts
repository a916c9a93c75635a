/**
 * An Octogen catalog for a chaos run: the simulator's products, and a by-reference target file in
 * which a seeded share of lines names a product the simulator does not know (rejected
 * `product_not_found`), with the correction of each (the real product's uuid).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { resubmit, type ResubmissionItem } from '../../client/index.ts';
import { parseTargetId } from '../../contracts/index.ts';
import { deterministicUuid, makeOctogenProducts, type OctogenProduct } from '../../simulators/octogen.ts';
import { retrying } from '../harness.ts';
import { octogen, type Expectation, type Listed } from '../invariant.ts';
import { CHAOS_CATALOG, CHAOS_KEY } from '../scenarios.ts';

export interface OctogenFixture {
  products: OctogenProduct[];
  /** The uuid each line names (a ghost's is unknown to the simulator). */
  lineUuids: string[];
  ghosts: ReadonlySet<number>;
  file: string;
}

const productCache = new Map<number, OctogenProduct[]>();

/** `n` targets, each line a ghost with probability `ghostRate` (seeded). */
export function octogenFixture(
  dir: string,
  name: string,
  n: number,
  ghostRate: number,
  rnd: () => number,
): OctogenFixture {
  const products = productCache.get(n) ?? makeOctogenProducts(CHAOS_CATALOG, n);
  productCache.set(n, products);
  const ghosts = new Set<number>();
  const lineUuids = products.map((p, i) => {
    if (rnd() >= ghostRate) return p.uuid;
    ghosts.add(i);
    return deterministicUuid(`ghost:${name}:${i}`);
  });
  const file = path.join(dir, `${name}.ndjson`);
  writeFileSync(file, `${lineUuids.map((uuid) => JSON.stringify({ uuid })).join('\n')}\n`);
  return { products, lineUuids, ghosts, file };
}

export const octogenSimKeys = { [CHAOS_KEY]: [CHAOS_CATALOG] };
export const octogenEnv = (url: string, extra: Record<string, string> = {}) => ({
  OCTOGEN_BASE_URL: url,
  OCTOGEN_PLATFORM_API_KEY: CHAOS_KEY,
  ...extra,
});

/** The expectation of a sync of this fixture, with corrections for `fixed`. */
export function octogenExpectation(
  f: OctogenFixture,
  submitted: number,
  extra: Partial<Expectation> = {},
): Expectation {
  return {
    submitted,
    ...octogen,
    identityOf: (seq, fixes) => {
      if (fixes !== undefined) return `uuid:${f.products[fixes]?.uuid ?? ''}`;
      const uuid = f.lineUuids[seq];
      return uuid === undefined ? undefined : `uuid:${uuid}`;
    },
    mayReject: (seq) => f.ghosts.has(seq),
    ...extra,
  };
}

/** The correction of each listed rejection: the real product of its line. */
export function corrections(f: OctogenFixture, listed: Listed): ResubmissionItem[] {
  return listed.rejected.flatMap((r) => {
    const seq = parseTargetId(r.id);
    const product = seq === undefined ? undefined : f.products[seq];
    return product ? [{ fixes: r.id, target: { uuid: product.uuid } }] : [];
  });
}

/** Sends corrections by update (client/sync-client.ts resubmit), retried across a restart. */
export async function sendByUpdate(client: Client, workflowId: string, items: ResubmissionItem[], deadline: number) {
  return retrying(() => resubmit(client, workflowId, items), deadline);
}

/** Sends corrections by signal, the way a Temporal client does it: handle.signal('resubmit', {items}). */
export async function sendBySignal(client: Client, workflowId: string, items: ResubmissionItem[], deadline: number) {
  await retrying(() => client.workflow.getHandle(workflowId).signal('resubmit', { items }), deadline);
}
