/**
 * Insider syncs end to end: the real dev server, real workers, the Insider simulator. The same
 * workflow, client and report as Octogen's; only the adapter and the simulator differ.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awaitFirstPass, awaitReport, resubmit, startSync } from '../client/index.ts';
import { FailureType, countsAddUp, type SyncReport } from '../contracts/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { connectTestEnv, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const PARTNER = 'acme-partner';
const TOKEN = 'insider-test-token';
const items = makeInsiderItems(3000);
const update = (key: string, extra: Record<string, unknown> = { in_stock: 1, price: { USD: 40.9 } }) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, ...extra };
};

let t: TemporalTestEnv;
let sim: InsiderSimulator;
const workerEnv = (over: Record<string, string> = {}) => ({
  INSIDER_BASE_URL: sim.url,
  INSIDER_PARTNER_NAME: 'ACME-Partner', // the adapter lowercases it
  INSIDER_REQUEST_TOKEN: TOKEN,
  INSIDER_REQUESTS_PER_MINUTE: '6000',
  ...over,
});
const fast = { callInitialInterval: '100ms', callMaximumInterval: '1s' } as const;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startInsiderSimulator({
    partnerName: PARTNER,
    token: TOKEN,
    items,
    productAttributes: ['material'],
    requestsPerMinute: Infinity,
    maxRequestBytes: 200_000,
  });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});
beforeEach(() => sim.reset());

const sentRecords = () => sim.requests.flatMap((r) => r.body as { item_id: string; locale: string }[]);
const expectAddsUp = (report: SyncReport) => {
  expect(countsAddUp(report.counts)).toBe(true);
  expect(report.counts.pending).toBe(0);
};

async function sync(targets: unknown[], options = {}, env = workerEnv()) {
  return withWorker(t, { env }, async (taskQueue) => {
    const { workflowId } = await startSync(t.client, { provider: 'insider', targets, options }, taskQueue);
    return awaitReport(t.client, workflowId);
  });
}

describe('Insider sync through the real server', () => {
  it('delivers 2,500 valid updates in the fewest batches the limits allow, each once', async () => {
    const { report } = await sync(items.slice(0, 2500).map((k) => update(k, { in_stock: 1 })));
    expect(sim.requests.map((r) => (r.body as unknown[]).length).sort()).toEqual([1000, 1000, 500]);
    expect(new Set(sentRecords().map((r) => `${r.item_id}:${r.locale}`)).size).toBe(2500);
    expect(report.counts).toMatchObject({ submitted: 2500, accepted: 2500 });
    expect(sim.requests.every((r) => r.keyValid)).toBe(true);
    expectAddsUp(report);
  });

  it('accepts undefined attributes with the warning, rejects unknown items and invalid fields, and takes corrections', async () => {
    const targets = [
      update(items[0]!, { product_attributes: { stock_code: '0102' } }),
      update('no-such-sku:en_US'),
      update(items[1]!, { in_stock: 'yes' }),
      update(items[2]!, {}),
      update(items[3]!),
    ];
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(t.client, { provider: 'insider', targets }, taskQueue);
      const first = await awaitFirstPass(t.client, workflowId);
      const rejected = Object.fromEntries(first.report.rejected.map((r) => [r.id, r]));
      expect(rejected.t1).toMatchObject({ code: 'item_not_found', origin: 'provider' });
      expect(rejected.t2).toMatchObject({ code: 'invalid_target', origin: 'validation' });
      expect(rejected.t2?.message).toMatch(/in_stock must be an integer/);
      expect(rejected.t3?.message).toMatch(/no update field/);
      expect(first.report.warnings).toEqual([{ id: 't0', message: expect.stringContaining('(stock_code)') }]);

      const answer = await resubmit(t.client, workflowId, [
        { fixes: 't1', target: update(items[4]!) },
        { fixes: 't2', target: update(items[1]!, { in_stock: 0 }) },
        { fixes: 't3', target: update(items[2]!, { name: 'Blue shirt' }) },
      ]);
      expect(answer.refused).toEqual([]);
      return awaitReport(t.client, workflowId);
    });
    expect(outcome.report.closedReason).toBe('nothing-to-fix');
    expect(outcome.report.counts).toMatchObject({ submitted: 8, accepted: 5, superseded: 3, rejected: 0 });
    expect(JSON.stringify(sentRecords())).not.toContain('"yes"');
    expectAddsUp(outcome.report);
  });

  it('splits a batch the provider finds too large and delivers it; a record over 512 KB is rejected, never sent', async () => {
    const description = 'x'.repeat(400);
    const big = { ...update(items[999]!), product_attributes: { material: 'y'.repeat(600_000) } };
    const targets = [...items.slice(0, 800).map((k) => update(k, { description })), big];
    const { report } = await sync(targets, { ...fast, resubmissionWindow: '0s' });
    const statuses = sim.requests.map((r) => r.status);
    expect(statuses.filter((s) => s === 400).length).toBeGreaterThanOrEqual(1);
    expect(report.counts).toMatchObject({ submitted: 801, accepted: 800, rejected: 1 });
    expect(report.rejected[0]).toMatchObject({ id: 't800', code: 'target_too_large', origin: 'validation' });
    const delivered = sim.requests.filter((r) => r.status === 200).flatMap((r) => r.body as { item_id: string }[]);
    expect(delivered).toHaveLength(800);
    expect(delivered.some((r) => r.item_id === big.item_id)).toBe(false);
    expectAddsUp(report);
  });

  it('ends the sync after one call on a 401, naming the token', async () => {
    const failure = await sync(
      items.slice(0, 30).map((k) => update(k)),
      { ...fast, batchSize: 10, concurrency: 1 },
      workerEnv({ INSIDER_REQUEST_TOKEN: 'wrong' }),
    ).catch((e: unknown) => e);
    // awaitReport returns aborted syncs as an outcome with a reason.
    const outcome = failure as { abortReason?: string; report: SyncReport };
    expect(sim.requests).toHaveLength(1);
    expect(outcome.abortReason).toMatch(/INSIDER_REQUEST_TOKEN/);
    expect(outcome.abortReason).not.toContain('wrong');
    expect(outcome.report.counts).toMatchObject({ submitted: 30, failed: 30 });
    expectAddsUp(outcome.report);

    const raw = await withWorker(t, { env: workerEnv({ INSIDER_PARTNER_NAME: 'someone-else' }) }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'insider', targets: [update(items[0]!)] },
        taskQueue,
      );
      return t.client.workflow
        .getHandle(workflowId)
        .result()
        .catch((e: unknown) => e);
    });
    expect(raw).toBeInstanceOf(WorkflowFailedError);
    const cause = (raw as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(FailureType.SyncAborted);
    expect(cause.message).toMatch(/INSIDER_PARTNER_NAME/);
  });

  it('retries 500 twice then delivers', async () => {
    sim.faults.script({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const { report } = await sync([update(items[5]!)], fast);
    expect(sim.requests.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(report.counts.accepted).toBe(1);
  });
});

describe('Insider budget', () => {
  it('keeps three syncs at once within a 60-a-minute account budget: no 429 from us', async () => {
    const budgeted = await startInsiderSimulator({ partnerName: PARTNER, token: TOKEN, items, requestsPerMinute: 60 });
    try {
      const env = {
        INSIDER_BASE_URL: budgeted.url,
        INSIDER_PARTNER_NAME: PARTNER,
        INSIDER_REQUEST_TOKEN: TOKEN,
        INSIDER_REQUESTS_PER_MINUTE: '60',
      };
      // 66 single-record calls: more than the budget allows in one minute.
      const reports = await withWorker(t, { env, taskQueue: uniqueTaskQueue('budget') }, async (taskQueue) => {
        const starts = [0, 1, 2].map((s) =>
          startSync(
            t.client,
            {
              provider: 'insider',
              targets: items.slice(s * 22, s * 22 + 22).map((k) => update(k)),
              options: { batchSize: 1, concurrency: 8 },
            },
            taskQueue,
          ),
        );
        const ids = await Promise.all(starts);
        return Promise.all(ids.map((s) => awaitReport(t.client, s.workflowId)));
      });
      expect(budgeted.rateLimited).toBe(0);
      expect(budgeted.requests).toHaveLength(66);
      for (const { report } of reports) {
        expect(report.counts).toMatchObject({ submitted: 22, accepted: 22 });
        expectAddsUp(report);
      }
    } finally {
      await budgeted.close();
    }
  }, 180_000);
});
