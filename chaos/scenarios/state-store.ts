/**
 * The target-state store under fire (issue 14): a changed-only Octogen sync by reference, run twice
 * on one store. The first run sends every target (an empty store knows no accepted content) and
 * fills the store; the second changes a seeded 5 % of the versions, and while it runs the store goes
 * away and comes back:
 *
 *   postgres restarted   the PostgreSQL cluster stopped (a clean `fast` shutdown or an `immediate`
 *                        one, a crash with recovery) and started again on the same port
 *   postgres disk full   the cluster on a small tmpfs, filled to the last byte and freed again (a
 *                        server that stopped on it is started again, as an operator would)
 *   sqlite disk full     the SQLite file on a small tmpfs, filled to the last byte and freed again
 *
 * The promise (chaos/invariant.ts, `changedOnly`): the sync completes with exactly the changed
 * targets sent and every other target counted `unchanged`, or fails in one line naming the store;
 * never a changed target counted unchanged or missing from the provider (the simulator's requests
 * prove what was sent), never an unchanged one sent.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { startSync, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenProduct } from '../../simulators/octogen.ts';
import { startPostgres } from '../../scripts/postgres.ts';
import type { Ctx, RunRecord } from '../context.ts';
import { fill, mountTmpfs, unmount } from '../disk.ts';
import { pick, record, settle, waitUntil, workerEnv, Workers, type Settled } from '../harness.ts';
import { checkSync, octogen, type Expectation } from '../invariant.ts';
import { CHAOS_CATALOG, sleep, type Evaluation } from '../scenarios.ts';
import { octogenEnv, octogenSimKeys } from './octogen-fixture.ts';

const N = 3_000;
const CHANGED_RATE = 0.05;
const SIM_LATENCY_MS = 250;
const base: SyncOptions = {
  callAttempts: 40,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
  changedOnly: true,
};
/** The first run fills the store fast. */
const FILL_OPTIONS: SyncOptions = { ...base, batchSize: 100, concurrency: 4 };
/** The second sends its ~150 changed targets in small batches on two lanes, so the fault lands mid-sync. */
const CHANGE_OPTIONS: SyncOptions = { ...base, batchSize: 5, concurrency: 2 };

/** One store and how it fails. */
interface StoreUnderTest {
  url: string;
  /** Between the runs (the store idle). */
  between?(details: string[]): Promise<void>;
  /** Takes the store away for `downMs` and brings it back; returns what it did. */
  fault(rnd: () => number, downMs: number, workers: Workers): Promise<string>;
  close(): Promise<void>;
}

export type StoreKind = 'postgres restarted' | 'postgres disk full' | 'sqlite disk full' | 'worker killed';

