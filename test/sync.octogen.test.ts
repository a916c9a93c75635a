/**
 * Octogen syncs end to end: a real Temporal dev server, a real worker, the Octogen simulator.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  awaitFirstPass,
  awaitReport,
  finish,
  getStatus,
  listRejected,
  resubmit,
  resubmitBySignal,
  startSync,
} from '../client/index.ts';
import { FailureType, countsAddUp, type SyncReport } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueKey, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'test-octogen-key';
const alpha = makeOctogenProducts('alpha', 1300);
const beta = makeOctogenProducts('beta', 20);
const shared = {
  uuid: '22222222-2222-4222-8222-222222222222',
  url: 'https://shared.example/products/9',
  catalog: 'alpha',
};
const sharedBeta = { ...shared, uuid: '33333333-3333-4333-8333-333333333333', catalog: 'beta' };
/** A second URL in both catalogs: a sync names each product once, so two ambiguous targets need two URLs. */
const shared2 = {
  uuid: '55555555-5555-4555-8555-555555555555',
  url: 'https://shared.example/products/10',
  catalog: 'alpha',
};
const shared2Beta = { ...shared2, uuid: '66666666-6666-4666-8666-666666666666', catalog: 'beta' };

let t: TemporalTestEnv;
let sim: OctogenSimulator;
const workerEnv = () => ({ OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY });
/** Fast retries: the policy is the product's; only its pace is a test option. */
const fast = { callInitialInterval: '100ms', callMaximumInterval: '1s' } as const;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({
    keys: { [KEY]: ['alpha', 'beta'], 'wrong-scope-key': ['alpha'] },
    products: [...alpha, ...beta, shared, sharedBeta, shared2, shared2Beta],
  });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});
beforeEach(() => sim.reset());

const sentTargets = () => sim.requests.flatMap((r) => (r.body as { targets: unknown[] }).targets);

function expectAddsUp(report: SyncReport) {
  expect(countsAddUp(report.counts)).toBe(true);
  expect(report.counts.pending).toBe(0);
}

