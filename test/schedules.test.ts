/**
 * Scheduled syncs through the real server: Temporal Schedules start `scheduledSyncWorkflow`, which
 * syncs a change feed (or a file) to the Octogen simulator. The feed cursor of the last successful
 * run is where the next run starts, so a failed run's changes are sent by the next one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, type ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createAlertActivities } from '../activities/alerts.ts';
import { createFeedActivities } from '../activities/feed.ts';
import { createActivities } from '../activities/index.ts';
import {
  createSyncSchedule,
  deleteSyncSchedule,
  describeSyncSchedule,
  lastSuccessfulRun,
  listSyncSchedules,
  pauseSyncSchedule,
  triggerSyncSchedule,
  unpauseSyncSchedule,
  ScheduleRequestError,
  type SyncScheduleRequest,
} from '../client/schedules.ts';
import { startChangeFeed, type ChangeFeed } from '../simulators/change-feed.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { FeedFailureType, type SyncReport } from '../contracts/index.ts';
import { createSyncWorker } from '../worker/worker.ts';
import type { ScheduledSyncResult, scheduledSyncWorkflow } from '../workflows/scheduled.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'schedule-test-key';
const products = makeOctogenProducts('alpha', 60);
const target = (i: number) => ({ uuid: products[i]!.uuid });
const targets = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => target(from + k));

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let feed: ChangeFeed;
let spool: string;
const taskQueue = uniqueTaskQueue('schedules');
const created: string[] = [];
let stopWorker: () => Promise<void>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nextSecond = () => sleep(1_000 - (Date.now() % 1_000) + 50);
const sentUuids = () =>
  sim.requests.flatMap((r) => (r.body as { targets: { uuid: string }[] }).targets.map((x) => x.uuid));

beforeAll(async () => {
  spool = mkdtempSync(path.join(tmpdir(), 'catalog-sync-schedules-'));
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  const env = { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY, CATALOG_SYNC_SPOOL_DIR: spool };
  // The product worker, plus the feed activities on the sync queue (the wiring worker.ts gets).
  const activities = createActivities({ env });
  const worker = await createSyncWorker({
    connection: t.nativeConnection,
    namespace: t.namespace,
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    activityDeps: { env },
    extra: {
      activities: {
        planTargets: activities.planTargets,
        planSlice: activities.planSlice,
        scanSource: activities.scanSource,
        carriedTargets: activities.carriedTargets,
        // No client given: the activities use the worker's own (Context.current().client).
        ...createFeedActivities({ env }),
        ...createAlertActivities({ env }),
      },
    },
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
  };
});

afterAll(async () => {
  for (const id of created) await deleteSyncSchedule(t.client, id).catch(() => undefined);
  await stopWorker?.();
  await feed?.close();
  await sim?.close();
  await t?.close();
  if (spool) rmSync(spool, { recursive: true, force: true });
});

beforeEach(async () => {
  sim.reset();
  await feed?.close();
  feed = await startChangeFeed();
});

const fast = { callInitialInterval: '100ms', callMaximumInterval: '1s' } as const;

async function create(request: Omit<SyncScheduleRequest, 'id' | 'taskQueue' | 'provider'>): Promise<string> {
  const id = uniqueKey('sched');
  await createSyncSchedule(t.client, { id, provider: 'octogen', taskQueue, ...request });
  created.push(id);
  return id;
}

interface Run {
  workflowId: string;
  runId: string;
}

/** The schedule's n-th run (1-based), once the schedule has started it. */
async function nthRun(scheduleId: string, n: number, timeoutMs = 30_000): Promise<Run> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const d = await t.client.schedule.getHandle(scheduleId).describe();
    const action = d.info.recentActions[n - 1];
    if (action) return toRun(action.action.workflow);
    if (Date.now() > until) throw new Error(`schedule ${scheduleId} did not start run ${n} in ${timeoutMs} ms`);
    await sleep(100);
  }
}
const toRun = (w: { workflowId: string; firstExecutionRunId: string }): Run => ({
  workflowId: w.workflowId,
  runId: w.firstExecutionRunId,
});

async function outcome(run: Run): Promise<{ result?: ScheduledSyncResult; error?: unknown }> {
  try {
    return {
      result: await t.client.workflow.getHandle<typeof scheduledSyncWorkflow>(run.workflowId, run.runId).result(),
    };
  } catch (error) {
    return { error };
  }
}

