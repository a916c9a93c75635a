/**
 * Small pieces every new scenario shares: a pool of worker processes that counts its crashes,
 * Temporal calls retried across a server restart or a partition, the settled outcome of a sync
 * (report and full listing), and a record around a scenario body.
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import type { SyncReport } from '../contracts/index.ts';
import { errorText, type Ctx, type RunRecord } from './context.ts';
import type { Listed } from './invariant.ts';
import type { Evaluation } from './scenarios.ts';
import {
  awaitOutcome,
  listAll,
  sleep,
  spawnWorkerProcess,
  until,
  type WorkerEnv,
  type WorkerProcess,
} from './scenarios.ts';
import { getStatus } from '../client/index.ts';
import type { RecordedRequest } from '../simulators/faults.ts';

/** Worker processes on one task queue; kill() SIGKILLs one and counts the crash. */
export class Workers {
  readonly all: WorkerProcess[] = [];
  crashes = 0;
  constructor(private readonly env: WorkerEnv) {}
  get taskQueue(): string {
    return this.env.CATALOG_SYNC_TASK_QUEUE;
  }
  /** Workers that exited on their own (a start while the server was down) and were started again. */
  selfExits = 0;
  #stopped = false;
  #killing = new Set<WorkerProcess>();
  /** Starts a worker, supervised: one that exits on its own is started again, as a supervisor would. */
  spawn(): WorkerProcess {
    const w = spawnWorkerProcess(this.env);
    this.all.push(w);
    w.child.once('exit', () => {
      if (this.#stopped || this.#killing.has(w)) return;
      this.selfExits += 1;
      setTimeout(() => {
        if (!this.#stopped) this.spawn();
      }, 1_000);
    });
    return w;
  }
  live(): WorkerProcess[] {
    return this.all.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  }
  async kill(index = 0): Promise<void> {
    const w = this.live()[index];
    if (!w) return;
    this.crashes += 1;
    this.#killing.add(w);
    await w.kill();
  }
  /** SIGKILL, stay down `downMs`, start a new one. */
  async killAndRestart(downMs = 0): Promise<void> {
    await this.kill();
    if (downMs > 0) await sleep(downMs);
    this.spawn();
  }
  output(): string {
    return this.all.map((w) => w.output()).join('\n---\n');
  }
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.all.map((w) => w.kill()));
  }
}

/** Retries `fn` on anything but a failed workflow until the deadline (server restarts, partitions). */
export async function retrying<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowFailedError || Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/** Waits until `check` holds or throws `what` with the workers' output. */
export async function waitUntil(check: () => boolean, ms: number, what: string, workers?: Workers): Promise<void> {
  if (!(await until(check, ms)))
    throw new Error(`${what} not within ${ms / 1000} s; ${workers?.output().slice(-800) ?? ''}`);
}

/** Polls the status until the first pass has settled. */
export async function firstPassSettled(client: Client, workflowId: string, deadline: number): Promise<SyncReport> {
  for (;;) {
    const report = await retrying(() => getStatus(client, workflowId), deadline);
    if (report.firstPassSettled || report.phase === 'closed') return report;
    if (Date.now() > deadline) throw new Error('first pass did not settle before the deadline');
    await sleep(250);
  }
}

export interface Settled {
  report: SyncReport;
  listed: Listed;
  abortReason?: string | undefined;
}

export async function settle(client: Client, workflowId: string, deadline: number): Promise<Settled> {
  const outcome = await awaitOutcome(client, workflowId, deadline);
  const listed = await listAll(client, workflowId, deadline);
  return { report: outcome.report, listed, abortReason: outcome.abortReason };
}

/** Runs a scenario body and turns its evaluation (or error) into a record. */
export async function record(
  name: string,
  seed: number,
  body: (details: string[]) => Promise<Evaluation>,
  cleanup: () => Promise<void>,
  workers?: Workers,
): Promise<RunRecord> {
  const started = Date.now();
  const details: string[] = [];
  try {
    const evaluation = await body(details);
    const base = { scenario: name, seed, wallMs: Date.now() - started, detail: details.join('; ') };
    return { ...base, evaluation, ok: evaluation.invariantOk };
  } catch (err) {
    return {
      scenario: name,
      seed,
      wallMs: Date.now() - started,
      detail: details.join('; '),
      error: errorText(err) + (workers ? ` (workers: ${workers.output().slice(-600).replace(/\s+/g, ' ')})` : ''),
      ok: false,
    };
  } finally {
    await cleanup().catch(() => undefined);
  }
}

/** A seeded whole number in [lo, hi]. */
export const pick = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** Environment of a worker process on this run's server and task queue. */
export function workerEnv(ctx: Ctx, taskQueue: string, provider: Record<string, string>): WorkerEnv {
  return {
    TEMPORAL_ADDRESS: ctx.server.address,
    TEMPORAL_NAMESPACE: ctx.server.namespace,
    CATALOG_SYNC_TASK_QUEUE: taskQueue,
    CATALOG_SYNC_WORKFLOW_BUNDLE: ctx.bundlePath,
    ...provider,
  };
}

/** Distinct identities the provider has acted on so far, read incrementally from its live request log. */
export function landedCounter(
  requests: RecordedRequest[],
  p: { landed(r: RecordedRequest): boolean; identitiesIn(r: RecordedRequest): string[] },
): () => number {
  const seen = new Set<string>();
  let next = 0;
  return () => {
    // A request is recorded before it is answered: read only those with a status.
    while (next < requests.length && requests[next]!.status !== 0) {
      const r = requests[next++]!;
      if (p.landed(r)) for (const id of p.identitiesIn(r)) seen.add(id);
    }
    return seen.size;
  };
}

/** Waits until the sync has counted `submitted` targets (a re-submission by signal was taken). */
export async function taken(ctx: Ctx, workflowId: string, submitted: number): Promise<void> {
  for (;;) {
    const report = await retrying(() => getStatus(ctx.client, workflowId), ctx.deadline);
    if (report.counts.submitted >= submitted || report.phase === 'closed') return;
    if (Date.now() > ctx.deadline) throw new Error(`the sync never counted ${submitted} targets`);
    await sleep(250);
  }
}
