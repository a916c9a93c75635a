/**
 * Provider credentials live only in the worker's environment: after syncs with known tokens
 * (including a refused one), no workflow history, log line, error message, metric or report
 * holds any of them.
 */
import proto from '@temporalio/proto';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { freePort, spawnWorker, waitFor } from './helpers/processes.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv, workerProcessEnv } from './helpers/temporal.ts';

const OCTOGEN_KEY = 'octogen-secret-3b9f2c71';
const INSIDER_TOKEN = 'insider-secret-8d41e0aa';
const WRONG_TOKEN = 'insider-wrong-secret-77c2';
const SECRETS = [OCTOGEN_KEY, INSIDER_TOKEN, WRONG_TOKEN];
const products = makeOctogenProducts('alpha', 3);
const items = makeInsiderItems(3);

let t: TemporalTestEnv;
let octogen: OctogenSimulator;
let insider: InsiderSimulator;

beforeAll(async () => {
  t = await connectTestEnv();
  octogen = await startOctogenSimulator({ keys: { [OCTOGEN_KEY]: ['alpha'] }, products });
  insider = await startInsiderSimulator({
    partnerName: 'acme',
    token: INSIDER_TOKEN,
    items,
    requestsPerMinute: Infinity,
  });
});
afterAll(async () => {
  await octogen?.close();
  await insider?.close();
  await t?.close();
});

it('keeps every credential out of histories, logs, errors, metrics and reports', async () => {
  const seen: string[] = [];
  const runWith = async (token: string, fn: (taskQueue: string) => Promise<void>) => {
    const taskQueue = uniqueTaskQueue('secrets');
    const port = await freePort();
    const worker = spawnWorker({
      ...workerProcessEnv(taskQueue),
      CATALOG_SYNC_METRICS_PORT: String(port),
      CATALOG_SYNC_LOG_LEVEL: 'debug',
      OCTOGEN_BASE_URL: octogen.url,
      OCTOGEN_PLATFORM_API_KEY: OCTOGEN_KEY,
      INSIDER_BASE_URL: insider.url,
      INSIDER_PARTNER_NAME: 'acme',
      INSIDER_REQUEST_TOKEN: token,
    });
    try {
      await waitFor(() => worker.output().includes('catalog-sync worker started'), 30_000, 'the worker');
      await fn(taskQueue);
      const metrics = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
      seen.push(metrics);
      for await (const w of t.client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
        const history = await t.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        // Payloads are JSON bytes inside the encoding: a secret in any of them shows as text here.
        seen.push(Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()).toString('utf8'));
      }
    } finally {
      worker.child.kill('SIGTERM');
      await new Promise((r) => worker.child.once('exit', r));
      seen.push(worker.output());
    }
  };

  await runWith(INSIDER_TOKEN, async (taskQueue) => {
    const a = await startSync(
      t.client,
      {
        provider: 'octogen',
        targets: [{ uuid: products[0]!.uuid }, { url: 'https://alpha.com/x' }],
        options: { resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    const b = await startSync(
      t.client,
      { provider: 'insider', targets: [{ item_id: 'sku-00001', locale: 'en_US', in_stock: 1 }] },
      taskQueue,
    );
    for (const id of [a.workflowId, b.workflowId]) seen.push(JSON.stringify(await awaitReport(t.client, id)));
  });
  await runWith(WRONG_TOKEN, async (taskQueue) => {
    const c = await startSync(
      t.client,
      { provider: 'insider', targets: [{ item_id: 'sku-00002', locale: 'en_US', in_stock: 1 }] },
      taskQueue,
    );
    const outcome = await awaitReport(t.client, c.workflowId);
    expect(outcome.abortReason).toMatch(/INSIDER_REQUEST_TOKEN/);
    seen.push(JSON.stringify(outcome));
  });

  const everything = seen.join('\n');
  expect(everything.length).toBeGreaterThan(10_000);
  expect(everything).toContain('Partner token authentication failed');
  for (const secret of SECRETS) expect(everything.includes(secret), `found ${secret}`).toBe(false);
});
