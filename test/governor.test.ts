/**
 * The provider-account governor through the real server and the Insider simulator: a record limit
 * the project is not told is learned once and kept for later syncs, and a 429 with Retry-After
 * pauses every sync of the account.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { GOVERNOR_AGE_OUT_MS, governorStatusQuery, governorWorkflowId } from '../contracts/governor.ts';
import { adviceOf, ageOut, applyReport } from '../workflows/governor.ts';
import { initialGovernorState } from '../contracts/governor.ts';
import { governorAccount } from '../activities/governor.ts';
import { insider } from '../activities/providers/insider.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { connectTestEnv, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const PARTNER = 'acme-partner';
const TOKEN = 'insider-governor-token';
const items = makeInsiderItems(3500);
const update = (key: string) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, in_stock: 1 };
};
const fast = { callInitialInterval: '100ms', callMaximumInterval: '1s' } as const;

let t: TemporalTestEnv;
const sims: InsiderSimulator[] = [];
const envFor = (sim: InsiderSimulator) => ({
  INSIDER_BASE_URL: sim.url,
  INSIDER_PARTNER_NAME: PARTNER,
  INSIDER_REQUEST_TOKEN: TOKEN,
  INSIDER_REQUESTS_PER_MINUTE: '6000',
});
const simulator = async (over: Parameters<typeof startInsiderSimulator>[0]) => {
  const sim = await startInsiderSimulator({
    partnerName: PARTNER,
    token: TOKEN,
    items,
    requestsPerMinute: Infinity,
    ...over,
  });
  sims.push(sim);
  return sim;
};
const expectAllAccepted = (report: SyncReport, submitted: number) => {
  expect(report.counts).toMatchObject({ submitted, accepted: submitted, pending: 0 });
  expect(countsAddUp(report.counts)).toBe(true);
};

beforeAll(async () => {
  t = await connectTestEnv();
});
afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
  await t?.close();
});

describe('the governor state', () => {
  it('halves from the failing size, keeps the largest size answered, and probes up by 25 % after 10 minutes', () => {
    const s = initialGovernorState('insider');
    applyReport(s, { kind: 'oversize', records: 1000, bytes: 40_000 }, 0);
    expect(adviceOf(s)).toMatchObject({ okRecords: 0, tooLargeRecords: 1000, probeRecords: 500 });
    applyReport(s, { kind: 'oversize', records: 500, bytes: 20_000 }, 1);
    applyReport(s, { kind: 'ok', records: 250, bytes: 10_000 }, 2);
    expect(adviceOf(s)).toMatchObject({ okRecords: 250, tooLargeRecords: 500 });
    expect(s.probeRecords).toBeUndefined();
    ageOut(s, 1 + GOVERNOR_AGE_OUT_MS - 1);
    expect(s.probeRecords).toBeUndefined();
    ageOut(s, 1 + GOVERNOR_AGE_OUT_MS);
    expect(adviceOf(s)).toMatchObject({ okRecords: 250, probeRecords: 313, tooLargeRecords: 314 });
    // A known-good record count found too large means the bytes were: a byte cap, records kept.
    applyReport(s, { kind: 'oversize', records: 200, bytes: 90_000 }, 3);
    expect(adviceOf(s)).toMatchObject({ okRecords: 250, maxBytes: 45_000 });
  });

  it('pauses the account until Retry-After, or a backoff that doubles until a call is answered', () => {
    const s = initialGovernorState('octogen');
    applyReport(s, { kind: 'rate', until: 5_000 }, 1_000);
    expect(s.pausedUntil).toBe(5_000);
    applyReport(s, { kind: 'rate' }, 10_000);
    applyReport(s, { kind: 'rate' }, 10_000);
    expect(s.pausedUntil).toBe(12_000);
    applyReport(s, { kind: 'ok', records: 1, bytes: 10 }, 13_000);
    applyReport(s, { kind: 'rate' }, 20_000);
    expect(s.pausedUntil).toBe(21_000);
  });
});

describe('provider-account governor', () => {
  it('learns a hidden 23-record limit once: every answered call within it, at most 8 oversize answers over two syncs on two workers', async () => {
    const sim = await simulator({ maxRecords: 23 });
    const env = envFor(sim);
    const taskQueue = uniqueTaskQueue('governor');
    const run = (keys: string[]) =>
      // Each sync on a worker of its own (a fresh process's view): what was learned lives in the governor.
      withWorker(t, { env, taskQueue }, async () => {
        const { workflowId } = await startSync(t.client, { provider: 'insider', targets: keys.map(update) }, taskQueue);
        return (await awaitReport(t.client, workflowId)).report;
      });
    const first = await run(items.slice(0, 2500));
    const firstCalls = sim.requests.length;
    const second = await run(items.slice(2500, 3500));
    const reports = [first, second];
    const read = insider.configFromEnv(env);
    if (!('config' in read)) throw new Error('no Insider config');
    const account = governorAccount('insider', read.config, taskQueue);
    const status = await withWorker(t, { env, taskQueue }, () =>
      t.client.workflow.getHandle(governorWorkflowId('insider', account.hash)).query(governorStatusQuery),
    );
    expectAllAccepted(reports[0]!, 2500);
    expectAllAccepted(reports[1]!, 1000);

    const answered = sim.requests.filter((r) => r.status === 200);
    const oversize = sim.requests.filter((r) => r.status === 400);
    expect(answered.every((r) => (r.body as unknown[]).length <= 23)).toBe(true);
    expect(oversize.length).toBeLessThanOrEqual(8);
    // The second sync is planned at the learned size: no oversize answer at all.
    expect(sim.requests.slice(firstCalls).filter((r) => r.status !== 200)).toEqual([]);
    expect(sim.requests.every((r) => r.status === 200 || r.status === 400)).toBe(true);
    // Every target arrived, each in exactly one answered call.
    const delivered = answered.flatMap((r) => (r.body as { item_id: string; locale: string }[]).map((u) => u.item_id));
    expect(delivered).toHaveLength(3500);
    expect(new Set(delivered).size).toBe(3500);

    // The governor's status query names what it learned.

    expect(status.provider).toBe('insider');
    expect(status.okRecords).toBeGreaterThan(0);
    expect(status.okRecords).toBeLessThanOrEqual(23);
    expect(status.tooLargeRecords).toBeGreaterThan(23);
    expect(status.oversizeAnswers).toBe(oversize.length);
  });

  it('after a 429 with Retry-After: 2, no call of any sync to the account starts within 2 s', async () => {
    const latencyMs = 100;
    const sim = await simulator({ latencyMs });
    sim.faults.script({ kind: 'status', status: 429, retryAfter: '2' });
    const reports = await withWorker(t, { env: envFor(sim) }, async (taskQueue) => {
      const start = (from: number) =>
        startSync(
          t.client,
          {
            provider: 'insider',
            targets: items.slice(from, from + 40).map(update),
            options: { ...fast, batchSize: 5, concurrency: 2 },
          },
          taskQueue,
        );
      const started = await Promise.all([start(0), start(40)]);
      return Promise.all(started.map(async (s) => (await awaitReport(t.client, s.workflowId)).report));
    });
    for (const report of reports) expectAllAccepted(report, 40);

    const limited = sim.requests.filter((r) => r.status === 429);
    expect(limited).toHaveLength(1);
    const at = limited[0]!.at;
    // Calls that arrived before the 429 was answered were in flight; none may start after it within 2 s.
    const answeredAt = at + latencyMs + 50;
    const during = sim.requests.filter((r) => r.at > answeredAt && r.at < at + 2_000);
    expect(during.map((r) => r.at - at)).toEqual([]);
    expect(sim.requests.filter((r) => r.at >= at + 2_000).length).toBeGreaterThan(0);
  });
});
