/**
 * Failures carried forward (docs/state.md), through the real server, a real worker, the Insider
 * simulator and the real target-state store, on SQLite and on PostgreSQL: a schedule syncs a file
 * its producer rewrites between runs (only what changed); a target the provider rejected for a
 * transient reason in run 1 is sent again by run 2, as `<run>/carried`, without anyone
 * re-submitting it; an item run 2's own sync settles is not sent twice, and one a later sync
 * accepted is not carried at all.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../activities/index.ts';
import { governorAccount } from '../activities/governor.ts';
import { providerAdapter } from '../activities/providers/index.ts';
import { openStateStore } from '../activities/state/index.ts';
import { MAX_CARRIED_TARGET_BYTES, type TargetStateStore } from '../contracts/target-state.ts';
import { awaitReport, startSync } from '../client/index.ts';
import { createSyncSchedule, deleteSyncSchedule, triggerSyncSchedule } from '../client/schedules.ts';
import { countsAddUp, SA_KIND, SA_SCHEDULE, type SyncReport } from '../contracts/index.ts';
import type { ScheduledSyncResult } from '../contracts/scheduled.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { createSyncWorker, type SyncWorker } from '../worker/worker.ts';
import { STORE_KINDS, freshStateUrl, type StoreKind } from './helpers/state.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';
import { inject } from 'vitest';

const PARTNER = 'carry-partner';
const TOKEN = 'carry-token';
const items = makeInsiderItems(40);
const update = (key: string, extra: Record<string, unknown> = { in_stock: 1 }) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, ...extra };
};
/** The items of every Insider call since the simulator's last reset, in order. */
const sentKeys = (sim: InsiderSimulator): string[] =>
  sim.requests.flatMap((r) =>
    ((r.body as { item_id: string; locale: string }[] | undefined) ?? []).map((x) => `${x.item_id}:${x.locale}`),
  );

const options = {
  callInitialInterval: '100ms',
  callMaximumInterval: '500ms',
  // No re-sends within the sync: a transient rejection is the item's last answer in that sync.
  transientResends: 0,
} as const;

let t: TemporalTestEnv;
let sim: InsiderSimulator;
let spool: string;
const created: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  spool = mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-carry-'));
  t = await connectTestEnv();
  sim = await startInsiderSimulator({ partnerName: PARTNER, token: TOKEN, items, requestsPerMinute: Infinity });
});
afterAll(async () => {
  for (const id of created) await deleteSyncSchedule(t.client, id).catch(() => undefined);
  await sim?.close();
  await t?.close();
  if (spool) rmSync(spool, { recursive: true, force: true });
});
beforeEach(() => sim.reset());

/** The schedule's file, rewritten with what changed since its last run. */
function writeTargets(file: string, targets: unknown[]): void {
  writeFileSync(file, targets.map((x) => `${JSON.stringify(x)}\n`).join(''));
}

async function worker(stateUrl: string, stateStore?: TargetStateStore): Promise<{ taskQueue: string; w: SyncWorker }> {
  const taskQueue = uniqueTaskQueue('carry');
  const w = await createSyncWorker({
    connection: t.nativeConnection,
    namespace: t.namespace,
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    activityDeps: {
      env: {
        INSIDER_BASE_URL: sim.url,
        INSIDER_PARTNER_NAME: PARTNER,
        INSIDER_REQUEST_TOKEN: TOKEN,
        INSIDER_REQUESTS_PER_MINUTE: '6000',
        CATALOG_SYNC_STATE_URL: stateUrl,
        CATALOG_SYNC_SPOOL_DIR: spool,
      },
      ...(stateStore !== undefined ? { stateStore } : {}),
    },
  });
  return { taskQueue, w };
}

/** Triggers the schedule and waits for its n-th run to close; its result (or error). */
async function triggerRun(scheduleId: string, n: number) {
  await triggerSyncSchedule(t.client, scheduleId);
  const until = Date.now() + 30_000;
  for (;;) {
    const d = await t.client.schedule.getHandle(scheduleId).describe();
    const action = d.info.recentActions[n - 1];
    if (action) {
      const { workflowId, firstExecutionRunId } = action.action.workflow;
      const result = (await t.client.workflow
        .getHandle(workflowId, firstExecutionRunId)
        .result()) as ScheduledSyncResult;
      return { workflowId, result };
    }
    if (Date.now() > until) throw new Error(`schedule ${scheduleId} did not start run ${n}`);
    await sleep(100);
  }
}

