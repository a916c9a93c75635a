/**
 * A worker process killed (SIGKILL) in the middle of a sync: another worker finishes it, and every
 * target is accounted for exactly once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { countsAddUp, type LaneProgress } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv, workerProcessEnv } from './helpers/temporal.ts';
import { spawnWorker, waitFor } from './helpers/processes.ts';

const KEY = 'crash-test-key';
const products = makeOctogenProducts('alpha', 6_000);
let t: TemporalTestEnv;
let sim: OctogenSimulator;
let dir: string;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products, latencyMs: 250 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-crash-'));
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('finishes a sync whose worker was killed mid-way, with every target accounted for', async () => {
  const taskQueue = uniqueTaskQueue('crash');
  const env = {
    ...workerProcessEnv(taskQueue),
    OCTOGEN_BASE_URL: sim.url,
    OCTOGEN_PLATFORM_API_KEY: KEY,
  };
  const first = spawnWorker(env);
  const { workflowId } = await startSync(
    t.client,
    {
      provider: 'octogen',
      targets: products.slice(0, 600).map((p) => ({ uuid: p.uuid })),
      options: { batchSize: 50, concurrency: 2, callInitialInterval: '200ms' },
    },
    taskQueue,
  );
  await waitFor(() => sim.requests.length >= 3, 60_000, `the first calls (worker output: ${first.output()})`);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const callsBeforeKill = sim.requests.length;
  expect(callsBeforeKill).toBeLessThan(12);

  const second = spawnWorker(env);
  try {
    const { report } = await awaitReport(t.client, workflowId);
    expect(report.counts).toMatchObject({ submitted: 600, accepted: 600, rejected: 0, failed: 0, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
    // Every target reached the provider; at most the batches in flight at the kill went twice.
    const sent = sim.requests.flatMap((r) => (r.body as { targets: { uuid: string }[] }).targets.map((x) => x.uuid));
    expect(new Set(sent).size).toBe(600);
    expect(sent.length - 600).toBeLessThanOrEqual(2 * 50);
  } finally {
    second.child.kill('SIGKILL');
  }
});

it('resumes a lane killed mid-way from its last heartbeat: no batch whose answer was heartbeated goes twice', async () => {
  sim.reset();
  const file = path.join(dir, 'catalog.ndjson');
  writeFileSync(file, `${products.map((p) => JSON.stringify({ uuid: p.uuid })).join('\n')}\n`);
  const taskQueue = uniqueTaskQueue('lane-crash');
  const env = { ...workerProcessEnv(taskQueue), OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY };
  const first = spawnWorker(env);
  const { workflowId } = await startSync(
    t.client,
    {
      provider: 'octogen',
      targetsRef: { file },
      options: { batchSize: 50, concurrency: 2, resubmissionWindow: '0s' },
    },
    taskQueue,
  );
  await waitFor(() => sim.requests.length >= 16, 60_000, `the first calls (worker output: ${first.output()})`);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));

  // What the server holds of each lane now: what was heartbeated before the kill.
  const pending = (await t.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
  const converter = t.client.options.loadedDataConverter.payloadConverter;
  const lanes = pending.flatMap((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    return payload ? [converter.fromPayload<LaneProgress>(payload)] : [];
  });
  expect(lanes).toHaveLength(2);
  const heartbeated = new Set<number>();
  for (const lane of lanes) {
    for (let seq = lane.runFrom ?? 0; seq < (lane.pageFrom ?? 0); seq += 1) heartbeated.add(seq);
    for (const [from, to] of lane.cursor.done) for (let seq = from; seq < to; seq += 1) heartbeated.add(seq);
  }
  expect(heartbeated.size).toBeGreaterThanOrEqual(8 * 50);

  const second = spawnWorker(env);
  try {
    const { report } = await awaitReport(t.client, workflowId);
    expect(report.counts).toMatchObject({ submitted: 6_000, accepted: 6_000, rejected: 0, failed: 0, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
    const sent = sim.requests.flatMap((r) => (r.body as { targets: { uuid: string }[] }).targets.map((x) => x.uuid));
    expect(new Set(sent).size).toBe(6_000);
    const times = new Map<string, number>();
    for (const uuid of sent) times.set(uuid, (times.get(uuid) ?? 0) + 1);
    // Heartbeated answers are never sent again. What may go twice per lane: the batch in flight, and
    // on a loaded machine one answered batch whose heartbeat had not reached the server yet.
    const resent = [...heartbeated].filter((seq) => times.get(products[seq]!.uuid) !== 1);
    expect(resent).toEqual([]);
    expect(sent.length - 6_000).toBeLessThanOrEqual(2 * 2 * 50);
  } finally {
    second.child.kill('SIGKILL');
  }
}, 120_000);