/** Triggers the schedule and waits for the run it started (the n-th) to close. */
async function triggerRun(scheduleId: string, n: number) {
  await triggerSyncSchedule(t.client, scheduleId);
  const run = await nthRun(scheduleId, n);
  return { run, ...(await outcome(run)) };
}

describe('scheduled syncs through the real server', () => {
  it('syncs the change feed when triggered; the next run starts from the last cursor and sends only the new targets', async () => {
    feed.push(targets(0, 3));
    const id = await create({ every: '1h', source: { feed: feed.url }, paused: true, options: fast });

    const first = await triggerRun(id, 1);
    expect(first.error).toBeUndefined();
    expect(first.result).toMatchObject({ cursor: '3', count: 3 });
    expect(first.result?.since).toBeUndefined();
    expect(first.result?.report?.counts).toMatchObject({ submitted: 3, accepted: 3, rejected: 0, failed: 0 });
    expect(first.result?.report?.workflowId).toBe(`${first.run.workflowId}/sync`);
    expect(sentUuids()).toEqual(targets(0, 3).map((x) => x.uuid));

    sim.reset();
    feed.push(targets(3, 5));
    const second = await triggerRun(id, 2);
    expect(second.error).toBeUndefined();
    expect(second.result).toMatchObject({ since: '3', cursor: '5', count: 2 });
    expect(sentUuids()).toEqual(targets(3, 5).map((x) => x.uuid));
    expect(feed.requests.map((r) => r.since)).toEqual([undefined, '3']);

    // Nothing changed: the run completes without a sync, and keeps the cursor.
    sim.reset();
    const third = await triggerRun(id, 3);
    expect(third.result).toEqual({ since: '5', cursor: '5', count: 0 });
    expect(sim.requests).toHaveLength(0);

    const d = await describeSyncSchedule(t.client, id);
    expect(d).toMatchObject({ provider: 'octogen', source: { feed: feed.url }, every: '1h', overlap: 'skip' });
    expect(d).toMatchObject({ paused: true, lastCursor: '5', actionsTaken: 3, taskQueue });
    expect(d.recentRuns.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);

    // Past the schedule's recent actions (here: the schedule is gone), visibility finds the last run.
    await deleteSyncSchedule(t.client, id);
    let last: Awaited<ReturnType<typeof lastSuccessfulRun>>;
    for (let i = 0; i < 50; i += 1) {
      last = await lastSuccessfulRun(t.client, id);
      if (last?.result.cursor === '5') break;
      await sleep(200);
    }
    expect(last).toMatchObject({ workflowId: third.run.workflowId, runId: third.run.runId, result: { cursor: '5' } });
  });

  it('a sync with failed targets fails the run, so the next run sends them again', async () => {
    feed.push(targets(24, 27));
    const id = await create({ every: '1h', source: { feed: feed.url }, paused: true, options: { callAttempts: 1 } });
    sim.faults.script({ kind: 'status', status: 503 });
    const failed = await triggerRun(id, 1);
    const cause = (failed.error as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('ScheduledSyncIncomplete');
    expect(cause.message).toMatch(
      /^3 of 3 targets failed in .*\/sync: this run does not advance the feed cursor \(start\)/,
    );
    expect((cause.details?.[0] as SyncReport).counts).toMatchObject({ submitted: 3, failed: 3 });

    sim.reset();
    const second = await triggerRun(id, 2);
    expect(second.error).toBeUndefined();
    expect(second.result).toMatchObject({ cursor: '3', count: 3 });
    expect(second.result?.report?.counts).toMatchObject({ accepted: 3, failed: 0 });
    expect(sentUuids()).toEqual(targets(24, 27).map((x) => x.uuid));
  });

  it('a failed run does not advance the cursor: the next run sends the targets it skipped', async () => {
    feed.push(targets(10, 12));
    const id = await create({
      every: '1h',
      source: { feed: feed.url },
      paused: true,
      options: fast,
      feedRetry: { attempts: 2, initialInterval: '100ms' },
    });
    const first = await triggerRun(id, 1);
    expect(first.result).toMatchObject({ cursor: '2', count: 2 });

    feed.push(targets(12, 15));
    feed.failNext(2); // both attempts of the next run
    sim.reset();
    const failed = await triggerRun(id, 2);
    expect(failed.error).toBeInstanceOf(WorkflowFailedError);
    const cause = (failed.error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ActivityFailure);
    expect((cause?.cause as ApplicationFailure).type).toBe(FeedFailureType.FeedUnavailable);
    expect((cause?.cause as ApplicationFailure).message).toMatch(/answered 503; retrying/);
    expect(sim.requests).toHaveLength(0);

    const third = await triggerRun(id, 3);
    expect(third.error).toBeUndefined();
    expect(third.result).toMatchObject({ since: '2', cursor: '5', count: 3 });
    expect(sentUuids()).toEqual(targets(12, 15).map((x) => x.uuid));
    expect(feed.requests.map((r) => [r.since, r.status])).toEqual([
      [undefined, 200],
      ['2', 503],
      ['2', 503],
      ['2', 200],
    ]);
    const d = await describeSyncSchedule(t.client, id);
    expect(d.recentRuns.map((r) => r.status)).toEqual(['COMPLETED', 'FAILED', 'COMPLETED']);
  });

  it('a sync that fails (provider auth) fails the run, and the cursor stays where it was', async () => {
    feed.push(targets(20, 22));
    const id = await create({ every: '1h', source: { feed: feed.url }, paused: true, options: fast });
    sim.faults.script({ kind: 'status', status: 401 });
    const failed = await triggerRun(id, 1);
    expect(failed.error).toBeInstanceOf(WorkflowFailedError);
    const cause = (failed.error as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('ScheduledSyncFailed');
    expect(cause.message).toMatch(/\/sync failed/);

    sim.reset();
    const second = await triggerRun(id, 2);
    expect(second.error).toBeUndefined();
    expect(second.result).toMatchObject({ cursor: '2', count: 2 });
    expect(second.result?.since).toBeUndefined();
    expect(sentUuids()).toEqual(targets(20, 22).map((x) => x.uuid));
  });

  it('an every-2s schedule fires by itself, one run at a time, each change sent once; paused, it starts nothing', async () => {
    feed.push(targets(30, 32));
    const id = await create({ every: '2s', source: { feed: feed.url }, options: fast });
    await nthRun(id, 1, 15_000);
    feed.push(targets(32, 34));
    // Generous: under a loaded machine (the whole suite on 2 cores) a run can take several seconds.
    const third = await nthRun(id, 3, 45_000);
    await outcome(third);

    await pauseSyncSchedule(t.client, id, 'test pause');
    let d = await describeSyncSchedule(t.client, id);
    for (const wid of d.running) await t.client.workflow.getHandle(wid).result();
    d = await describeSyncSchedule(t.client, id);
    const taken = d.actionsTaken;
    const feedRequests = feed.requests.length;
    expect(d).toMatchObject({ paused: true, note: 'test pause', every: '2s', nextRuns: [] });
    await sleep(5_000);
    d = await describeSyncSchedule(t.client, id);
    expect(d.actionsTaken).toBe(taken);
    expect(feed.requests.length).toBe(feedRequests);

    // Never two runs at once: each closed before the next started.
    const spans = await Promise.all(
      d.recentRuns.map(async (r) => {
        const w = await t.client.workflow.getHandle(r.workflowId, r.runId).describe();
        return { start: w.startTime.getTime(), close: w.closeTime?.getTime() ?? Infinity, status: w.status.name };
      }),
    );
    expect(spans.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < spans.length; i += 1) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.close);
    expect(spans.every((s) => s.status === 'COMPLETED')).toBe(true);
    // Each change was sent exactly once across the runs.
    expect(sentUuids().sort()).toEqual(
      targets(30, 34)
        .map((x) => x.uuid)
        .sort(),
    );

    await unpauseSyncSchedule(t.client, id);
    const until = Date.now() + 10_000;
    while ((await describeSyncSchedule(t.client, id)).actionsTaken === taken) {
      if (Date.now() > until) throw new Error('no run within 10 s of unpausing');
      await sleep(200);
    }
  });

  it('syncs a whole NDJSON file on each run', async () => {
    const file = path.join(spool, 'catalog.ndjson');
    writeFileSync(
      file,
      `${targets(40, 44)
        .map((x) => JSON.stringify(x))
        .join('\n')}\n`,
    );
    const id = await create({ cron: '0 0 1 1 *', source: { file }, paused: true, options: fast });
    const run = await triggerRun(id, 1);
    expect(run.error).toBeUndefined();
    expect(run.result?.report?.counts).toMatchObject({ submitted: 4, accepted: 4 });
    expect(run.result?.cursor).toBeUndefined();
    expect(sentUuids()).toEqual(targets(40, 44).map((x) => x.uuid));
  });

  it('a file schedule sends only what changed since the provider last accepted it (changedOnly by default)', async () => {
    const file = path.join(spool, 'versioned.ndjson');
    const write = (version: (i: number) => string) =>
      writeFileSync(
        file,
        `${targets(44, 48)
          .map((x, i) => JSON.stringify({ ...x, version: version(i) }))
          .join('\n')}\n`,
      );
    write(() => 'v1');
    const id = await create({ cron: '0 0 1 1 *', source: { file }, paused: true, options: fast });
    const first = await triggerRun(id, 1);
    expect(first.result?.report?.counts).toMatchObject({ submitted: 4, accepted: 4, unchanged: 0 });
    sim.reset();
    // A run's ID ends in its start time to the second, and a sync never counts what its own ID
    // accepted as unchanged: runs started within one second share an ID (docs/state.md).
    await nextSecond();
    const second = await triggerRun(id, 2);
    expect(second.result?.report?.counts).toMatchObject({ submitted: 0, accepted: 0, unchanged: 4 });
    expect(sim.requests).toHaveLength(0);
    write((i) => (i === 2 ? 'v2' : 'v1'));
    await nextSecond();
    const third = await triggerRun(id, 3);
    expect(third.result?.report?.counts).toMatchObject({ submitted: 1, accepted: 1, unchanged: 3 });
    expect(sentUuids()).toEqual([target(46).uuid]);
    // Said otherwise, every run sends the whole file.
    const always = await create({
      cron: '0 0 1 1 *',
      source: { file },
      paused: true,
      options: { ...fast, changedOnly: false },
    });
    sim.reset();
    const whole = await triggerRun(always, 1);
    expect(whole.result?.report?.counts).toMatchObject({ submitted: 4, accepted: 4 });
  });

  it('refuses a bad cron with a one-line message naming it, and creates nothing', async () => {
    const id = uniqueKey('bad-cron');
    const attempt = (cron: string) =>
      createSyncSchedule(t.client, { id, provider: 'octogen', cron, source: { feed: feed.url }, taskQueue });
    await expect(attempt('every hour')).rejects.toThrow(
      new ScheduleRequestError('schedule spec: "every hour" is not a valid cron expression (e.g. "0 * * * *")'),
    );
    // Passes the local look, refused by the server: its reason is passed on.
    const err = await attempt('61 * * * *').catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(ScheduleRequestError);
    expect((err as Error).message).toBe(
      'schedule spec: "61 * * * *" is not a valid cron expression (e.g. "0 * * * *"): Minute is not in range [0-59]',
    );
    await expect(t.client.schedule.getHandle(id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await expect(
      createSyncSchedule(t.client, { id, provider: 'octogen', source: { feed: feed.url }, taskQueue }),
    ).rejects.toThrow(/give exactly one of cron/);
    await expect(
      createSyncSchedule(t.client, { id, provider: 'nope', every: '1h', source: { feed: feed.url }, taskQueue }),
    ).rejects.toThrow(/unknown provider "nope"/);
    // Every run would hit the provider's batch limit: the library refuses it as the CLI does.
    await expect(
      createSyncSchedule(t.client, {
        id,
        provider: 'octogen',
        every: '1h',
        source: { feed: feed.url },
        options: { batchSize: 501 },
        taskQueue,
      }),
    ).rejects.toThrow(
      new ScheduleRequestError(
        "invalid schedule: options.batchSize is 501, over Octogen's limit of 500 targets a call; give at most 500, or leave it out",
      ),
    );
    await expect(t.client.schedule.getHandle(id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('lists its schedules and leaves others alone', async () => {
    const id = await create({ every: '1h', source: { feed: feed.url }, paused: true });
    const other = uniqueKey('other');
    await t.client.schedule.create({
      scheduleId: other,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'somethingElse', taskQueue, args: [] },
      state: { paused: true },
    });
    try {
      let listed: Awaited<ReturnType<typeof listSyncSchedules>> = [];
      for (let i = 0; i < 100 && !listed.some((s) => s.id === id); i += 1) {
        listed = await listSyncSchedules(t.client);
        await sleep(100);
      }
      expect(listed.find((s) => s.id === id)).toMatchObject({ provider: 'octogen', paused: true, every: '1h' });
      expect(listed.some((s) => s.id === other)).toBe(false);
      await expect(deleteSyncSchedule(t.client, other)).rejects.toThrow(/not a catalog-sync; it is left alone/);
    } finally {
      await t.client.schedule.getHandle(other).delete();
    }
  });
});

describe('catalog-sync schedule CLI', () => {
  const cliEnv = () => ({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
    CATALOG_SYNC_TASK_QUEUE: taskQueue,
  });

  it('creates, lists, describes, triggers and deletes a schedule; a bad cron is one clear line', async () => {
    const id = uniqueKey('cli');
    created.push(id);
    feed.push(targets(50, 52));

    const bad = await runCli(
      ['schedule', 'create', id, '--provider', 'octogen', '--feed', feed.url, '--cron', '0 * * *'],
      cliEnv(),
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      'catalog-sync: schedule spec: "0 * * *" is not a valid cron expression (e.g. "0 * * * *")\n',
    );
    const noSource = await runCli(['schedule', 'create', id, '--provider', 'octogen', '--every', '1h'], cliEnv());
    expect(noSource.code).toBe(1);
    expect(noSource.stderr).toMatch(/give exactly one source: --targets-file FILE, --targets-url URL or --feed URL\n$/);

    const made = await runCli(
      ['schedule', 'create', id, '--provider', 'octogen', '--feed', feed.url, '--cron', '0 * * * *', '--paused'],
      cliEnv(),
    );
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`created schedule ${id} (paused): cron "0 * * * *", feed ${feed.url}`);

    const again = await runCli(
      ['schedule', 'create', id, '--provider', 'octogen', '--feed', feed.url, '--every', '1h'],
      cliEnv(),
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`catalog-sync: a schedule "${id}" already exists: delete it first, or pick another id\n`);

    let listed: { id: string }[] = [];
    for (let i = 0; i < 20 && !listed.some((s) => s.id === id); i += 1) {
      const list = await runCli(['schedule', 'list', '--json'], cliEnv());
      expect(list.code).toBe(0);
      listed = JSON.parse(list.stdout) as { id: string }[];
    }
    expect(listed.find((s) => s.id === id)).toMatchObject({ provider: 'octogen', cron: '0 * * * *', paused: true });

    const trig = await runCli(['schedule', 'trigger', id], cliEnv());
    expect(trig.stdout).toBe(`triggered schedule ${id}\n`);
    const run = await outcome(await nthRun(id, 1));
    expect(run.result).toMatchObject({ cursor: '2', count: 2 });

    const described = await runCli(['schedule', 'describe', id, '--json'], cliEnv());
    expect(described.code).toBe(0);
    expect(JSON.parse(described.stdout)).toMatchObject({
      id,
      provider: 'octogen',
      source: { feed: feed.url },
      cron: '0 * * * *',
      overlap: 'skip',
      catchupWindow: '10m',
      paused: true,
      lastCursor: '2',
      actionsTaken: 1,
    });
    const human = await runCli(['schedule', 'describe', id], cliEnv());
    expect(human.stdout).toContain(`schedule ${id} (octogen): PAUSED`);
    expect(human.stdout).toContain('feed cursor: 2');
    expect(human.stdout).toMatch(/recent runs:\n\s+\S+\s+COMPLETED\s+catalog-sync-octogen-schedule-/);

    const deleted = await runCli(['schedule', 'delete', id], cliEnv());
    expect(deleted.stdout).toBe(`deleted schedule ${id}\n`);
    const gone = await runCli(['schedule', 'describe', id], cliEnv());
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(new RegExp(`^catalog-sync: no schedule "${id}" in namespace "[^"]+": .*list.*\\n$`));
  });
});
