/**
 * Partitions: a TCP proxy on the loopback (chaos/proxy.ts) between the worker and the Temporal
 * server, or between the worker and the provider, cut twice for a few seconds and restored, while
 * a 3,000-target Octogen sync runs.
 */
import { startSync, type SyncOptions } from '../../client/index.ts';
import { seededRandom } from '../../simulators/faults.ts';
import { startOctogenSimulator } from '../../simulators/octogen.ts';
import type { Ctx, RunRecord } from '../context.ts';
import { pick, record, settle, waitUntil, workerEnv, Workers } from '../harness.ts';
import { checkSync } from '../invariant.ts';
import { hostPort, startProxy, type Proxy } from '../proxy.ts';
import { sleep } from '../scenarios.ts';
import { octogenEnv, octogenExpectation, octogenFixture, octogenSimKeys } from './octogen-fixture.ts';

const N = 3_000;
const SIM_LATENCY_MS = 50;
export const PARTITION_OPTIONS: SyncOptions = {
  batchSize: 100,
  concurrency: 4,
  callAttempts: 40,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
};

export type Link = 'server' | 'provider';

export async function partitionRun(ctx: Ctx, seed: number, name: string, link: Link): Promise<RunRecord> {
  const rnd = seededRandom(seed);
  const f = octogenFixture(ctx.dir, `partition-${seed}`, N, 0, rnd);
  const sim = await startOctogenSimulator({ keys: octogenSimKeys, products: f.products, latencyMs: SIM_LATENCY_MS });
  const target = hostPort(link === 'server' ? ctx.server.address : sim.url);
  const proxy: Proxy = await startProxy(target.host, target.port);
  const env = workerEnv(
    ctx,
    `chaos-partition-${link}-${seed}`,
    octogenEnv(link === 'provider' ? `http://${proxy.address}` : sim.url),
  );
  if (link === 'server') env.TEMPORAL_ADDRESS = proxy.address;
  const workers = new Workers(env);
  return record(
    name,
    seed,
    async (details) => {
      workers.spawn();
      const { workflowId } = await startSync(
        ctx.client,
        { provider: 'octogen', targetsRef: { file: f.file }, options: PARTITION_OPTIONS },
        workers.taskQueue,
      );
      for (const k of [1, 2]) {
        const calls = k * pick(rnd, 3, 10);
        await waitUntil(() => sim.requests.length >= calls, 120_000, `${calls} calls`, workers);
        const down = pick(rnd, 1_000, link === 'server' ? 8_000 : 4_000);
        proxy.cut();
        await sleep(down);
        proxy.restore();
        details.push(`cut after ${calls} calls for ${down} ms`);
      }
      const s = await settle(ctx.client, workflowId, ctx.deadline);
      // A lane loses at most the batch in flight per cut. Cut from the provider, its answer never
      // comes. Cut from the server, the lane waits to heartbeat before its next call
      // (activities/server-heartbeat.ts); the server times the attempt out, and the retry resumes
      // from the last heartbeat, which names every answer but the one in flight.
      const bound = proxy.cuts * PARTITION_OPTIONS.concurrency! * PARTITION_OPTIONS.batchSize!;
      return checkSync(
        s.report,
        s.listed,
        sim.requests,
        octogenExpectation(f, N, { duplicateBound: bound }),
        s.abortReason,
      );
    },
    async () => {
      await workers.stop();
      await proxy.close();
      await sim.close();
    },
    workers,
  );
}
