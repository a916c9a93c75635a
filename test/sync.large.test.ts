/**
 * Large syncs through the real server: targets by reference, fan-out to slice workflows,
 * continue-as-new, and a provider budget shared by every sync at once.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  awaitFirstPass,
  awaitReport,
  getStatus,
  listRejected,
  resubmit,
  resubmitBySignal,
  startSync,
} from '../client/index.ts';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { startNdjsonHost, type NdjsonHost } from '../simulators/ndjson-host.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'large-test-key';
const products = makeOctogenProducts('alpha', 20_000);
const shared = [
  { uuid: '77777777-7777-4777-8777-777777777777', url: 'https://shared.example/big/1', catalog: 'alpha' },
  { uuid: '88888888-8888-4888-8888-888888888888', url: 'https://shared.example/big/1', catalog: 'beta' },
  // A second URL in both catalogs: a sync names each product once, so two ambiguous targets need two.
  { uuid: '99999999-9999-4999-8999-999999999999', url: 'https://shared.example/big/2', catalog: 'alpha' },
  { uuid: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', url: 'https://shared.example/big/2', catalog: 'beta' },
];

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let host: NdjsonHost;
let dir: string;
// The NDJSON host listens on loopback: the worker's allowlist names it (CATALOG_SYNC_SOURCE_URLS).
const workerEnv = () => ({
  OCTOGEN_BASE_URL: sim.url,
  OCTOGEN_PLATFORM_API_KEY: KEY,
  CATALOG_SYNC_SOURCE_URLS: `${host.url}/`,
});

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-large-'));
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha', 'beta'] }, products: [...products, ...shared] });
  host = await startNdjsonHost();
});
afterAll(async () => {
  await host?.close();
  await sim?.close();
  await t?.close();
});
beforeEach(() => sim.reset());

const sentUuids = () =>
  sim.requests.flatMap((r) => (r.body as { targets: { uuid?: string }[] }).targets.map((x) => x.uuid));
const expectAddsUp = (report: SyncReport) => {
  expect(countsAddUp(report.counts)).toBe(true);
  expect(report.counts.pending).toBe(0);
};
/** The report's substance, without per-run details (workflow IDs, provider request IDs). */
const essence = (r: SyncReport) => ({
  counts: r.counts,
  rejected: r.rejected.map(({ id, code, line }) => ({ id, code, line })),
  closedReason: r.closedReason,
});

describe('syncs by reference', () => {
  it('reports malformed lines of a 20k-line file by line number and sends every other target once', async () => {
    const lines = products.map((p) => JSON.stringify({ uuid: p.uuid }));
    lines[99] = '{"uuid": "not json'; // line 100
    lines[4999] = JSON.stringify({ uuid: products[4999]!.uuid, url: products[4999]!.url }); // line 5000: both
    lines[15_000] = 'null'; // line 15001
    const file = path.join(dir, 'catalog.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const { report } = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targetsRef: { file }, options: { resubmissionWindow: '0s' } },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(report.counts).toMatchObject({ submitted: 20_000, accepted: 19_997, rejected: 3 });
    expect(report.rejected.map(({ id, line, code }) => ({ id, line, code }))).toEqual([
      { id: 't99', line: 100, code: 'invalid_json' },
      { id: 't4999', line: 5000, code: 'invalid_target' },
      { id: 't15000', line: 15001, code: 'invalid_target' },
    ]);
    expect(report.rejected[0]?.message).toMatch(/line 100 is not JSON/);
    const sent = sentUuids();
    expect(sent).toHaveLength(19_997);
    expect(new Set(sent).size).toBe(19_997);
    expectAddsUp(report);
  });

  it('gives the same report for the same targets inline, in a file and at a URL', async () => {
    const targets: unknown[] = products.slice(0, 12_000).map((p) => ({ uuid: p.uuid }));
    targets[10] = { uuid: 'nope' };
    targets[7000] = { url: 'https://alpha.com/products/gone' }; // product_not_found
    const file = path.join(dir, 'same.ndjson');
    writeFileSync(file, `${targets.map((x) => JSON.stringify(x)).join('\n')}\n`);
    const url = host.putFile('same.ndjson', file);
    const run = (request: Parameters<typeof startSync>[1]) =>
      withWorker(t, { env: workerEnv() }, async (taskQueue) => {
        const { workflowId } = await startSync(t.client, request, taskQueue);
        return (await awaitReport(t.client, workflowId)).report;
      });
    const options = { resubmissionWindow: '0s' };
    const inline = await run({ provider: 'octogen', targets, options });
    const byFile = await run({ provider: 'octogen', targetsRef: { file }, options });
    const byUrl = await run({ provider: 'octogen', targetsRef: { url }, options });
    expect(essence(inline)).toEqual(essence(byFile));
    expect(essence(byUrl)).toEqual(essence(byFile));
    expect(byFile.counts).toMatchObject({ submitted: 12_000, accepted: 11_998, rejected: 2 });
    expect(host.requests.some((r) => r.range !== undefined)).toBe(true);
    expect(sim.requests.length).toBe(3 * 24);
  });
});

describe('a rejected list too long for the report', () => {
  it('keeps it complete: the rest stays listed in slice workflows and listRejected pages it in', async () => {
    const targets = Array.from({ length: 2600 }, (_, i) => ({ url: `https://alpha.com/products/missing-${i}` }));
    const { report, all } = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { sliceSize: 500, resubmissionWindow: '0s' } },
        taskQueue,
      );
      const outcome = await awaitReport(t.client, workflowId);
      return { report: outcome.report, all: await listRejected(t.client, workflowId) };
    });
    expect(report.counts).toMatchObject({ submitted: 2600, rejected: 2600 });
    expect(report.rejected.length).toBeLessThan(2600);
    expect(report.rejectedElsewhere?.length).toBeGreaterThan(0);
    expect(report.rejected.length + (report.rejectedElsewhere ?? []).reduce((n, x) => n + x.count, 0)).toBe(2600);
    expect(all.rejected.map((r) => r.id)).toEqual(targets.map((_, i) => `t${i}`));
    expect(all.rejected.every((r) => r.code === 'product_not_found')).toBe(true);
    expectAddsUp(report);
  });
});

