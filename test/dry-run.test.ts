/**
 * Dry runs through every path a user takes (library, CLI, HTTP front): zero provider calls (the
 * simulator's record proves it), and the plan equals the calls a real run then makes.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitFirstPass, dryRunSync, startSync, type DryRunPlan } from '../client/index.ts';
import { startHttpFront, type RunningHttpFront } from '../http/http-front.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, makeWorker, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';
import type { SyncWorker } from '../worker/worker.ts';

const KEY = 'dry-run-key';
const TOKEN = 'dry-run-token';
const products = makeOctogenProducts('alpha', 8_000);
const dir = path.join(os.tmpdir(), `dry-run-${randomUUID()}`);
let t: TemporalTestEnv;
let sim: OctogenSimulator;
let worker: SyncWorker;
let running: Promise<void>;
let taskQueue: string;
let front: RunningHttpFront;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  taskQueue = uniqueTaskQueue('dry-run');
  worker = await makeWorker(t, {
    taskQueue,
    env: {
      OCTOGEN_BASE_URL: sim.url,
      OCTOGEN_PLATFORM_API_KEY: KEY,
      CATALOG_SYNC_STATE_URL: `sqlite:${path.join(dir, 'state.sqlite')}`,
    },
  });
  running = worker.run();
  front = await startHttpFront({ client: t.client, taskQueue, tokens: [TOKEN], logger: false, port: 0 });
});
afterAll(async () => {
  await front?.close();
  worker?.shutdown();
  await running;
  await sim?.close();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** 1,234 targets, three of them malformed. */
function catalog(n = 1_234): unknown[] {
  const targets: unknown[] = products.slice(0, n).map((p) => ({ url: p.url }));
  targets[10] = { url: 'not a url' };
  targets[600] = { uuid: 'nope' };
  targets[1_100] = { url: products[0]?.url, extra: 1 };
  return targets;
}

const callSizes = (from: number) =>
  sim.requests.slice(from).map((r) => (r.body as { targets: unknown[] }).targets.length);

it('the library plans 1,234 targets as the real run then sends them, with zero provider calls', async () => {
  const before = sim.requests.length;
  const plan = await dryRunSync({ provider: 'octogen', targets: catalog() });
  expect(sim.requests.length).toBe(before);
  expect(plan).toMatchObject({ dryRun: true, providerCalls: 0, targets: 1_234, rejected: 3, wouldSend: 1_231 });
  expect(plan.rejections.map((r) => [r.id, r.code])).toEqual([
    ['t10', 'invalid_target'],
    ['t600', 'invalid_target'],
    ['t1100', 'invalid_target'],
  ]);
  expect(plan.calls).toBe(3); // 500 + 498 on the first page, 233 on the second
  expect(plan.cutBy).toEqual({ targets: 1, bytes: 0, pageOrGroupEnd: 2 });

  const { workflowId } = await startSync(
    t.client,
    { provider: 'octogen', key: uniqueKey('dry'), targets: catalog() },
    taskQueue,
  );
  const report = (await awaitFirstPass(t.client, workflowId)).report;
  expect(report.counts.accepted).toBe(plan.wouldSend);
  expect(callSizes(before).sort((a, b) => b - a)).toEqual([500, 498, 233]);
});

it('submit --dry-run by reference prints the plan and calls nothing; the real submit makes exactly those calls', async () => {
  const file = path.join(dir, 'catalog.ndjson');
  // 8,000 lines (over the CLI's inline limit: sent by reference), one of them not JSON, one a duplicate.
  const lines = products.map((p, i) =>
    i === 7 ? '{not json' : JSON.stringify({ url: (i === 1_500 ? products[1_400] : p)?.url }),
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
  const env = {
    TEMPORAL_ADDRESS: t.address,
    TEMPORAL_NAMESPACE: t.namespace,
    CATALOG_SYNC_TASK_QUEUE: taskQueue,
  };
  const before = sim.requests.length;
  const dry = await runCli(['submit', '--provider', 'octogen', '--targets', file, '--dry-run', '--json'], env);
  expect(dry.code, dry.stderr).toBe(0);
  const plan = JSON.parse(dry.stdout) as DryRunPlan;
  expect(sim.requests.length).toBe(before);
  expect(plan).toMatchObject({ targets: 8_000, wouldSend: 7_998, rejected: 2, calls: 16, providerCalls: 0 });
  expect(plan.rejections[0]).toMatchObject({ id: 't7', line: 8, code: 'invalid_json' });
  expect(plan.rejections[1]).toMatchObject({ id: 't1500', line: 1_501, code: 'duplicate_target' });
  const text = await runCli(['submit', '--provider', 'octogen', '--targets', file, '--dry-run'], env);
  expect(text.stdout).toContain('nothing was started and no provider was called');
  expect(text.stdout).toContain('16 provider calls');

  const real = await runCli(
    [
      'submit',
      '--provider',
      'octogen',
      '--targets',
      file,
      '--allow-invalid',
      '--wait',
      '--json',
      '--key',
      uniqueKey('cli'),
    ],
    env,
    120_000,
  );
  expect(real.code, real.stderr).toBe(0);
  expect(sim.requests.length - before).toBe(plan.calls);
});

it('POST /v1/dry-runs answers the plan, refuses a file, and starts nothing', async () => {
  const before = sim.requests.length;
  const post = (body: unknown) =>
    request(`${front.url}/v1/dry-runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(body),
    });
  const ok = await post({ provider: 'octogen', targets: catalog(), options: { batchSize: 100 } });
  expect(ok.statusCode).toBe(200);
  const plan = (await ok.body.json()) as DryRunPlan;
  expect(plan).toMatchObject({ wouldSend: 1_231, calls: 13, providerCalls: 0, limits: { batchSize: 100 } });
  const file = await post({ provider: 'octogen', targetsRef: { file: '/etc/passwd' } });
  expect(file.statusCode).toBe(400);
  expect(((await file.body.json()) as { error: { message: string } }).error.message).toContain('targetsRef.file');
  expect(sim.requests.length).toBe(before);
});