async function schedule(
  kind: StoreKind,
  taskQueue: string,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; file: string }> {
  const id = uniqueKey(`carry-${kind}`);
  const file = path.join(spool, `${id}.ndjson`);
  writeTargets(file, []);
  await createSyncSchedule(t.client, {
    id,
    provider: 'insider',
    every: '1h',
    paused: true,
    source: { file },
    options,
    taskQueue,
    ...extra,
  });
  created.push(id);
  return { id, file };
}

describe.each(STORE_KINDS)('failures carried forward, on %s', (kind) => {
  it('run 2 sends again what run 1 left rejected for a transient reason, once, unless a later sync settled it', async () => {
    const stateUrl = await freshStateUrl(kind, 'carry');
    const { taskQueue, w } = await worker(stateUrl);
    const [a, b, c, d, e] = [items[0]!, items[1]!, items[2]!, items[3]!, items[4]!];
    await w.runUntil(
      (async () => {
        const { id, file } = await schedule(kind, taskQueue);

        // Run 1: a, b and c bounce with a transient code (no re-sends within the sync); d is accepted.
        writeTargets(file, [update(a), update(b), update(c), update(d)]);
        sim.faults.script({ kind: 'reject-transient', code: 'temporarily_unavailable', count: 3 });
        const first = await triggerRun(id, 1);
        expect(first.result.report?.counts).toMatchObject({ submitted: 4, accepted: 1, failed: 3 });
        // Nothing earlier to carry: the result is as it always was.
        expect(first.result.carried).toBeUndefined();
        const store = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
        try {
          const [row] = await store.find('insider', a);
          expect(row).toMatchObject({
            state: 'rejected',
            code: 'temporarily_unavailable',
            retryable: true,
            syncId: `${first.workflowId}/sync`,
          });
        } finally {
          await store.close();
        }

        // A sync nobody scheduled accepts c in between: a later sync settled it.
        const manual = await startSync(
          t.client,
          { provider: 'insider', targets: [update(c)], options: { ...options, resubmissionWindow: '0s' } },
          taskQueue,
        );
        expect((await awaitReport(t.client, manual.workflowId)).report.counts).toMatchObject({ accepted: 1 });

        // Run 2: the file now holds a again (run 2's own sync settles it) and a new item; nobody re-submits b.
        sim.reset();
        writeTargets(file, [update(a), update(e)]);
        const second = await triggerRun(id, 2);
        expect(second.result.report?.counts).toMatchObject({ submitted: 2, accepted: 2 });
        expect(second.result.carried).toEqual({
          count: 1,
          transient: 1,
          failed: 0,
          rejected: 0,
          left: 0,
          tooLarge: 0,
          workflowId: `${second.workflowId}/carried`,
          counts: expect.objectContaining({ submitted: 1, accepted: 1, rejected: 0, failed: 0 }),
        });
        // Each item once: a by run 2's own sync, b carried, c (accepted later) not at all.
        expect(sentKeys(sim)).toEqual([a, e, b]);

        // The carried sync is a sync like any other, whose report says what it carried.
        const carried = t.client.workflow.getHandle(`${second.workflowId}/carried`);
        const report = (await carried.result()) as SyncReport;
        expect(report.carried).toEqual({ count: 1, transient: 1, failed: 0, rejected: 0, left: 0, tooLarge: 0 });
        expect(countsAddUp(report.counts)).toBe(true);
        const described = await carried.describe();
        expect(described.typedSearchAttributes.get(SA_KIND)).toBe('sync');
        expect(described.typedSearchAttributes.get(SA_SCHEDULE)).toBe(id);

        const after = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
        try {
          const [row] = await after.find('insider', b);
          expect(row).toMatchObject({ state: 'accepted', syncId: `${second.workflowId}/carried` });
          expect(row?.retryable).toBeUndefined();
        } finally {
          await after.close();
        }

        // Run 3 (the file unchanged): nothing left to carry, and nothing changed to send (a file
        // schedule is changed-only by default).
        sim.reset();
        // A run's ID ends in its start time to the second: two runs started within one second share
        // it, and a run does not count what its own sync ID accepted as unchanged (docs/state.md).
        await sleep(1_000 - (Date.now() % 1_000) + 50);
        const third = await triggerRun(id, 3);
        expect(third.result.carried).toBeUndefined();
        expect(third.result.report?.counts).toMatchObject({ submitted: 0, unchanged: 2 });
        expect(sentKeys(sim)).toEqual([]);
      })(),
    );
  });
});

