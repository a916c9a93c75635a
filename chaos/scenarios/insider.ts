/**
 * Insider with a hidden record limit (the simulator takes 250 records a call, the adapter starts at
 * 1,000) and a request budget (INSIDER_REQUESTS_PER_MINUTE on the worker, requestsPerMinute on the
 * simulator), under a storm of 500 and 429 answers, with the worker killed twice: splits, the
 * learned limit (the account's governor workflow) and warnings must survive the kills.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startSync, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { makeInsiderItems, startInsiderSimulator } from '../../simulators/insider.ts';
import type { Ctx, RunRecord } from '../context.ts';
import { pick, record, settle, waitUntil, workerEnv, Workers } from '../harness.ts';
import { checkSync, insider } from '../invariant.ts';

const N = 3_000;
const MAX_RECORDS = 250;
const BUDGET = 200;
const PARTNER = 'chaos-partner';
const TOKEN = 'chaos-insider-token';
export const INSIDER_OPTIONS: SyncOptions = {
  concurrency: 4,
  callAttempts: 30,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
};

interface InsiderFixture {
  file: string;
  identities: string[];
  unknown: ReadonlySet<number>;
  warned: number;
}

/** Updates of `n` catalog items: 5 % name an item the catalog lacks, 5 % an undefined attribute. */
export function insiderFixture(
  dir: string,
  name: string,
  n: number,
  rnd: () => number,
): InsiderFixture & { items: string[] } {
  const items = makeInsiderItems(n);
  const unknown = new Set<number>();
  let warned = 0;
  const targets = items.map((key, i) => {
    const [item_id, locale] = key.split(':') as [string, string];
    const roll = rnd();
    if (roll < 0.05) {
      unknown.add(i);
      return { item_id: `ghost-${i}`, locale, in_stock: 1 };
    }
    if (roll < 0.1) {
      warned += 1;
      return { item_id, locale, in_stock: 1, product_attributes: { chaos_attr: 'x' } };
    }
    return { item_id, locale, in_stock: 1, price: { USD: 10 + (i % 50) } };
  });
  const file = path.join(dir, `${name}.ndjson`);
  writeFileSync(file, `${targets.map((t) => JSON.stringify(t)).join('\n')}\n`);
  return { file, items, unknown, warned, identities: targets.map((t) => `${t.item_id}:${t.locale}`) };
}

export const insiderEnv = (url: string) => ({
  INSIDER_BASE_URL: url,
  INSIDER_PARTNER_NAME: PARTNER,
  INSIDER_REQUEST_TOKEN: TOKEN,
  INSIDER_REQUESTS_PER_MINUTE: String(BUDGET),
});

export async function insiderRun(ctx: Ctx, seed: number, name: string): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const f = insiderFixture(ctx.dir, `insider-${seed}`, N, rnd);
  const sim = await startInsiderSimulator({
    partnerName: PARTNER,
    token: TOKEN,
    items: f.items,
    productAttributes: ['material'],
    maxRecords: MAX_RECORDS,
    requestsPerMinute: BUDGET,
    latencyMs: 20,
  });
  const workers = new Workers(workerEnv(ctx, `chaos-insider-${seed}`, insiderEnv(sim.url)));
  return record(
    name,
    seed,
    async (details) => {
      sim.faults.rate(
        0.25,
        [
          { kind: 'status', status: 500 },
          { kind: 'status', status: 429, retryAfter: '1' },
        ],
        seed,
      );
      workers.spawn();
      const { workflowId } = await startSync(
        ctx.client,
        { provider: 'insider', targetsRef: { file: f.file }, options: INSIDER_OPTIONS },
        workers.taskQueue,
      );
      for (const k of [1, 2]) {
        const calls = k * pick(rnd, 3, 8);
        await waitUntil(() => sim.requests.length >= calls, 120_000, `${calls} calls`, workers);
        await workers.killAndRestart(pick(rnd, 0, 2_000));
        details.push(`killed after ${calls} calls`);
      }
      const s = await settle(ctx.client, workflowId, ctx.deadline);
      const oversized = sim.requests.filter((r) => Array.isArray(r.body) && r.body.length > MAX_RECORDS).length;
      details.push(
        `storm 500/429 at 0.25; ${oversized} calls over the hidden limit, ${sim.rateLimited} × 429 from the budget`,
      );
      const ev = checkSync(
        s.report,
        s.listed,
        sim.requests,
        {
          submitted: N,
          ...insider,
          identityOf: (seq) => f.identities[seq],
          mayReject: (seq) => f.unknown.has(seq),
          warnings: f.warned,
          duplicateBound: workers.crashes * INSIDER_OPTIONS.concurrency! * MAX_RECORDS,
        },
        s.abortReason,
      );
      // The limit is learned once per account and kept across kills: a few calls over it at most.
      const overBound = (1 + workers.crashes) * INSIDER_OPTIONS.concurrency!;
      if (oversized > overBound) ev.problems.push(`${oversized} calls over the learned limit (bound ${overBound})`);
      if (s.report.counts.rejected !== f.unknown.size)
        ev.problems.push(`${s.report.counts.rejected} rejected, ${f.unknown.size} unknown items`);
      ev.invariantOk = ev.problems.length === 0;
      return ev;
    },
    async () => {
      await workers.stop();
      await sim.close();
    },
    workers,
  );
}
