/**
 * Fairness and priority through the real server (fairness on in the dev server): provider calls
 * carry the sync's priority key and a fairness key naming the sync, the CLI's --priority flag is
 * checked, and an urgent small sync is not queued behind a large sync's backlog on a throttled
 * provider queue.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { buildHttpFront } from '../http/http-front.ts';
import { awaitReport, checkSyncRequest, startSync } from '../client/index.ts';
import { PRIORITY_KEY_MESSAGE, fairnessKeyOf } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'fairness-key';
const large = makeOctogenProducts('alpha', 600);
const small = makeOctogenProducts('beta', 40);
const smallUuids = new Set(small.map((p) => p.uuid));

let t: TemporalTestEnv;
let sim: OctogenSimulator;
const workerEnv = (extra: Record<string, string> = {}) => ({
  OCTOGEN_BASE_URL: sim.url,
  OCTOGEN_PLATFORM_API_KEY: KEY,
  ...extra,
});

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha', 'beta'] }, products: [...large, ...small] });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});
beforeEach(() => sim.reset());

interface SeenPriority {
  priorityKey: number;
  fairnessKey: string;
}

const seen = (p: { priorityKey?: number | null; fairnessKey?: string | null } | null | undefined): SeenPriority => ({
  priorityKey: p?.priorityKey ?? 0,
  fairnessKey: p?.fairnessKey ?? '',
});

/** The priority of the workflow's start and of each sendBatch it scheduled, as the server recorded them. */
async function recordedPriorities(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const started = events.find(
    (e) => e.workflowExecutionStartedEventAttributes,
  )?.workflowExecutionStartedEventAttributes;
  const calls = events
    .map((e) => e.activityTaskScheduledEventAttributes)
    .filter((a) => a?.activityType?.name === 'sendBatch')
    .map((a) => seen(a?.priority));
  const children = events.flatMap(
    (e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId ?? [],
  );
  return { workflow: seen(started?.priority), calls, children };
}

const targetUuids = (body: unknown): string[] =>
  (body as { targets: { uuid?: string }[] }).targets.map((x) => x.uuid ?? '');

describe('priority and fairness keys', () => {
  it('an urgent sync calls the provider with priority 1 and its own fairness key; a default one with 3', async () => {
    const [urgent, plain] = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const started = await Promise.all(
        [1, undefined].map((priorityKey, i) =>
          startSync(
            t.client,
            {
              provider: 'octogen',
              key: uniqueKey('fair'),
              targets: small.slice(i * 20, i * 20 + 20).map((p) => ({ uuid: p.uuid })),
              // The urgent one fans out to two slice workflows: their calls carry the sync's keys too.
              options: { batchSize: 10, ...(priorityKey !== undefined ? { priorityKey, sliceSize: 10 } : {}) },
            },
            taskQueue,
          ),
        ),
      );
      for (const s of started) await awaitReport(t.client, s.workflowId);
      return started.map((s) => s.workflowId);
    });
    const a = await recordedPriorities(t.client, urgent!);
    expect(a.workflow).toEqual({ priorityKey: 1, fairnessKey: urgent });
    expect(a.children).toHaveLength(2);
    const slices = await Promise.all(a.children.map((id) => recordedPriorities(t.client, id)));
    const calls = [...a.calls, ...slices.flatMap((x) => x.calls)];
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(call).toEqual({ priorityKey: 1, fairnessKey: urgent });
    // The slices themselves run with the sync's priority key (inherited from the sync's start).
    for (const slice of slices) expect(slice.workflow.priorityKey).toBe(1);

    const b = await recordedPriorities(t.client, plain!);
    expect(b.workflow).toEqual({ priorityKey: 3, fairnessKey: plain });
    expect(b.calls).toHaveLength(2);
    for (const call of b.calls) expect(call).toEqual({ priorityKey: 3, fairnessKey: plain });
  });

  it('the library and the HTTP front check refuse a priority key outside 1-5 with one line naming the range', async () => {
    for (const priorityKey of [0, 6, 2.5]) {
      const request = { provider: 'octogen', targets: [{ uuid: small[0]!.uuid }], options: { priorityKey } };
      expect(() => checkSyncRequest(request)).toThrow(PRIORITY_KEY_MESSAGE);
      const key = uniqueKey('bad-priority');
      await expect(startSync(t.client, { ...request, key }, uniqueTaskQueue())).rejects.toThrow(PRIORITY_KEY_MESSAGE);
      await expect(t.client.workflow.getHandle(`catalog-sync-octogen-${key}`).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
  });

  it('the HTTP front takes options.priorityKey, and answers 400 naming the range for 7', async () => {
    const app = await buildHttpFront({
      client: t.client,
      taskQueue: uniqueTaskQueue('fairness-http'),
      tokens: ['tok'],
    });
    try {
      const post = (key: string, priorityKey: number) =>
        app.inject({
          method: 'POST',
          url: '/v1/syncs',
          headers: { authorization: 'Bearer tok' },
          payload: { provider: 'octogen', key, targets: [{ uuid: small[0]!.uuid }], options: { priorityKey } },
        });
      const good = uniqueKey('http-priority');
      const ok = await post(good, 2);
      expect(ok.statusCode).toBe(202);
      const workflowId = (ok.json() as { workflowId: string }).workflowId;
      try {
        expect((await recordedPriorities(t.client, workflowId)).workflow.priorityKey).toBe(2);
      } finally {
        await t.client.workflow.getHandle(workflowId).terminate('test done');
      }
      const bad = uniqueKey('http-bad-priority');
      const refused = await post(bad, 7);
      expect(refused.statusCode).toBe(400);
      expect(refused.body).toContain(PRIORITY_KEY_MESSAGE);
      await expect(t.client.workflow.getHandle(`catalog-sync-octogen-${bad}`).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    } finally {
      await app.close();
    }
  });

  it('submit --priority starts the sync with that priority; 0, 6 and "x" give one line and start nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-fairness-'));
    const targets = path.join(dir, 'targets.json');
    writeFileSync(targets, JSON.stringify([{ uuid: small[0]!.uuid }]));
    const env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: inject('temporalNamespace'),
      CATALOG_SYNC_TASK_QUEUE: uniqueTaskQueue('fairness-cli'), // no worker: started, never run
    };
    const submit = (key: string, priority: string) =>
      runCli(['submit', '--provider', 'octogen', '--targets', targets, '--key', key, '--priority', priority], env);
    const good = uniqueKey('cli-priority');
    const bad = ['0', '6', 'x'].map((p) => ({ p, key: uniqueKey('cli-bad-priority') }));
    const [ok, ...refused] = await Promise.all([submit(good, '1'), ...bad.map(({ p, key }) => submit(key, p))]);

    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const workflowId = `catalog-sync-octogen-${good}`;
    try {
      expect((await recordedPriorities(t.client, workflowId)).workflow).toEqual({
        priorityKey: 1,
        fairnessKey: fairnessKeyOf(workflowId), // over 64 bytes: a prefix and a digest
      });
    } finally {
      await t.client.workflow.getHandle(workflowId).terminate('test done');
    }

    refused.forEach((res, i) => {
      expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toContain(
        `--priority "${bad[i]!.p}" must be a whole number from 1 (most urgent) to 5 (least urgent)`,
      );
    });
    for (const { key } of bad) {
      await expect(t.client.workflow.getHandle(`catalog-sync-octogen-${key}`).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
  });
});