describe('carrying forward, per schedule', () => {
  it("carryRejected carries every rejection; carryForward false carries nothing; another schedule's items stay its own", async () => {
    const stateUrl = await freshStateUrl('sqlite', 'carry-options');
    const { taskQueue, w } = await worker(stateUrl);
    await w.runUntil(
      (async () => {
        const all = await schedule('sqlite', taskQueue, { carryRejected: true });
        // An item the provider does not know: rejected for good, not for a transient reason.
        writeTargets(all.file, [update('no-such-sku:en_US'), update(items[10]!)]);
        const first = await triggerRun(all.id, 1);
        expect(first.result.report?.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });

        sim.reset();
        writeTargets(all.file, [update(items[11]!)]);
        const second = await triggerRun(all.id, 2);
        expect(second.result.carried).toMatchObject({
          count: 1,
          transient: 0,
          rejected: 1,
          counts: expect.objectContaining({ submitted: 1, rejected: 1 }),
        });
        expect(sentKeys(sim)).toEqual([items[11]!, 'no-such-sku:en_US']);

        // Off: its own transient rejection stays where it is; and the other schedule's rejection is not its to carry.
        const off = await schedule('sqlite', taskQueue, { carryForward: false });
        sim.reset();
        sim.faults.script({ kind: 'reject-transient', code: 'temporarily_unavailable', count: 1 });
        writeTargets(off.file, [update(items[12]!)]);
        await triggerRun(off.id, 1);
        sim.reset();
        writeTargets(off.file, [update(items[13]!)]);
        const quiet = await triggerRun(off.id, 2);
        expect(quiet.result.carried).toBeUndefined();
        expect(sentKeys(sim)).toEqual([items[13]!]);

        // A third schedule on the same account, carrying: nothing of the other two's is its own.
        const third = await schedule('sqlite', taskQueue, { carryRejected: true });
        sim.reset();
        writeTargets(third.file, [update(items[14]!)]);
        const own = await triggerRun(third.id, 1);
        expect(own.result.carried).toBeUndefined();
        expect(sentKeys(sim)).toEqual([items[14]!]);
      })(),
    );
  });
});