describe('fan-out and continue-as-new', () => {
  it('keeps status, re-submission by signal and update, and the report exact across runs and slices', async () => {
    // 300 targets, 50 a slice, 2 slices a run: 6 slice workflows over 3 runs.
    const targets: unknown[] = products.slice(0, 300).map((p) => ({ uuid: p.uuid }));
    targets[20] = { url: shared[0]!.url }; // ambiguous
    targets[260] = { url: shared[2]!.url }; // ambiguous
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        {
          provider: 'octogen',
          targets,
          options: { sliceSize: 50, slicesPerRun: 2, batchSize: 25, concurrency: 2 },
        },
        taskQueue,
      );
      // While the first pass runs on: fix t20 by update as soon as it is reported.
      let status = await getStatus(t.client, workflowId);
      while (!status.rejected.some((r) => r.id === 't20')) {
        await new Promise((r) => setTimeout(r, 50));
        status = await getStatus(t.client, workflowId);
      }
      const answer = await resubmit(t.client, workflowId, [
        { fixes: 't20', target: { catalog: 'alpha', url: shared[0]!.url } },
        { fixes: 't21', target: { uuid: 'bad' } },
      ]);
      expect(answer.taken).toEqual([{ index: 0, id: 't300', supersedes: 't20' }]);
      expect(answer.refused.map((r) => r.code)).toEqual(['invalid_target']);
      const settled = await awaitFirstPass(t.client, workflowId);
      expect(settled.report.counts).toMatchObject({ submitted: 301, rejected: 1, superseded: 1 });
      await resubmitBySignal(t.client, workflowId, [{ target: { catalog: 'beta', url: shared[2]!.url } }]);
      const final = await awaitReport(t.client, workflowId);
      const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
      return { final, history };
    });
    const { report } = outcome.final;
    expect(report.counts).toMatchObject({ submitted: 302, accepted: 300, superseded: 2, rejected: 0, failed: 0 });
    expect(report.superseded).toEqual([
      { id: 't20', by: 't300' },
      { id: 't260', by: 't301' },
    ]);
    expect(report.closedReason).toBe('nothing-to-fix');
    expectAddsUp(report);
    // The last run started from a continue-as-new, and no run grew with the targets.
    const started = outcome.history.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(started?.continuedExecutionRunId).toBeTruthy();
    expect(outcome.history.events?.length ?? 0).toBeLessThan(200);
    const sent = sentUuids().filter(Boolean);
    expect(new Set(sent).size).toBe(sent.length);
  });
});

describe('provider budget', () => {
  it('shares one account budget between two syncs at once: no 429s', async () => {
    const budgeted = await startOctogenSimulator({
      keys: { [KEY]: ['alpha'] },
      products: products.slice(0, 100),
      requestsPerMinute: 20,
    });
    try {
      const env = { OCTOGEN_BASE_URL: budgeted.url, OCTOGEN_PLATFORM_API_KEY: KEY, OCTOGEN_REQUESTS_PER_MINUTE: '20' };
      const reports = await withWorker(t, { env, taskQueue: uniqueTaskQueue('octogen-budget') }, async (taskQueue) => {
        const ids = await Promise.all(
          [0, 1].map((s) =>
            startSync(
              t.client,
              {
                provider: 'octogen',
                targets: products.slice(s * 12, s * 12 + 12).map((p) => ({ uuid: p.uuid })),
                options: { batchSize: 1, concurrency: 8 },
              },
              taskQueue,
            ),
          ),
        );
        return Promise.all(ids.map((s) => awaitReport(t.client, s.workflowId)));
      });
      expect(budgeted.rateLimited).toBe(0);
      expect(budgeted.requests).toHaveLength(24);
      for (const { report } of reports) expect(report.counts).toMatchObject({ submitted: 12, accepted: 12 });
    } finally {
      await budgeted.close();
    }
  }, 180_000);
});
