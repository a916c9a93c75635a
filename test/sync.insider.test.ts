/**
 * Insider syncs end to end: the real dev server, real workers, the Insider simulator. The same
 * workflow, client and report as Octogen's; only the adapter and the simulator differ.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatReport } from '../cli/format.ts';
import { awaitFirstPass, awaitReport, finish, getStatus, listRejected, resubmit, startSync } from '../client/index.ts';
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
      expect(first.report.warnings).toEqual([
        { id: 't0', identity: items[0], message: expect.stringContaining('(stock_code)') },
      ]);

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

  it('names the item (item_id:locale) of every warning and rejection in the report, the status, listRejected and the CLI text', async () => {
    const targets = [
      update(items[10]!),
      update(items[11]!, { product_attributes: { stock_code: '0102' } }),
      update('no-such-sku:en_US'),
      update(items[12]!, { product_attributes: { fabric: 'linen', stock_code: '7' } }),
    ];
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'insider', targets, options: { resubmissionWindow: '30s' } },
        taskQueue,
      );
      const first = await awaitFirstPass(t.client, workflowId);
      const status = await getStatus(t.client, workflowId);
      const listed = await listRejected(t.client, workflowId);
      await finish(t.client, workflowId);
      return { first, status, listed, final: await awaitReport(t.client, workflowId) };
    });
    const warnings = [
      { id: 't1', identity: items[11], message: expect.stringContaining('(stock_code)') },
      { id: 't3', identity: items[12], message: expect.stringContaining('stock_code') },
    ];
    const rejected = [
      expect.objectContaining({ id: 't2', identity: 'no-such-sku:en_US', code: 'item_not_found', origin: 'provider' }),
    ];
    for (const report of [outcome.first.report, outcome.status, outcome.final.report]) {
      expect(report.warnings).toEqual(warnings);
      expect(report.rejected).toEqual(rejected);
    }
    expect(outcome.listed.warnings).toEqual(warnings);
    expect(outcome.listed.rejected).toEqual(rejected);
    const text = formatReport(outcome.final.report.workflowId, outcome.final.report, 'ui');
    expect(text).toContain(`t1 ${items[11]}  `);
    expect(text).toContain(`t3 ${items[12]}  `);
    expect(text).toMatch(/t2 no-such-sku:en_US {2}item_not_found/);
    expectAddsUp(outcome.final.report);
  });

  it('by reference, names the item and the source line of every warning and rejection', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-insider-items-'));
    const file = path.join(dir, 'items.ndjson');
    const lines = [
      update(items[20]!),
      update(items[21]!, { product_attributes: { stock_code: '1' } }),
      update('gone-sku:en_US'),
      update(items[22]!, { in_stock: 'yes' }),
      update(items[20]!, { name: 'again' }),
    ].map((x) => JSON.stringify(x));
    // A blank line: line numbers are the file's, not the targets' order.
    await writeFile(file, `${lines.slice(0, 2).join('\n')}\n\n${lines.slice(2).join('\n')}\n`);
    try {
      const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
        const { workflowId } = await startSync(
          t.client,
          { provider: 'insider', targetsRef: { file }, options: { resubmissionWindow: '0s' } },
          taskQueue,
        );
        const done = await awaitReport(t.client, workflowId);
        return { ...done, listed: await listRejected(t.client, workflowId) };
      });
      expect(outcome.report.counts).toMatchObject({ submitted: 5, accepted: 2, rejected: 3 });
      expect(outcome.report.warnings).toEqual([
        { id: 't1', identity: items[21], line: 2, message: expect.stringContaining('(stock_code)') },
      ]);
      const byId = Object.fromEntries(outcome.report.rejected.map((r) => [r.id, r]));
      expect(byId.t2).toMatchObject({ identity: 'gone-sku:en_US', line: 4, code: 'item_not_found' });
      // Malformed: its provider fields are not known, so only its line names it.
      expect(byId.t3).toMatchObject({ line: 5, code: 'invalid_target', origin: 'validation' });
      expect(byId.t3?.identity).toBeUndefined();
      expect(byId.t4).toMatchObject({ identity: items[20], line: 6, code: 'duplicate_target' });
      expect(outcome.listed.warnings).toEqual(outcome.report.warnings);
      expect(outcome.listed.rejected.map((r) => [r.id, r.identity, r.line])).toEqual([
        ['t2', 'gone-sku:en_US', 4],
        ['t3', undefined, 5],
        ['t4', items[20], 6],
      ]);
      expect(formatReport(outcome.report.workflowId, outcome.report, 'ui')).toContain(`t1 ${items[21]} (line 2)  `);
      expectAddsUp(outcome.report);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
