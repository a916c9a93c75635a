/**
 * The soak's unreplayable history, made on purpose through the real server and two real worker
 * processes (docs/reliability.md): the workflow's sticky worker is SIGKILLed, a query waits on its
 * sticky queue, an answer arrives meanwhile, and the other worker answers the query from a history
 * that ends in a workflow task not yet started. Without workflows/activation-guard.ts that worker
 * keeps the run with the answer applied, the next task reacts to the second answer on its own, and
 * the history records two wakes where any replay sees one: it never replays. With the guard, the
 * query is refused and the run evicted, and the history replays.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNSTARTED_TASK_REFUSED } from '../contracts/index.ts';
import { workflowInterceptorModules } from '../worker/worker.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';
import { spawnScript, waitFor } from './helpers/processes.ts';
import {
  answersQuery,
  nudgeSignal,
  twoAnswersWorkflow,
  type TwoAnswersActivities,
} from './fixtures/two-answers-workflow.ts';

const fixture = (f: string): string => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TemporalTestEnv;
let dir: string;
let bundlePath: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await connectTestEnv();
  dir = mkdtempSync(path.join(os.tmpdir(), 'activation-guard-'));
  // The product's interceptor modules, as every bundle of the sync workflows carries them.
  const { code } = await bundleWorkflowCode({
    workflowsPath: fixture('two-answers-workflow.ts'),
    workflowInterceptorModules: workflowInterceptorModules(),
    logger: quiet,
  });
  bundlePath = path.join(dir, 'bundle.js');
  writeFileSync(bundlePath, code);
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A workflow worker in its own process, so it can be SIGKILLed as a crash would. */
async function workflowWorker(taskQueue: string): Promise<ChildProcess> {
  const worker = spawnScript(
    path.join('test', 'fixtures', 'workflow-worker.ts'),
    [t.address, t.namespace, taskQueue, bundlePath],
    {},
  );
  children.push(worker.child);
  await waitFor(() => worker.output().includes('ready'), 60_000, 'workflow worker ready');
  return worker.child;
}

describe('a query answered from a workflow task not yet started', () => {
  it('is refused, the run evicted, and the history replays', async () => {
    const taskQueue = uniqueTaskQueue('guard');
    const activityQueue = `${taskQueue}-activities`;
    const answer = new Map<number, () => void>();
    const activities: TwoAnswersActivities = {
      answer: (n) => new Promise((resolve) => answer.set(n, () => resolve(n))),
    };
    const activityWorker = await Worker.create({
      connection: t.nativeConnection,
      namespace: t.namespace,
      taskQueue: activityQueue,
      activities,
    });
    await activityWorker.runUntil(async () => {
      const sticky = await workflowWorker(taskQueue);
      const handle = await t.client.workflow.start(twoAnswersWorkflow, {
        taskQueue,
        workflowId: uniqueKey('guard'),
        args: [activityQueue],
      });
      await waitFor(() => answer.size === 2, 30_000, 'both activities started');
      await workflowWorker(taskQueue); // the other worker, on the normal queue only from here on
      // A fresh task, so the sticky worker has just polled its sticky queue when it dies.
      await handle.signal(nudgeSignal);
      let signalTaken = false;
      await waitFor(
        () => signalTaken,
        30_000,
        'the signal taken by the sticky worker',
        async () => {
          const events = (await handle.fetchHistory()).events ?? [];
          const signalled = events.some((e) => e.workflowExecutionSignaledEventAttributes != null);
          signalTaken = signalled && events[events.length - 1]?.workflowTaskCompletedEventAttributes != null;
        },
      );
      await pause(200);
      sticky.kill('SIGKILL');
      const queried = handle.query(answersQuery).then(
        (n) => ({ answered: n }),
        (err: unknown) => ({ refused: String(err) }),
      );
      await pause(1000);
      answer.get(1)?.(); // arrives while the query waits on the dead worker's sticky queue
      const outcome = await queried;
      answer.get(2)?.();
      expect(outcome).toMatchObject({ refused: expect.stringContaining(UNSTARTED_TASK_REFUSED) });
      expect(await handle.result()).toBe(2);

      // The run the query touched was evicted: the task that took the first answer replayed it.
      const history = await handle.fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, history, handle.workflowId);
    });
  }, 120_000);
});
