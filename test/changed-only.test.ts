/**
 * Send only what changed (`changedOnly`, docs/state.md), through the real server, real workers, a
 * real SQLite store and the simulators: a target whose content equals the last one the provider
 * accepted for its item is not sent and is counted `unchanged`, outside `submitted`, so the counts
 * still add up. Insider compares the update fields; Octogen the source record's `version` (never
 * sent). A store that cannot answer fails the attempt: nothing is sent or skipped on a guess.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { dryRunSync } from '../client/dry-run.ts';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { freshStateUrl } from './helpers/state.ts';
import { connectTestEnv, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const PARTNER = 'acme-partner';
const TOKEN = 'insider-diff-token';
const OCTOGEN_KEY = 'octogen-diff-key';
const N = 10_000;
const items = makeInsiderItems(N);
const products = makeOctogenProducts('alpha', 40);
const update = (key: string, stock: number) => {
  const [item_id, locale] = key.split(':');
  return { item_id, locale, in_stock: stock };
};

let t: TemporalTestEnv;
let insider: InsiderSimulator;
let octogen: OctogenSimulator;
const workerEnv = (stateUrl: string) => ({
  INSIDER_BASE_URL: insider.url,
  INSIDER_PARTNER_NAME: PARTNER,
  INSIDER_REQUEST_TOKEN: TOKEN,
  OCTOGEN_BASE_URL: octogen.url,
  OCTOGEN_PLATFORM_API_KEY: OCTOGEN_KEY,
  CATALOG_SYNC_STATE_URL: stateUrl,
});
const fast = {
  callInitialInterval: '100ms',
  callMaximumInterval: '500ms',
  resubmissionWindow: '0s',
  changedOnly: true,
} as const;

beforeAll(async () => {
  t = await connectTestEnv();
  insider = await startInsiderSimulator({ partnerName: PARTNER, token: TOKEN, items, requestsPerMinute: Infinity });
  octogen = await startOctogenSimulator({ keys: { [OCTOGEN_KEY]: ['alpha'] }, products });
});
afterAll(async () => {
  await insider?.close();
  await octogen?.close();
  await t?.close();
});
beforeEach(() => {
  insider.reset();
  octogen.reset();
});

const insiderSent = () => insider.requests.flatMap((r) => r.body as { item_id: string; in_stock: number }[]);
const octogenSent = () => octogen.requests.flatMap((r) => (r.body as { targets: Record<string, unknown>[] }).targets);

function expectAddsUp(report: SyncReport) {
  expect(countsAddUp(report.counts)).toBe(true);
  expect(report.counts.pending).toBe(0);
}

describe('changed-only syncs', () => {
  it('a 10,000-target file sent twice: the second run sends nothing; 50 changed: exactly those 50', async () => {
    const stateUrl = await freshStateUrl('sqlite', 'diff-10k');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-diff-'));
    const file = path.join(dir, 'items.ndjson');
    const write = (stock: (i: number) => number) =>
      writeFile(file, `${items.map((k, i) => JSON.stringify(update(k, stock(i)))).join('\n')}\n`);
    const changed = new Set(Array.from({ length: 50 }, (_, i) => i * 197 + 3));
    await write(() => 1);
    const run = (taskQueue: string, options: Record<string, unknown> = {}) =>
      startSync(t.client, { provider: 'insider', targetsRef: { file }, options: { ...fast, ...options } }, taskQueue)
        .then((s) => awaitReport(t.client, s.workflowId))
        .then((r) => r.report);
    await withWorker(t, { env: workerEnv(stateUrl) }, async (taskQueue) => {
      const first = await run(taskQueue);
      expect(first.counts).toMatchObject({ submitted: N, accepted: N, unchanged: 0 });
      expectAddsUp(first);
      expect(insiderSent()).toHaveLength(N);

      // The same file again: nothing is sent, every target is unchanged.
      insider.reset();
      const second = await run(taskQueue);
      expect(second.counts).toMatchObject({ submitted: 0, accepted: 0, rejected: 0, failed: 0, unchanged: N });
      expectAddsUp(second);
      expect(insider.requests).toHaveLength(0);

      // 50 items changed: exactly those go, in slices this time (the sync fans out to slice workflows).
      await write((i) => (changed.has(i) ? 7 : 1));
      insider.reset();
      const third = await run(taskQueue, { sliceSize: 2_500, concurrency: 2 });
      expect(third.counts).toMatchObject({ submitted: 50, accepted: 50, unchanged: N - 50 });
      expectAddsUp(third);
      const sent = insiderSent();
      expect(sent).toHaveLength(50);
      expect(new Set(sent.map((s) => `${s.item_id}`))).toEqual(
        new Set([...changed].map((i) => items[i]!.split(':')[0])),
      );
      expect(sent.every((s) => s.in_stock === 7)).toBe(true);

      // Without the option, everything goes as before.
      insider.reset();
      const full = await run(taskQueue, { changedOnly: false });
      expect(full.counts).toMatchObject({ submitted: N, accepted: N, unchanged: 0 });
      expect(insiderSent()).toHaveLength(N);
    });
  });

  it('an inline Octogen sync compares the record version, never sends it, and sends only changed versions', async () => {
    const stateUrl = await freshStateUrl('sqlite', 'diff-inline');
    const targets = (version: (i: number) => string | undefined) =>
      products.slice(0, 20).map((p, i) => {
        const v = version(i);
        return { uuid: p.uuid, ...(v !== undefined ? { version: v } : {}) };
      });
    const run = (taskQueue: string, list: unknown[]) =>
      startSync(t.client, { provider: 'octogen', targets: list, options: fast }, taskQueue)
        .then((s) => awaitReport(t.client, s.workflowId))
        .then((r) => r.report);
    await withWorker(t, { env: workerEnv(stateUrl) }, async (taskQueue) => {
      // Items 15..19 carry no version: they are never found unchanged.
      const first = await run(
        taskQueue,
        targets((i) => (i < 15 ? 'v1' : undefined)),
      );
      expect(first.counts).toMatchObject({ submitted: 20, accepted: 20, unchanged: 0 });
      expect(octogenSent()).toHaveLength(20);
      expect(octogenSent().every((s) => !('version' in s) && !('etag' in s))).toBe(true);

      octogen.reset();
      const second = await run(
        taskQueue,
        targets((i) => (i < 15 ? (i < 3 ? 'v2' : 'v1') : undefined)),
      );
      expect(second.counts).toMatchObject({ submitted: 8, accepted: 8, unchanged: 12 });
      expectAddsUp(second);
      const sent = octogenSent().map((s) => s.uuid);
      expect(sent.sort()).toEqual([0, 1, 2, 15, 16, 17, 18, 19].map((i) => products[i]!.uuid).sort());

      // A dry run compares the same way, with zero provider calls: only the five without a version would go.
      octogen.reset();
      const again = targets((i) => (i < 15 ? (i < 3 ? 'v2' : 'v1') : undefined));
      const request = { provider: 'octogen', targets: again, options: { changedOnly: true } };
      const plan = await dryRunSync(request, { env: { ...workerEnv(stateUrl), CATALOG_SYNC_TASK_QUEUE: taskQueue } });
      expect(plan).toMatchObject({ targets: 20, wouldSend: 5, unchanged: 15, calls: 1, providerCalls: 0 });
      expect(octogen.requests).toHaveLength(0);
      // Without the worker's provider configuration the account is unknown: it says so, and compares nothing.
      const blind = await dryRunSync(request, { env: { CATALOG_SYNC_STATE_URL: stateUrl } });
      expect(blind).toMatchObject({
        wouldSend: 20,
        unchangedUnknown: expect.stringMatching(/OCTOGEN_PLATFORM_API_KEY/),
      });
      expect(blind.unchanged).toBeUndefined();
    });
  });

  it('submit --changed-only: the CLI report says how many were unchanged and not sent', async () => {
    const stateUrl = await freshStateUrl('sqlite', 'diff-cli');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-sync-diff-cli-'));
    const file = path.join(dir, 'targets.ndjson');
    const write = (v: string) =>
      writeFile(
        file,
        products
          .slice(20, 25)
          .map((p, i) => JSON.stringify({ uuid: p.uuid, etag: i === 0 ? v : 'e1' }))
          .join('\n'),
      );
    await withWorker(t, { env: workerEnv(stateUrl) }, async (taskQueue) => {
      const env = {
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: inject('temporalNamespace'),
        CATALOG_SYNC_TASK_QUEUE: taskQueue,
      };
      const submit = (...more: string[]) =>
        runCli(
          ['submit', '--provider', 'octogen', '--targets', file, '--changed-only', '--window', '0s', '--wait', ...more],
          env,
        );
      await write('e1');
      const first = await submit('--json');
      expect(first.code, first.stderr).toBe(0);
      expect((JSON.parse(first.stdout) as SyncReport).counts).toMatchObject({ submitted: 5, unchanged: 0 });
      await write('e2');
      octogen.reset();
      const second = await submit();
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toMatch(
        /submitted 1 = accepted 1 \+ rejected 0 \+ failed 0 \+ superseded 0; unchanged 4 \(not sent\)/,
      );
      expect(octogenSent().map((s) => s.uuid)).toEqual([products[20]!.uuid]);
    });
  });

  it('a store that cannot be reached fails the attempt in one line; nothing is sent or counted unchanged', async () => {
    const url = new URL(await freshStateUrl('postgres', 'diff-down'));
    url.port = '1'; // nothing listens there
    const { outcome, history } = await withWorker(t, { env: workerEnv(url.toString()) }, async (taskQueue) => {
      const started = await startSync(
        t.client,
        {
          provider: 'insider',
          targets: [update(items[0]!, 1), update(items[1]!, 1)],
          options: { ...fast, callAttempts: 2 },
        },
        taskQueue,
      );
      const outcome = await awaitReport(t.client, started.workflowId);
      return { outcome, history: await t.client.workflow.getHandle(started.workflowId).fetchHistory() };
    });
    expect(insider.requests).toHaveLength(0);
    // One line naming the store, never its password; the targets are failed, never unchanged on a guess.
    expect(outcome.abortReason).toMatch(
      /^the target-state store \(postgres 127\.0\.0\.1:1\/diff_down_[a-z0-9_]+\) cannot tell which targets changed/,
    );
    expect(outcome.report.counts).toMatchObject({ submitted: 2, failed: 2, accepted: 0, unchanged: 0 });
    expectAddsUp(outcome.report);
    expect(JSON.stringify(history)).toContain('StateStoreUnavailable');
    expect(JSON.stringify(history)).not.toContain(url.password);
  });

  it('changedOnly on workers with the store off fails the sync in one line naming CATALOG_SYNC_STATE_URL; nothing is sent', async () => {
    const noStore = workerEnv('off');
    const outcome = await withWorker(t, { env: noStore }, async (taskQueue) => {
      const started = await startSync(
        t.client,
        { provider: 'insider', targets: [update(items[0]!, 1), update(items[1]!, 1)], options: fast },
        taskQueue,
      );
      return awaitReport(t.client, started.workflowId);
    });
    expect(insider.requests).toHaveLength(0);
    expect(outcome.abortReason).toContain(
      'changedOnly needs the target-state store, which these workers have off (CATALOG_SYNC_STATE_URL=off)',
    );
    expect(outcome.report.counts).toMatchObject({ submitted: 2, failed: 2, unchanged: 0 });
    expectAddsUp(outcome.report);
  });
});