async function openStore(kind: StoreKind, ctx: Ctx, seed: number): Promise<StoreUnderTest> {
  if (kind === 'worker killed') {
    // The store stays up; the worker dies between a recorded answer and its lane's next heartbeat.
    const file = path.join(ctx.dir, `state-kill-${seed}`, 'target-state.sqlite');
    return {
      url: `sqlite:${file}`,
      async fault(_rnd, downMs, workers) {
        await workers.killAndRestart(downMs);
        return `worker SIGKILLed, restarted after ${downMs} ms`;
      },
      async close() {},
    };
  }
  if (kind === 'postgres disk full') {
    // Outside the run's folder (root's, 0700): the cluster belongs to the postgres user.
    const mount = mountTmpfs(mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-chaos-pgfs-')), '128m', '0755');
    const filler = path.join(mount, 'filler');
    try {
      const server = await startPostgres({ parent: mount, durable: true });
      return {
        url: server.url,
        async fault(_rnd, downMs) {
          const filled = fill(filler);
          // PostgreSQL writes into its WAL segment already on disk and keeps pages in memory, so a
          // full disk would only show at the next segment: switch to it now (the store's own writes
          // then need a new 16 MB segment the disk cannot hold).
          const switched = await switchWal(server.url);
          await sleep(downMs);
          rmSync(filler, { force: true });
          // A server that could not write its WAL PANICs; one that could not come back stays down
          // until started again, as an operator would once the disk has room.
          const crashed = !server.running();
          await server.resume();
          return `PostgreSQL's tmpfs filled (${(filled / 1e6).toFixed(1)} MB of filler), WAL switched (${switched}), full ${downMs} ms, freed${crashed ? '; the server had stopped and was started again' : ''}`;
        },
        async close() {
          await server.stop();
          unmount(mount);
        },
      };
    } catch (err) {
      unmount(mount);
      throw err;
    }
  }
  if (kind === 'postgres restarted') {
    // Durable, as a production store: with synchronous_commit off (the tests' fast cluster) an
    // `immediate` stop loses the last commits, and the next changed-only sync sends those targets
    // again though they had not changed (found by this scenario, seed 297855605; docs/state.md).
    const server = await startPostgres({ durable: true });
    return {
      url: server.url,
      async fault(rnd, downMs) {
        const mode = rnd() < 0.5 ? 'fast' : 'immediate';
        await server.halt(mode);
        await sleep(downMs);
        await server.resume();
        return `PostgreSQL stopped (${mode}), down ${downMs} ms, restarted`;
      },
      close: () => server.stop(),
    };
  }
  return sqliteOnTmpfs(ctx, seed);
}

/** `SELECT pg_switch_wal()` as the cluster's superuser; returns "ok" or the error's first line. */
async function switchWal(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT pg_switch_wal()');
    return 'ok';
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A SQLite store on a tmpfs of its own. */
function sqliteOnTmpfs(ctx: Ctx, seed: number): StoreUnderTest {
  const mount = mountTmpfs(path.join(ctx.dir, `state-tmpfs-${seed}`), '32m', '0700');
  const file = path.join(mount, 'target-state.sqlite');
  const filler = path.join(mount, 'filler');
  return {
    url: `sqlite:${file}`,
    async between(details) {
      // Empties the WAL (the worker idle between the runs), so the second run's writes must grow it:
      // a WAL at its high-water mark is rewritten in place and would never see the disk full.
      const db = new Database(file);
      try {
        db.pragma('busy_timeout = 10000');
        const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
        details.push(`WAL truncated (busy ${row?.busy ?? '?'}), store ${(statSync(file).size / 1e6).toFixed(1)} MB`);
      } finally {
        db.close();
      }
    },
    async fault(_rnd, downMs) {
      const filled = fill(filler);
      await sleep(downMs);
      rmSync(filler, { force: true });
      return `store's tmpfs filled (${(filled / 1e6).toFixed(1)} MB of filler), full ${downMs} ms, freed`;
    },
    async close() {
      rmSync(filler, { force: true });
      unmount(mount);
    },
  };
}

const productCache = new Map<number, OctogenProduct[]>();

function writeVersions(file: string, products: OctogenProduct[], changed: ReadonlySet<number>): void {
  writeFileSync(
    file,
    `${products.map((p, i) => JSON.stringify({ uuid: p.uuid, version: changed.has(i) ? 'v2' : 'v1' })).join('\n')}\n`,
  );
}

/** A store that stayed down past the attempts fails the sync in one line naming it: a clear failure. */
const STORE_LINE = /^the target-state store \((postgres|sqlite) [^)\n]+\) cannot [^\n]+$/;

function evaluateRun(
  s: Settled,
  requests: Parameters<typeof checkSync>[2],
  x: Expectation,
  details: string[],
  label: string,
): Evaluation {
  let abort = s.abortReason;
  if (abort !== undefined && STORE_LINE.test(abort)) {
    details.push(`${label}: failed clearly: ${abort}`);
    abort = undefined;
  }
  return checkSync(s.report, s.listed, requests, x, abort);
}

export async function stateStoreRun(ctx: Ctx, seed: number, name: string, kind: StoreKind): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const products = productCache.get(N) ?? makeOctogenProducts(CHAOS_CATALOG, N);
  productCache.set(N, products);
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products, latencyMs: SIM_LATENCY_MS });
  let store: StoreUnderTest | undefined;
  const tag = kind.replace(/\W+/g, '-');
  // The store's URL joins the environment once the store is up (before the first worker starts).
  const env = workerEnv(ctx, `chaos-store-${tag}-${seed}`, octogenEnv(sim.url));
  const workers = new Workers(env);
  return record(
    name,
    seed,
    async (details) => {
      store = await openStore(kind, ctx, seed);
      env.CATALOG_SYNC_STATE_URL = store.url;
      workers.spawn();
      const w = workers;
      const file = path.join(ctx.dir, `store-${tag}-${seed}.ndjson`);
      const expect = (changed: ReadonlySet<number>): Expectation => ({
        submitted: changed.size,
        ...octogen,
        identityOf: (seq) => {
          const uuid = products[seq]?.uuid;
          return uuid === undefined ? undefined : `uuid:${uuid}`;
        },
        mayReject: () => false,
        changedOnly: { changed, total: N },
      });

      // Run 1: an empty store knows nothing, so every target is "changed" and goes.
      const all = new Set(products.map((_, i) => i));
      writeVersions(file, products, new Set());
      const first = await startSync(
        ctx.client,
        { provider: 'octogen', targetsRef: { file }, options: FILL_OPTIONS },
        w.taskQueue,
      );
      const s1 = await settle(ctx.client, first.workflowId, ctx.deadline);
      const e1 = evaluateRun(s1, sim.requests.slice(), expect(all), details, 'run 1');
      details.push(`run 1: ${s1.report.counts.accepted} accepted, ${s1.report.counts.unchanged} unchanged`);
      await store.between?.(details);

      // Run 2: 5 % of the versions changed; the store fails after a seeded number of its calls.
      const changed = new Set(products.flatMap((_, i) => (rnd() < CHANGED_RATE ? [i] : [])));
      writeVersions(file, products, changed);
      const from = sim.requests.length;
      const run2 = () => sim.requests.slice(from);
      const second = await startSync(
        ctx.client,
        { provider: 'octogen', targetsRef: { file }, options: CHANGE_OPTIONS },
        w.taskQueue,
      );
      const calls = pick(rnd, 0, 10);
      const downMs = pick(rnd, 1_000, 6_000);
      await waitUntil(() => sim.requests.length - from >= calls, 120_000, `${calls} calls of run 2`, w);
      const faultAt = Date.now();
      details.push(`run 2: ${changed.size} changed; after ${calls} calls: ${await store.fault(rnd, downMs, w)}`);
      const s2 = await settle(ctx.client, second.workflowId, ctx.deadline);
      const requests = run2();
      // A lane records each answer before its next call and stops at the first the store could not
      // take: its retry sends that batch again, one batch per lane for the one outage.
      const bound = CHANGE_OPTIONS.concurrency! * CHANGE_OPTIONS.batchSize!;
      const e2 = evaluateRun(s2, requests, { ...expect(changed), duplicateBound: bound }, details, 'run 2');
      const history = JSON.stringify(await ctx.client.workflow.getHandle(second.workflowId).fetchHistory());
      const storeFailures = history.split('StateStoreUnavailable').length - 1;
      const lastCall = requests.at(-1)?.at ?? 0;
      details.push(
        `run 2: ${s2.report.counts.accepted} accepted, ${s2.report.counts.failed} failed, ` +
          `${s2.report.counts.unchanged} unchanged, ${requests.length} calls, ` +
          `StateStoreUnavailable in history ${storeFailures}`,
      );
      const problems = [...e1.problems.map((p) => `run 1: ${p}`), ...e2.problems.map((p) => `run 2: ${p}`)];
      // A fault after the sync's last call proves nothing: the run says so instead of passing.
      if (lastCall < faultAt) problems.push('run 2: the fault came after the sync had sent everything');
      return {
        ...e2,
        invariantOk: problems.length === 0,
        lost: e1.lost + e2.lost,
        inTwoStates: e1.inTwoStates + e2.inTwoStates,
        problems,
      };
    },
    async () => {
      await workers.stop();
      await store?.close();
      await sim.close();
    },
    workers,
  );
}
