/**
 * Provider answers land in the target-state store, through the real server, real workers and the
 * Insider simulator, on SQLite and on PostgreSQL: inline syncs (sendBatch) and syncs by reference
 * (lanes) both record every answered item with its sync, its caller and the hash of what was
 * accepted; a store that cannot be reached fails the call in one line naming the store (never its
 * password), and nothing is recorded on a guess.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { openStateStore, contentHash } from '../activities/state/index.ts';
import { awaitReport, startSync } from '../client/index.ts';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { STORE_KINDS, freshStateUrl } from './helpers/state.ts';
import { connectTestEnv, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';
import { createSyncWorker } from '../worker/worker.ts';
import type { TargetStateStore } from '../contracts/target-state.ts';

const PARTNER = 'acme-partner';
const TOKEN = 'insider-state-token';
const items = makeInsiderItems(200);
const update = (key: string, extra: Record<string, unknown> = { in_stock: 1 }) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, ...extra };
};

let t: TemporalTestEnv;
let sim: InsiderSimulator;
const workerEnv = (stateUrl: string) => ({
  INSIDER_BASE_URL: sim.url,
  INSIDER_PARTNER_NAME: PARTNER,
  INSIDER_REQUEST_TOKEN: TOKEN,
  INSIDER_REQUESTS_PER_MINUTE: '6000',
  CATALOG_SYNC_STATE_URL: stateUrl,
});
const fast = { callInitialInterval: '100ms', callMaximumInterval: '500ms', resubmissionWindow: '0s' } as const;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startInsiderSimulator({ partnerName: PARTNER, token: TOKEN, items, requestsPerMinute: Infinity });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});
beforeEach(() => sim.reset());

describe.each(STORE_KINDS)('target state recorded on %s', (kind) => {
  it('records each answered item of an inline sync with its sync, caller and accepted hash', async () => {
    const stateUrl = await freshStateUrl(kind, 'inline');
    const good = update(items[0]!, { in_stock: 1, price: { USD: 9.5 } });
    const targets = [good, update('no-such-sku:en_US'), update(items[1]!)];
    const { workflowId, report } = await withWorker(t, { env: workerEnv(stateUrl) }, async (taskQueue) => {
      const started = await startSync(t.client, { provider: 'insider', targets, options: fast }, taskQueue, {
        memo: { caller: 'alpha' },
      });
      return { workflowId: started.workflowId, report: (await awaitReport(t.client, started.workflowId)).report };
    });
    expect(report.counts).toMatchObject({ submitted: 3, accepted: 2, rejected: 1 });
    const store = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
    try {
      const [accepted] = await store.find('insider', items[0]!);
      expect(accepted).toMatchObject({
        state: 'accepted',
        syncId: workflowId,
        caller: 'alpha',
        acceptedHash: contentHash(good),
        writes: 1,
      });
      const [rejected] = await store.find('insider', 'no-such-sku:en_US');
      expect(rejected).toMatchObject({
        state: 'rejected',
        code: expect.any(String),
        syncId: workflowId,
        caller: 'alpha',
      });
      expect(rejected?.acceptedHash).toBeUndefined();
      const page = await store.list({ provider: 'insider', limit: 10 });
      expect(page.items).toHaveLength(3);
    } finally {
      await store.close();
    }
  });

  it('records the answers of a sync by reference (lanes), one row per item', async () => {
    const stateUrl = await freshStateUrl(kind, 'byref');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-state-ref-'));
    const file = path.join(dir, 'items.ndjson');
    const lines = items.slice(10, 60).map((k) => update(k));
    await writeFile(file, `${[...lines, update('gone-sku:en_US')].map((x) => JSON.stringify(x)).join('\n')}\n`);
    const { workflowId, report, history } = await withWorker(t, { env: workerEnv(stateUrl) }, async (taskQueue) => {
      const started = await startSync(
        t.client,
        { provider: 'insider', targetsRef: { file }, options: { ...fast, batchSize: 10 } },
        taskQueue,
      );
      const done = await awaitReport(t.client, started.workflowId);
      return {
        workflowId: started.workflowId,
        report: done.report,
        history: await t.client.workflow.getHandle(started.workflowId).fetchHistory(),
      };
    });
    expect(report.counts).toMatchObject({ submitted: 51, accepted: 50, rejected: 1 });
    const activityTypes = new Set(
      (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean),
    );
    expect(activityTypes).toContain('sendLane');
    expect(countsAddUp(report.counts)).toBe(true);
    const store = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
    try {
      const all = await store.list({ provider: 'insider', limit: 1000 });
      expect(all.items).toHaveLength(51);
      expect(all.items.every((r) => r.syncId === workflowId && r.writes === 1)).toBe(true);
      const rejected = await store.list({ provider: 'insider', state: 'rejected', limit: 10 });
      expect(rejected.items.map((r) => r.identity)).toEqual(['gone-sku:en_US']);
    } finally {
      await store.close();
    }
  });
});

describe.each(STORE_KINDS)('an answer the store could not take, on %s', (kind) => {
  it('fails the attempt; the retry sends the batch again and records it once, nothing lost or counted twice', async () => {
    const stateUrl = await freshStateUrl(kind, 'flaky');
    const real = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
    let refusals = 2;
    // The store goes away right after the provider answered (as a worker killed before the write would).
    const flaky: TargetStateStore = {
      ...real,
      where: real.where,
      record: async (records) => {
        if (refusals > 0) {
          refusals -= 1;
          throw new Error('connection lost');
        }
        return real.record(records);
      },
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-state-flaky-'));
    const file = path.join(dir, 'items.ndjson');
    await writeFile(
      file,
      `${items
        .slice(100, 130)
        .map((k) => JSON.stringify(update(k)))
        .join('\n')}\n`,
    );
    const inline = items.slice(140, 150).map((k) => update(k));
    const taskQueue = uniqueTaskQueue('flaky');
    const worker = await createSyncWorker({
      connection: t.nativeConnection,
      namespace: t.namespace,
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      activityDeps: { env: workerEnv(stateUrl), stateStore: flaky },
    });
    try {
      const reports = await worker.runUntil(
        (async () => {
          const out: SyncReport[] = [];
          for (const request of [
            { provider: 'insider', targetsRef: { file }, options: { ...fast, batchSize: 10 } },
            { provider: 'insider', targets: inline, options: fast },
          ]) {
            refusals = 2;
            const started = await startSync(t.client, request, taskQueue);
            out.push((await awaitReport(t.client, started.workflowId)).report);
          }
          return out;
        })(),
      );
      expect(reports.map((r) => r.counts)).toMatchObject([
        { submitted: 30, accepted: 30, failed: 0 },
        { submitted: 10, accepted: 10, failed: 0 },
      ]);
      // The answers the store refused were not lost: their batches went again.
      const sent = sim.requests.flatMap((r) => r.body as { item_id: string }[]).length;
      expect(sent).toBeGreaterThan(40);
      const rows = (await real.list({ provider: 'insider', limit: 1000 })).items;
      expect(rows).toHaveLength(40);
      expect(rows.every((r) => r.state === 'accepted' && r.writes === 1)).toBe(true);
    } finally {
      await real.close();
    }
  });
});

describe('a store that cannot be reached', () => {
  it('fails the call in one line naming the store, never its password, and records no guess', async () => {
    const url = new URL(await freshStateUrl('postgres', 'down'));
    url.port = '1'; // nothing listens there
    const { report, history } = await withWorker(t, { env: workerEnv(url.toString()) }, async (taskQueue) => {
      const started = await startSync(
        t.client,
        { provider: 'insider', targets: [update(items[2]!)], options: { ...fast, callAttempts: 2 } },
        taskQueue,
      );
      const done = await awaitReport(t.client, started.workflowId);
      return { report: done.report, history: await t.client.workflow.getHandle(started.workflowId).fetchHistory() };
    });
    // The answer could not be recorded: the item is failed (after the call's attempts), not accepted.
    expect(report.counts).toMatchObject({ submitted: 1, failed: 1, accepted: 0 });
    const failures = (history.events ?? [])
      .map((e) => e.activityTaskFailedEventAttributes?.failure)
      .filter((f) => f !== undefined && f !== null);
    expect(failures.length).toBeGreaterThan(0);
    const message = failures[0]?.message ?? '';
    expect(message).toMatch(/^the target-state store \(postgres 127\.0\.0\.1:1\/down_[a-z0-9_]+\) cannot record/);
    expect(failures[0]?.applicationFailureInfo?.type).toBe('StateStoreUnavailable');
    expect(JSON.stringify(history)).not.toContain(url.password);
  });
});