describe('what one run carries', () => {
  it('as much as its budget holds, oldest first; the rest left for the next run, the too large counted apart', async () => {
    const stateUrl = await freshStateUrl('sqlite', 'carry-budget');
    const env = { INSIDER_PARTNER_NAME: PARTNER, INSIDER_REQUEST_TOKEN: TOKEN, CATALOG_SYNC_STATE_URL: stateUrl };
    const read = providerAdapter('insider')!.configFromEnv(env);
    if (!('config' in read)) throw new Error('no config');
    const account = governorAccount('insider', read.config, '').hash;
    const store = openStateStore(env);
    const prefix = 'catalog-sync-insider-schedule-budget-';
    const run1 = `${prefix}2026-12-07T02:00:00Z/sync`;
    const targets = items.slice(20, 26).map((k) => update(k));
    try {
      await store.record(
        targets.map((target, i) => {
          const json = JSON.stringify(target);
          return {
            provider: 'insider',
            account,
            identity: `${target.item_id}:${target.locale}`,
            state: i === 1 ? ('failed' as const) : ('rejected' as const),
            code: i === 1 ? 'ProviderUnavailable' : 'temporarily_unavailable',
            retryable: true,
            // The last one was too large to keep.
            ...(i === 5 ? { targetBytes: MAX_CARRIED_TARGET_BYTES + 10 } : { target: json, targetBytes: json.length }),
            syncId: run1,
            batch: `${run1}#1`,
            at: 1_000 + i,
          };
        }),
      );
      const { carriedTargets } = createActivities({ env, stateStore: store });
      const ask = (maxBytes: number, maxTargets = 100) =>
        carriedTargets({
          provider: 'insider',
          runsPrefix: prefix,
          excludeSyncs: [],
          before: 10_000,
          includeRejected: false,
          maxBytes,
          maxTargets,
        });
      const one = JSON.stringify(targets[0]).length + 1;
      const some = await ask(2 + 2 * one + 5);
      expect(some.targets).toEqual(targets.slice(0, 2));
      expect(some.counts).toEqual({ count: 2, transient: 1, failed: 1, rejected: 0, left: 3, tooLarge: 1 });
      const few = await ask(1_000_000, 3);
      expect(few.counts).toMatchObject({ count: 3, left: 2, tooLarge: 1 });
      const all = await ask(1_000_000);
      expect(all.targets).toEqual(targets.slice(0, 5));
      expect(all.counts).toEqual({ count: 5, transient: 4, failed: 1, rejected: 0, left: 0, tooLarge: 1 });
    } finally {
      await store.close();
    }
  });

  it('a store that cannot answer does not fail the run: `carried.error` names the store', async () => {
    const stateUrl = await freshStateUrl('postgres', 'carry-down');
    const real = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
    // The store records the sync's answers, then goes away before the run asks what to carry.
    const gone: TargetStateStore = {
      ...real,
      where: real.where,
      carryable: async () => {
        throw new Error('connection lost');
      },
    };
    const { taskQueue, w } = await worker(stateUrl, gone);
    try {
      await w.runUntil(
        (async () => {
          const { id, file } = await schedule('postgres', taskQueue);
          writeTargets(file, [update(items[30]!)]);
          const run = await triggerRun(id, 1);
          expect(run.result.report?.counts).toMatchObject({ submitted: 1, accepted: 1 });
          expect(run.result.carried).toMatchObject({ count: 0 });
          expect(run.result.carried?.error).toMatch(
            /^nothing carried forward: the target-state store \(postgres 127\.0\.0\.1:\d+\/carry_down_[a-z0-9_]+\) cannot tell which items to carry forward: connection lost$/,
          );
        })(),
      );
    } finally {
      await real.close();
    }
  });
});

describe('catalog-sync schedule create, carrying forward', () => {
  it('--no-carry-forward and --carry-rejected reach the schedule, and describe says so', async () => {
    const taskQueue = uniqueTaskQueue('carry-cli');
    const env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: inject('temporalNamespace'),
      CATALOG_SYNC_TASK_QUEUE: taskQueue,
    };
    const file = path.join(spool, 'cli.ndjson');
    writeTargets(file, [update(items[35]!)]);
    const base = ['schedule', 'create'];
    const rest = ['--provider', 'insider', '--targets-file', file, '--every', '1h', '--paused'];

    const both = await runCli([...base, uniqueKey('cli'), ...rest, '--no-carry-forward', '--carry-rejected'], env);
    expect(both.code).toBe(1);
    expect(both.stderr).toBe(
      'catalog-sync: invalid schedule: carryRejected: carryRejected needs carryForward: leave carryForward on, or drop carryRejected\n',
    );

    const off = uniqueKey('cli-off');
    const all = uniqueKey('cli-all');
    created.push(off, all);
    expect((await runCli([...base, off, ...rest, '--no-carry-forward'], env)).code).toBe(0);
    expect((await runCli([...base, all, ...rest, '--carry-rejected'], env)).code).toBe(0);
    const described = async (id: string) =>
      JSON.parse((await runCli(['schedule', 'describe', id, '--json'], env)).stdout) as Record<string, unknown>;
    expect(await described(off)).toMatchObject({ carryForward: false, carryRejected: false });
    expect(await described(all)).toMatchObject({ carryForward: true, carryRejected: true });
    const human = await runCli(['schedule', 'describe', off], env);
    expect(human.stdout).toContain('  carry:       off\n');
  });
});
