/**
 * Alerts through the real server (docs/alerts.md): a real HTTP receiver on 127.0.0.1 takes the
 * webhook's posts while the Octogen simulator rejects targets, refuses a wrong key, and a schedule
 * fails run after run. The webhook URL (a secret) must appear in no workflow history.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import {
  createSyncSchedule,
  deleteSyncSchedule,
  describeSyncSchedule,
  triggerSyncSchedule,
  validateSyncScheduleRequest,
} from '../client/schedules.ts';
import { SyncOptionsSchema, type AlertBody } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker } from '../worker/worker.ts';
import { connectTestEnv, uniqueKey, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'alerts-test-key';
const products = makeOctogenProducts('alpha', 20);
const valid = (i: number) => ({ uuid: products[i]!.uuid });
const missing = (i: number) => ({ url: `https://alpha.com/products/missing-${i}` });
const fast = { callInitialInterval: '100ms', callMaximumInterval: '1s', resubmissionWindow: '0s' } as const;

/** A Slack-style receiver: the path is the secret, as in a real incoming-webhook URL. */
interface Receiver {
  url: string;
  secret: string;
  posts: AlertBody[];
  /** What it answers; 200 unless a test says otherwise. */
  status: number;
  attempts: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const secret = `T0ALERTS/B0TEST/${uniqueKey('secret')}`;
  const r: Receiver = { url: '', secret, posts: [], status: 200, attempts: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.attempts += 1;
      if (req.method === 'POST' && req.url === `/services/${secret}` && r.status === 200) {
        r.posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertBody);
      }
      res.writeHead(req.url === `/services/${secret}` ? r.status : 404, { 'content-type': 'text/plain' });
      res.end(r.status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/${secret}`;
  r.close = () => new Promise((resolve) => server.close(() => resolve()));
  return r;
}

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let receiver: Receiver;
let spool: string;
const created: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  receiver = await startReceiver();
  spool = mkdtempSync(path.join(tmpdir(), 'catalog-sync-alerts-'));
});
afterAll(async () => {
  for (const id of created) await deleteSyncSchedule(t.client, id).catch(() => undefined);
  await receiver?.close();
  await sim?.close();
  await t?.close();
  if (spool) rmSync(spool, { recursive: true, force: true });
});
beforeEach(() => {
  sim.reset();
  receiver.posts.length = 0;
  receiver.attempts = 0;
  receiver.status = 200;
});

const workerEnv = (key = KEY) => ({
  OCTOGEN_BASE_URL: sim.url,
  OCTOGEN_PLATFORM_API_KEY: key,
  CATALOG_SYNC_SPOOL_DIR: spool,
  CATALOG_SYNC_ALERT_WEBHOOK_URL: receiver.url,
  CATALOG_SYNC_UI_URL: 'http://localhost:8233',
});

/** The alerts received, once `n` of them have arrived (the last activity may still be posting). */
async function received(n: number, timeoutMs = 15_000): Promise<AlertBody[]> {
  const until = Date.now() + timeoutMs;
  while (receiver.posts.length < n && Date.now() < until) await sleep(50);
  return [...receiver.posts];
}

/** Every run of the workflow (and `/sync` children), encoded: the webhook's secret is in none. */
async function expectNoSecretIn(workflowIds: string[]) {
  for (const id of workflowIds) {
    const history = await t.client.workflow.getHandle(id).fetchHistory();
    const bytes = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish());
    // A control: the history's own text is readable in these bytes (payloads are plain JSON here).
    expect(bytes.includes('octogen'), `readable history of ${id}`).toBe(true);
    expect(bytes.includes(receiver.secret), `webhook secret in the history of ${id}`).toBe(false);
    expect(bytes.includes('services/T0ALERTS'), `webhook path in the history of ${id}`).toBe(false);
    expect(JSON.stringify(history)).not.toContain(receiver.secret);
  }
}

const failureOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('alerts through the real server and a real webhook receiver', () => {
  it('refuses a malformed alertThreshold or alertAfterFailedRuns with a message naming the field and the fix', async () => {
    const bad = SyncOptionsSchema.safeParse({ alertThreshold: { percent: 150 } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/^alertThreshold\.percent must be .* from 0 to 100/);
    const empty = SyncOptionsSchema.safeParse({ alertThreshold: {} });
    expect(empty.error?.issues[0]?.message).toMatch(/alertThreshold needs count \(targets\) or percent/);
    expect(SyncOptionsSchema.safeParse({ alertThreshold: { count: 0 } }).success).toBe(true);
    // A malformed webhook URL stops the worker at start, naming the variable and not the value.
    const started = createSyncWorker({
      connection: t.nativeConnection,
      namespace: t.namespace,
      taskQueue: uniqueKey('never-polled'),
      activityDeps: { env: { CATALOG_SYNC_ALERT_WEBHOOK_URL: 'hooks.example/secret-path' } },
    });
    const refused = (await failureOf(started)) as Error;
    expect(refused.message).toMatch(/^CATALOG_SYNC_ALERT_WEBHOOK_URL is not an http\(s\) URL/);
    expect(refused.message).not.toContain('secret-path');
    // The library refuses it before anything starts.
    await expect(
      startSync(
        t.client,
        { provider: 'octogen', targets: [valid(0)], options: { alertThreshold: { percent: 150 } } },
        'no-worker-needed',
      ),
    ).rejects.toThrow(/alertThreshold\.percent must be a share of the submitted targets from 0 to 100/);
    const schedule = { id: 's', provider: 'octogen', every: '1h', source: { file: 'x.ndjson' }, taskQueue: 'q' };
    expect(() => validateSyncScheduleRequest({ ...schedule, alertAfterFailedRuns: 11 })).toThrow(
      'invalid schedule: alertAfterFailedRuns: alertAfterFailedRuns must be a whole number of runs from 1 to 10 (default 3), or 0 never to pause the schedule',
    );
    expect(validateSyncScheduleRequest({ ...schedule, options: { alertThreshold: { percent: 5 } } }).options).toEqual({
      alertThreshold: { percent: 5 },
    });
  });

  it('posts a sync_rejections alert for a sync above its threshold, and none for one under it', async () => {
    const targets = [valid(0), valid(1), missing(1), missing(2)];
    const { over, under } = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const a = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { ...fast, alertThreshold: { percent: 25 } } },
        taskQueue,
      );
      const b = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { ...fast, alertThreshold: { count: 2 } } },
        taskQueue,
      );
      return {
        over: { id: a.workflowId, outcome: await awaitReport(t.client, a.workflowId) },
        under: { id: b.workflowId, outcome: await awaitReport(t.client, b.workflowId) },
      };
    });
    expect(over.outcome.report.counts).toMatchObject({ submitted: 4, accepted: 2, rejected: 2 });
    expect(under.outcome.report.counts).toMatchObject({ submitted: 4, accepted: 2, rejected: 2 });
    const alerts = await received(1);
    await sleep(500); // and no second one
    expect(receiver.posts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      kind: 'sync_rejections',
      workflowId: over.id,
      provider: 'octogen',
      counts: { submitted: 4, accepted: 2, rejected: 2, failed: 0 },
      threshold: { percent: 25 },
      uiUrl: `http://localhost:8233/namespaces/${t.namespace}/workflows/${encodeURIComponent(over.id)}`,
    });
    expect(alerts[0]?.text).toBe(
      `catalog-sync: octogen sync ${over.id} closed with 2 rejected and 0 failed of 4, above its alert threshold (25%)`,
    );
    await expectNoSecretIn([over.id, under.id]);
  });

  it('posts a sync_aborted alert for a sync aborted by a wrong API key (401)', async () => {
    const { id, failure } = await withWorker(t, { env: workerEnv('not-a-key') }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets: [valid(2), valid(3)], options: fast },
        taskQueue,
      );
      return { id: workflowId, failure: await failureOf(t.client.workflow.getHandle(workflowId).result()) };
    });
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(((failure as WorkflowFailedError).cause as ApplicationFailure).type).toBe('SyncAborted');
    const [alert] = await received(1);
    expect(alert).toMatchObject({ kind: 'sync_aborted', workflowId: id, provider: 'octogen' });
    expect(alert?.counts).toMatchObject({ submitted: 2, failed: 2 });
    expect(alert?.reason).toMatch(/401/);
    expect(alert?.text).toMatch(new RegExp(`^catalog-sync: octogen sync ${id} aborted: .*OCTOGEN_PLATFORM_API_KEY`));
    expect(JSON.stringify(alert)).not.toContain('not-a-key');
    await expectNoSecretIn([id]);
  });

  it('pauses a schedule whose 3 last runs failed, with a note saying why, and posts schedule_paused', async () => {
    const file = path.join(spool, 'schedule.ndjson');
    writeFileSync(file, `${[valid(4), valid(5)].map((x) => JSON.stringify(x)).join('\n')}\n`);
    const id = uniqueKey('alerts-sched');
    const runs = await withWorker(t, { env: workerEnv('not-a-key') }, async (taskQueue) => {
      await createSyncSchedule(t.client, {
        id,
        provider: 'octogen',
        every: '1h',
        source: { file },
        taskQueue,
        options: { ...fast, alertThreshold: { count: 0 } },
      });
      created.push(id);
      const handle = t.client.schedule.getHandle(id);
      const out: { workflowId: string; runId: string; failure: unknown; pausedAfter: boolean }[] = [];
      for (let n = 1; n <= 3; n += 1) {
        await triggerSyncSchedule(t.client, id);
        let action;
        for (let i = 0; i < 300 && !action; i += 1) {
          action = (await handle.describe()).info.recentActions[n - 1];
          if (!action) await sleep(100);
        }
        const { workflowId, firstExecutionRunId: runId } = action!.action.workflow;
        const failure = await failureOf(t.client.workflow.getHandle(workflowId, runId).result());
        out.push({ workflowId, runId, failure, pausedAfter: (await handle.describe()).state.paused });
      }
      return out;
    });
    expect(runs.map((r) => r.pausedAfter)).toEqual([false, false, true]);
    for (const r of runs) {
      expect(r.failure).toBeInstanceOf(WorkflowFailedError);
      expect(((r.failure as WorkflowFailedError).cause as ApplicationFailure).type).toBe('ScheduledSyncFailed');
    }
    expect((await describeSyncSchedule(t.client, id)).alertAfterFailedRuns).toBe(3);
    const d = await t.client.schedule.getHandle(id).describe();
    expect(d.state.paused).toBe(true);
    expect(d.state.note).toMatch(
      /^paused by catalog-sync: the last 3 runs failed \(latest: the sync .*\/sync failed: /,
    );
    expect(d.state.note).toContain(`\`catalog-sync schedule unpause ${id}\``);
    expect(d.state.note).toContain(`temporal schedule toggle --schedule-id ${id} --unpause`);

    // Each run's sync aborted (3 alerts), then the schedule was paused (1).
    const alerts = await received(4);
    expect(alerts.filter((a) => a.kind === 'sync_aborted')).toHaveLength(3);
    const paused = alerts.filter((a) => a.kind === 'schedule_paused');
    expect(paused).toHaveLength(1);
    expect(paused[0]).toMatchObject({
      scheduleId: id,
      provider: 'octogen',
      workflowId: runs[2]?.workflowId,
      reason: d.state.note,
      counts: { submitted: 2, failed: 2 },
    });
    expect(paused[0]?.text).toBe(`catalog-sync: schedule ${id} (octogen): ${d.state.note}`);
    await expectNoSecretIn(runs.flatMap((r) => [r.workflowId, `${r.workflowId}/sync`]));
  });

  it('a receiver answering 500 is retried a few times and never fails the sync', async () => {
    receiver.status = 500;
    const { id, outcome } = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets: [valid(6), missing(3)], options: { ...fast, alertThreshold: { count: 0 } } },
        taskQueue,
      );
      const result = await t.client.workflow.getHandle(workflowId).result();
      return { id: workflowId, outcome: result };
    });
    expect(outcome.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
    expect(receiver.attempts).toBe(3);
    expect(receiver.posts).toHaveLength(0);
    const history = await t.client.workflow.getHandle(id).fetchHistory();
    const failed = history.events?.filter((e) => e.activityTaskFailedEventAttributes) ?? [];
    expect(failed).toHaveLength(1);
    expect(failed[0]?.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type).toBe(
      'AlertWebhookUnavailable',
    );
    expect(failed[0]?.activityTaskFailedEventAttributes?.failure?.message).toBe(
      'the alert webhook answered 500; retrying',
    );
    await expectNoSecretIn([id]);
  });
});