describe('Octogen sync through the real server', () => {
  it('sends 1,234 valid targets as exactly 3 calls of 500, 500 and 234, each target once', async () => {
    const targets = alpha.slice(0, 1234).map((p) => ({ uuid: p.uuid }));
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(t.client, { provider: 'octogen', targets }, taskQueue);
      return awaitReport(t.client, workflowId);
    });
    expect(sim.requests.map((r) => (r.body as { targets: unknown[] }).targets.length).sort()).toEqual([234, 500, 500]);
    const sent = sentTargets().map((x) => (x as { uuid: string }).uuid);
    expect(new Set(sent).size).toBe(1234);
    expect(sent).toHaveLength(1234);
    expect(outcome.report.counts).toMatchObject({ submitted: 1234, accepted: 1234, rejected: 0, failed: 0 });
    expect(outcome.report.closedReason).toBe('nothing-to-fix');
    expect(outcome.report.calls).toHaveLength(3);
    expect(outcome.report.calls.map((c) => c.batch).sort()).toEqual([1, 2, 3]);
    expect(outcome.report.calls.every((c) => c.requestId && c.providerWorkflowId)).toBe(true);
    expectAddsUp(outcome.report);
  });

  it('puts valid, malformed and provider-rejected targets each in the right state; malformed ones are never sent', async () => {
    const targets = [
      { uuid: alpha[0]!.uuid },
      { uuid: alpha[1]!.uuid, url: alpha[1]!.url }, // both: malformed
      { url: 'not a url' }, // malformed
      { catalog: 'alpha' }, // neither: malformed
      { url: 'https://alpha.com/products/does-not-exist' }, // product_not_found
      { url: shared.url }, // ambiguous_url
      { catalog: 'beta', url: beta[0]!.url },
    ];
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { resubmissionWindow: '1s' } },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    const byId = Object.fromEntries(outcome.report.rejected.map((r) => [r.id, r]));
    expect(byId.t1).toMatchObject({ code: 'invalid_target', origin: 'validation' });
    expect(byId.t1?.message).toMatch(/both url and uuid/);
    expect(byId.t2).toMatchObject({ code: 'invalid_target', origin: 'validation' });
    expect(byId.t2?.message).toMatch(/url/);
    expect(byId.t3?.message).toMatch(/neither url nor uuid/);
    expect(byId.t4).toMatchObject({
      identity: 'url:https://alpha.com/products/does-not-exist',
      code: 'product_not_found',
      origin: 'provider',
    });
    expect(byId.t5).toMatchObject({ identity: `url:${shared.url}`, code: 'ambiguous_url', origin: 'provider' });
    // A malformed target names no identity: its provider fields are not known.
    expect(byId.t1?.identity).toBeUndefined();
    expect(outcome.report.counts).toMatchObject({ submitted: 7, accepted: 2, rejected: 5 });
    expect(outcome.report.closedReason).toBe('window-ended');
    const sent = JSON.stringify(sentTargets());
    expect(sent).not.toContain('not a url');
    expect(sentTargets()).toHaveLength(4);
    expectAddsUp(outcome.report);
  });

  it('takes a 400 with the answer shape as an answer: one call, no retry, every target rejected with its code', async () => {
    const targets = [{ url: 'https://alpha.com/products/nope-1' }, { uuid: '44444444-4444-4444-8444-444444444444' }];
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { resubmissionWindow: '0s', ...fast } },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(sim.requests).toHaveLength(1);
    expect(sim.requests[0]?.status).toBe(400);
    expect(outcome.report.rejected.map((r) => [r.code, r.identity])).toEqual([
      ['product_not_found', 'url:https://alpha.com/products/nope-1'],
      ['product_not_found', 'uuid:44444444-4444-4444-8444-444444444444'],
    ]);
    expect(outcome.report.calls[0]).toMatchObject({ httpStatus: 400 });
    expectAddsUp(outcome.report);
  });

  it('retries 503 twice then delivers; honours Retry-After on 429; retries a connection reset and a cut body', async () => {
    sim.faults.script(
      { kind: 'status', status: 503 },
      { kind: 'status', status: 503 },
      null,
      { kind: 'status', status: 429, retryAfter: '2' },
      null,
      { kind: 'reset' },
      { kind: 'truncate' },
      null,
    );
    const run = (uuid: string) =>
      withWorker(t, { env: workerEnv() }, async (taskQueue) => {
        const { workflowId } = await startSync(
          t.client,
          { provider: 'octogen', targets: [{ uuid }], options: fast },
          taskQueue,
        );
        return awaitReport(t.client, workflowId);
      });
    const first = await run(alpha[10]!.uuid);
    expect(sim.requests.map((r) => r.status)).toEqual([503, 503, 202]);
    expect(first.report.counts.accepted).toBe(1);

    const second = await run(alpha[11]!.uuid);
    const [limited, retried] = sim.requests.slice(3);
    expect(limited?.status).toBe(429);
    expect((retried?.at ?? 0) - (limited?.at ?? 0)).toBeGreaterThanOrEqual(2000);
    expect(second.report.counts.accepted).toBe(1);

    const third = await run(alpha[12]!.uuid);
    expect(sim.requests.slice(5).map((r) => r.fault ?? r.status)).toEqual(['reset', 'truncate', 202]);
    expect(third.report.counts.accepted).toBe(1);
    expectAddsUp(third.report);
  });

  it('never retries a 422: the batch is rejected with the provider code after one call', async () => {
    sim.faults.script({ kind: 'status', status: 422 });
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets: [{ uuid: alpha[20]!.uuid }], options: { resubmissionWindow: '0s', ...fast } },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(sim.requests).toHaveLength(1);
    expect(outcome.report.rejected).toHaveLength(1);
    expect(outcome.report.rejected[0]).toMatchObject({ origin: 'provider' });
    expect(outcome.report.rejected[0]?.message).toMatch(/422/);
    expectAddsUp(outcome.report);
  });

  it('ends the whole sync after one call on a 401, with a reason naming the key', async () => {
    const targets = alpha.slice(0, 1200).map((p) => ({ uuid: p.uuid }));
    const err = await withWorker(
      t,
      { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: 'not-a-key' } },
      async (taskQueue) => {
        const { workflowId } = await startSync(
          t.client,
          { provider: 'octogen', targets, options: { concurrency: 1, ...fast } },
          taskQueue,
        );
        const failure = await t.client.workflow
          .getHandle(workflowId)
          .result()
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        const outcome = await awaitReport(t.client, workflowId);
        return { failure, outcome };
      },
    );
    expect(sim.requests).toHaveLength(1);
    expect(err.failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (err.failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe(FailureType.SyncAborted);
    expect(cause?.message).toMatch(/OCTOGEN_PLATFORM_API_KEY/);
    expect(cause?.message).not.toContain('not-a-key');
    expect(err.outcome.abortReason).toMatch(/401/);
    expect(err.outcome.report.counts).toMatchObject({ submitted: 1200, failed: 1200 });
    expectAddsUp(err.outcome.report);
  });

  it("rejects an ungranted pinned catalog's targets with catalog_not_granted and delivers the other catalogs'", async () => {
    const targets = [
      { catalog: 'beta', url: beta[1]!.url },
      { catalog: 'alpha', url: alpha[30]!.url },
      { catalog: 'beta', url: beta[2]!.url },
    ];
    const outcome = await withWorker(
      t,
      { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: 'wrong-scope-key' } },
      async (taskQueue) => {
        const { workflowId } = await startSync(
          t.client,
          { provider: 'octogen', targets, options: { resubmissionWindow: '0s', ...fast } },
          taskQueue,
        );
        return awaitReport(t.client, workflowId);
      },
    );
    expect(sim.requests.map((r) => r.status).sort()).toEqual([202, 403]);
    expect(outcome.report.counts).toMatchObject({ accepted: 1, rejected: 2 });
    expect(outcome.report.rejected.map((r) => [r.id, r.code])).toEqual([
      ['t0', 'catalog_not_granted'],
      ['t2', 'catalog_not_granted'],
    ]);
    expectAddsUp(outcome.report);
  });

  it('re-sends targets rejected for a transient reason, a bounded number of times', async () => {
    sim.faults.script(
      { kind: 'reject-transient', code: 'temporarily_unavailable', count: 1 },
      null,
      { kind: 'reject-transient', code: 'temporarily_unavailable' },
      { kind: 'reject-transient', code: 'temporarily_unavailable' },
      { kind: 'reject-transient', code: 'temporarily_unavailable' },
    );
    const first = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets: [{ uuid: alpha[40]!.uuid }, { uuid: alpha[41]!.uuid }], options: fast },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(sim.requests.map((r) => (r.body as { targets: unknown[] }).targets.length)).toEqual([2, 1]);
    expect(first.report.counts.accepted).toBe(2);

    const second = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        {
          provider: 'octogen',
          targets: [{ uuid: alpha[42]!.uuid }],
          options: { ...fast, transientResends: 2, resubmissionWindow: '0s' },
        },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(sim.requests.slice(2)).toHaveLength(3);
    expect(second.report.failed).toEqual([
      expect.objectContaining({ id: 't0', identity: `uuid:${alpha[42]!.uuid}`, code: 'temporarily_unavailable' }),
    ]);
    expectAddsUp(second.report);
  });

  it('names the uuid of an inline target whose batch failed as a whole (from its echo)', async () => {
    sim.faults.script({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        {
          provider: 'octogen',
          targets: [{ uuid: alpha[62]!.uuid }],
          options: { ...fast, callAttempts: 2, resubmissionWindow: '0s' },
        },
        taskQueue,
      );
      return awaitReport(t.client, workflowId);
    });
    expect(outcome.report.failed).toEqual([
      expect.objectContaining({ id: 't0', identity: `uuid:${alpha[62]!.uuid}`, target: { uuid: alpha[62]!.uuid } }),
    ]);
    expectAddsUp(outcome.report);
  });

  it('by reference, names the uuid or url and the source line of every rejection and failure', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-octogen-items-'));
    const file = path.join(dir, 'targets.ndjson');
    const missing = 'https://alpha.com/products/gone-by-ref';
    await writeFile(
      file,
      `${JSON.stringify({ uuid: alpha[60]!.uuid })}\n\n${JSON.stringify({ url: missing })}\n${JSON.stringify({ uuid: alpha[61]!.uuid })}\n`,
    );
    // One target a batch, one lane: the first batch's two calls fail, the others are answered.
    sim.faults.script({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    try {
      const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
        const { workflowId } = await startSync(
          t.client,
          {
            provider: 'octogen',
            targetsRef: { file },
            options: { ...fast, batchSize: 1, callAttempts: 2, resubmissionWindow: '0s' },
          },
          taskQueue,
        );
        const done = await awaitReport(t.client, workflowId);
        return { ...done, listed: await listRejected(t.client, workflowId) };
      });
      expect(outcome.report.counts).toMatchObject({ submitted: 3, accepted: 1, rejected: 1, failed: 1 });
      expect(outcome.report.failed).toEqual([
        expect.objectContaining({ id: 't0', identity: `uuid:${alpha[60]!.uuid}`, line: 1 }),
      ]);
      expect(outcome.report.rejected).toEqual([
        expect.objectContaining({ id: 't1', identity: `url:${missing}`, line: 3, code: 'product_not_found' }),
      ]);
      expect(outcome.listed.failed.map((f) => [f.id, f.identity, f.line])).toEqual([
        ['t0', `uuid:${alpha[60]!.uuid}`, 1],
      ]);
      expect(outcome.listed.rejected.map((r) => [r.id, r.identity, r.line])).toEqual([['t1', `url:${missing}`, 3]]);
      expectAddsUp(outcome.report);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('supersedes ambiguous_url rejections fixed by signal and by update; the update answers with what it refused', async () => {
    const targets = [{ url: shared.url }, { url: shared2.url }, { uuid: alpha[50]!.uuid }];
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(t.client, { provider: 'octogen', targets }, taskQueue);
      const settled = await awaitFirstPass(t.client, workflowId);
      expect(settled.report.rejected.map((r) => [r.id, r.code])).toEqual([
        ['t0', 'ambiguous_url'],
        ['t1', 'ambiguous_url'],
      ]);
      expect(settled.report.phase).toBe('open');

      const answer = await resubmit(t.client, workflowId, [
        { fixes: 't0', target: { catalog: 'alpha', url: shared.url } },
        { fixes: 't1', target: { catalog: 'beta', url: shared2.url, uuid: sharedBeta.uuid } }, // malformed
        { fixes: 't2', target: { uuid: alpha[50]!.uuid } }, // t2 was accepted: nothing to fix
      ]);
      expect(answer.taken).toEqual([{ index: 0, id: 't3', supersedes: 't0' }]);
      expect(answer.refused.map((r) => [r.index, r.code])).toEqual([
        [1, 'invalid_target'],
        [2, 'not_fixable'],
      ]);
      // By signal, matched by the same url.
      await resubmitBySignal(t.client, workflowId, [{ target: { catalog: 'beta', url: shared2.url } }]);
      return awaitReport(t.client, workflowId);
    });
    expect(outcome.report.closedReason).toBe('nothing-to-fix');
    expect(outcome.report.counts).toMatchObject({ submitted: 5, accepted: 3, superseded: 2, rejected: 0 });
    expect(outcome.report.superseded).toEqual([
      { id: 't0', by: 't3' },
      { id: 't1', by: 't4' },
    ]);
    expect(outcome.report.refused.map((r) => r.code)).toEqual(['invalid_target', 'not_fixable']);
    expect(JSON.stringify(sentTargets())).not.toContain(sharedBeta.uuid);
    expectAddsUp(outcome.report);
  });

  it('starts one workflow for the same key twice, and closes at once when nothing was rejected', async () => {
    const key = uniqueKey();
    const request = { provider: 'octogen', key, targets: [{ uuid: alpha[60]!.uuid }] };
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const first = await startSync(t.client, request, taskQueue);
      const second = await startSync(t.client, request, taskQueue);
      expect(first).toEqual({ workflowId: `catalog-sync-octogen-${key}`, started: true });
      expect(second).toEqual({ workflowId: first.workflowId, started: false });
      const report = await awaitReport(t.client, first.workflowId);
      // Closed and still one sync for the key.
      const third = await startSync(t.client, request, taskQueue);
      expect(third.started).toBe(false);
      return report;
    });
    // The default window is an hour: closing now proves it did not wait for it.
    expect(outcome.report.closedReason).toBe('nothing-to-fix');
    expect(sim.requests).toHaveLength(1);
  });

  it('answers status at any moment and closes early on finish', async () => {
    const outcome = await withWorker(t, { env: workerEnv() }, async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets: [{ url: shared.url }, { uuid: alpha[70]!.uuid }] },
        taskQueue,
      );
      await awaitFirstPass(t.client, workflowId);
      const status = await getStatus(t.client, workflowId);
      expect(status).toMatchObject({ phase: 'open', counts: { accepted: 1, rejected: 1 } });
      expect(status.rejected[0]).toMatchObject({ id: 't0', code: 'ambiguous_url' });
      await finish(t.client, workflowId);
      return awaitReport(t.client, workflowId);
    });
    expect(outcome.report).toMatchObject({ phase: 'closed', closedReason: 'finished' });
    expectAddsUp(outcome.report);
  });
});
