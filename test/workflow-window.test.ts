/**
 * The workflow's own logic with mocked activities, on the time-skipping test server: the hour-long
 * re-submission window, a transient rejection's bounded re-sends, and the abort on a refused key.
 * (Provider calls themselves are covered through the real dev server and simulator elsewhere.)
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { BatchAnswer, PlanSliceInput, SendBatchInput, SlicePlan } from '../activities/index.ts';
import { FailureType, countsAddUp, providerTaskQueue, type SyncReport } from '../contracts/index.ts';
import { temporalTestServerPath } from '../scripts/temporal-bin.ts';
import type { syncWorkflow } from '../workflows/index.ts';

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  const path = temporalTestServerPath();
  if (!path) throw new Error('the time-skipping test server is not installed: run `npm run install-temporal`');
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
});
afterAll(async () => {
  await env?.teardown();
});

/** Every target valid, one batch; the mocked provider answers with `answer`. */
const mockActivities = (answer: (input: SendBatchInput, targets: unknown[]) => BatchAnswer) => ({
  async planSlice(input: PlanSliceInput): Promise<SlicePlan> {
    return { rejections: [], batches: [[[input.slice.firstSeq, input.slice.firstSeq + input.slice.count]]] };
  },
  async sendBatch(input: SendBatchInput): Promise<BatchAnswer> {
    if (input.targets.kind !== 'inline') throw new Error('the mock takes inline batches only');
    return answer(input, input.targets.targets);
  },
});

async function run(activities: ReturnType<typeof mockActivities>, targets: unknown[], options = {}) {
  const taskQueue = `window-${randomUUID()}`;
  // The same split as production: workflows and planning on the sync queue, calls on the provider's.
  const workers = [
    await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: { planSlice: activities.planSlice },
    }),
    await Worker.create({
      connection: env.nativeConnection,
      taskQueue: providerTaskQueue(taskQueue, 'mock'),
      activities: { sendBatch: activities.sendBatch },
    }),
  ];
  const execution = env.client.workflow.execute<typeof syncWorkflow>('syncWorkflow', {
    taskQueue,
    workflowId: `window-${randomUUID()}`,
    args: [{ provider: 'mock', source: { kind: 'inline', targets }, options }],
  });
  // Workers stop only once the workflow has closed, failed or not.
  await Promise.all(workers.map((w) => w.runUntil(execution.catch(() => undefined))));
  return execution;
}

it('keeps a sync with rejections open for its hour-long window, then closes with the rejection standing', async () => {
  const startedAt = await env.currentTimeMs();
  const report: SyncReport = await run(
    mockActivities((_, targets) => ({
      httpStatus: 202,
      outcomes: targets.map((_t, i) =>
        i === 0 ? { state: 'rejected', code: 'product_not_found', message: 'no such product' } : { state: 'accepted' },
      ),
    })),
    [{ id: 'a' }, { id: 'b' }],
  );
  expect(report.closedReason).toBe('window-ended');
  expect((await env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(60 * 60 * 1000);
  expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
  expect(countsAddUp(report.counts)).toBe(true);
});

it('re-sends a transiently rejected target only as often as allowed, then reports it failed', async () => {
  let calls = 0;
  const report: SyncReport = await run(
    mockActivities((_, targets) => {
      calls += 1;
      return {
        httpStatus: 202,
        outcomes: targets.map(() => ({ state: 'rejected', code: 'busy', message: 'try later', transient: true })),
      };
    }),
    [{ id: 'a' }],
    { transientResends: 3, resubmissionWindow: '1m' },
  );
  expect(calls).toBe(4);
  expect(report.failed).toEqual([expect.objectContaining({ id: 't0', code: 'busy' })]);
});

it('fails the workflow with SyncAborted and the report when the key is refused', async () => {
  const err = await run(
    mockActivities(() => {
      throw ApplicationFailure.create({ type: FailureType.ProviderAuthError, message: 'key refused' });
    }),
    [{ id: 'a' }, { id: 'b' }],
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe(FailureType.SyncAborted);
  const report = cause.details?.[0] as SyncReport;
  expect(report.counts).toMatchObject({ submitted: 2, failed: 2 });
  expect(report.closedReason).toBe('aborted');
});