describe('fairness on a throttled provider queue', () => {
  it("a 10-target priority-1 sync gets its first call before a saturating sync's backlog drains", async () => {
    // 300 a minute: the provider queue dispatches 4.5 calls a second; the large sync keeps 64 queued.
    const env = workerEnv({ OCTOGEN_REQUESTS_PER_MINUTE: '300' });
    const { backlog, waited, smallReport } = await withWorker(t, { env }, async (taskQueue) => {
      const big = await startSync(
        t.client,
        {
          provider: 'octogen',
          key: uniqueKey('fair-large'),
          targets: large.map((p) => ({ uuid: p.uuid })),
          options: { batchSize: 5, concurrency: 64 },
        },
        taskQueue,
      );
      try {
        // Saturating: its calls have started, and its whole window of 64 calls is queued.
        await until(() => sim.requests.length >= 3);
        const before = sim.requests.length;
        const urgent = await startSync(
          t.client,
          {
            provider: 'octogen',
            key: uniqueKey('fair-small'),
            targets: small.slice(0, 10).map((p) => ({ uuid: p.uuid })),
            options: { priorityKey: 1 },
          },
          taskQueue,
        );
        const firstSmall = () => sim.requests.findIndex((r) => targetUuids(r.body).some((u) => smallUuids.has(u)));
        await until(() => firstSmall() >= 0);
        const report = await awaitReport(t.client, urgent.workflowId);
        return { backlog: 64 - before, waited: firstSmall() - before, smallReport: report.report };
      } finally {
        await t.client.workflow.getHandle(big.workflowId).terminate('test done');
      }
    });
    expect(smallReport.counts).toMatchObject({ submitted: 10, accepted: 10 });
    // First in, first out it waits for the whole backlog (63 calls when fairness is off in the
    // server); here only for the few calls already handed to the worker when it was submitted.
    expect(backlog).toBeGreaterThan(50);
    expect(waited).toBeLessThanOrEqual(8);
    expect(sim.rateLimited).toBe(0);
  });
});

/** Polls a condition of the simulator's record (no time bound of its own: the test's timeout is one). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 20));
}
