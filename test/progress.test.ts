/**
 * Progress you can watch, through the real server and the Octogen simulator with latency: a sync
 * fanned out to 4 slices shows counts that move while it sends (status, search attributes,
 * details), each slice answers its own `status`, and a pending provider call names its batch.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, getStatus, startSync } from '../client/index.ts';
import { SA_ACCEPTED, countsAddUp, statusQuery, type SyncReport } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'progress-test-key';
const TARGETS = 40_000;
const products = makeOctogenProducts('alpha', TARGETS);

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-progress-'));
  t = await connectTestEnv();
  // 400 ms a call and 250-target batches: each of the 4 slices sends for about 20 s.
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products, latencyMs: 400 });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface InHand {
  batch?: number;
  targets: number;
  slice?: number;
}

it('shows counts that move while a 40,000-target sync sends, per slice too', async () => {
  const file = path.join(dir, 'catalog.ndjson');
  writeFileSync(file, `${products.map((p) => JSON.stringify({ uuid: p.uuid })).join('\n')}\n`);
  const env = { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY };
  await withWorker(t, { env }, async (taskQueue) => {
    const submittedAt = Date.now();
    const { workflowId } = await startSync(
      t.client,
      {
        provider: 'octogen',
        targetsRef: { file },
        options: { sliceSize: 10_000, concurrency: 4, batchSize: 250, resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    const slices = [0, 1, 2, 3].map((i) => t.client.workflow.getHandle(`${workflowId}/slice-${i}`));

    // A pending provider call of a slice names the batch it holds (its heartbeat details).
    let inHand: InHand | undefined;
    while (inHand === undefined && Date.now() - submittedAt < 9_000) {
      for (const [i, slice] of slices.entries()) {
        const pending = await slice
          .describe()
          .then((d) => d.raw.pendingActivities ?? [])
          .catch(() => []);
        const payload = pending.find((a) => a.heartbeatDetails?.payloads?.length)?.heartbeatDetails?.payloads?.[0];
        const details = payload
          ? t.client.options.loadedDataConverter.payloadConverter.fromPayload<InHand>(payload)
          : undefined;
        // A lane's first heartbeat comes before it has read its first page: wait for one with a batch.
        if (details?.batch !== undefined) {
          inHand = details;
          expect(inHand.slice).toBe(i);
          break;
        }
      }
      await sleep(200);
    }
    expect(inHand).toMatchObject({ batch: expect.any(Number), targets: 250, cursor: { page: expect.any(Number) } });

    await sleep(Math.max(0, submittedAt + 10_000 - Date.now()));
    const first = await getStatus(t.client, workflowId);
    await sleep(5_000);
    const second = await getStatus(t.client, workflowId);
    for (const r of [first, second]) {
      expect(r.phase).toBe('sending');
      expect(countsAddUp(r.counts)).toBe(true);
    }
    expect(first.counts.submitted).toBe(TARGETS);
    expect(first.counts.accepted).toBeGreaterThan(0);
    expect(second.counts.accepted).toBeGreaterThan(first.counts.accepted);

    // The sync's details and search attributes follow the counts while it sends.
    const handle = t.client.workflow.getHandle(workflowId);
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/^sending: [\d,]+ of 40,000 targets settled \(accepted [\d,]+/);
    expect((await handle.describe()).typedSearchAttributes.get(SA_ACCEPTED)).toBeGreaterThan(0);

    // Each slice has its summary, details and its own `status`.
    const slice = slices[1]!;
    expect(await (await slice.describe()).staticSummary()).toBe(`slice 1 of ${workflowId}: 10,000 targets`);
    const own: SyncReport = await slice.query(statusQuery);
    expect(own.workflowId).toBe(`${workflowId}/slice-1`);
    expect(own.counts.submitted).toBe(10_000);
    expect(countsAddUp(own.counts)).toBe(true);
    const sliceMeta = await slice.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(sliceMeta.currentDetails).toMatch(/^slice 1: (sending|closed), [\d,]+ of 10,000 targets settled/);

    const { report } = await awaitReport(t.client, workflowId);
    expect(report.counts).toMatchObject({ submitted: TARGETS, accepted: TARGETS, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
  });
}, 90_000);

it('moves the details and search attributes of a sync that sends its one slice itself', async () => {
  const targets = products.slice(0, 8_000).map((p) => ({ uuid: p.uuid }));
  const file = path.join(dir, 'one-slice.ndjson');
  writeFileSync(file, `${targets.map((x) => JSON.stringify(x)).join('\n')}\n`);
  const env = { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY };
  await withWorker(t, { env }, async (taskQueue) => {
    // 80 batches of 100, 2 at a time at 400 ms a call: about 16 s of sending, in the sync itself.
    const { workflowId } = await startSync(
      t.client,
      {
        provider: 'octogen',
        targetsRef: { file },
        options: { concurrency: 2, batchSize: 100, resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    const handle = t.client.workflow.getHandle(workflowId);
    await sleep(7_000);
    const status = await getStatus(t.client, workflowId);
    expect(status.phase).toBe('sending');
    expect(status.counts.accepted).toBeGreaterThan(0);
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/^sending: [\d,]+ of 8,000 targets settled \(accepted [\d,]+/);
    const accepted = (await handle.describe()).typedSearchAttributes.get(SA_ACCEPTED) ?? 0;
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(8_000);
    await handle.terminate('seen enough');
  });
}, 60_000);
