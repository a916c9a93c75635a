/**
 * Chaos building blocks shared by `npm run chaos` (chaos/run.ts) and its CI slice
 * (test/chaos.test.ts): worker processes that can be SIGKILLed, the fault storms, and the check of
 * the product's promise on a finished sync (every target in exactly one state, nothing lost,
 * duplicate deliveries counted from what the simulator saw). Nothing here writes to the console.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { awaitReport, listRejected, type SyncOutcome } from '../client/index.ts';
import type { Counts, SyncOptions, SyncReport } from '../contracts/index.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import type { Fault, RecordedRequest } from '../simulators/faults.ts';
import type { OctogenProduct } from '../simulators/octogen.ts';

export const CHAOS_KEY = 'chaos-octogen-key';
export const CHAOS_CATALOG = 'alpha';

export const CHAOS_OPTIONS: SyncOptions = {
  batchSize: 100,
  concurrency: 4,
  callInitialInterval: '100ms',
  callMaximumInterval: '1s',
  resubmissionWindow: '0s',
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes the products as an NDJSON file of `{ uuid }` targets (line i+1 = products[i]). */
export function writeTargetsFile(dir: string, products: OctogenProduct[], name = 'targets.ndjson'): string {
  const file = path.join(dir, name);
  writeFileSync(file, `${products.map((p) => JSON.stringify({ uuid: p.uuid })).join('\n')}\n`);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Fault storms
// ---------------------------------------------------------------------------------------------

export interface Storm {
  name: string;
  rate: number;
  faults: Fault[];
  /** The worker's per-request timeout, when the storm needs a small one (in-process worker). */
  requestTimeoutMs?: number;
}

export const STORMS: Storm[] = [
  {
    name: 'storm: 503 + 429',
    rate: 0.3,
    faults: [
      { kind: 'status', status: 503 },
      { kind: 'status', status: 429, retryAfter: '1' },
    ],
  },
  { name: 'storm: reset + truncate', rate: 0.3, faults: [{ kind: 'reset' }, { kind: 'truncate' }] },
  {
    name: 'storm: 202 bad body',
    rate: 0.3,
    faults: [{ kind: 'status', status: 202, body: { unexpected: true } }],
  },
  { name: 'storm: slower than timeout', rate: 0.2, faults: [{ kind: 'delay', ms: 2000 }], requestTimeoutMs: 1000 },
];

/** Everything at once (the CI slice). */
export const MIXED_STORM: Storm = {
  name: 'storm: mixed',
  rate: 0.3,
  faults: [
    { kind: 'status', status: 503 },
    { kind: 'status', status: 429, retryAfter: '1' },
    { kind: 'reset' },
    { kind: 'truncate' },
    { kind: 'status', status: 202, body: { unexpected: true } },
  ],
};

// ---------------------------------------------------------------------------------------------
// Worker processes
// ---------------------------------------------------------------------------------------------

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** The worker's environment: Temporal and task queue, plus each provider's variables. */
export interface WorkerEnv extends Record<string, string> {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  CATALOG_SYNC_TASK_QUEUE: string;
  CATALOG_SYNC_WORKFLOW_BUNDLE: string;
}

const OUTPUT_TAIL = 4000;

/** `node --import tsx worker/run.ts`, what `npm run worker` runs, as its own process. */
export function spawnWorkerProcess(env: WorkerEnv): WorkerProcess {
  const root = projectRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'worker', 'run.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => (output = (output + d.toString()).slice(-OUTPUT_TAIL));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves once `check()` holds, or false after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

/**
 * awaitReport that survives a Temporal server going away for a while: transport errors are retried
 * until the deadline; a failed workflow is not.
 */
export async function awaitOutcome(client: Client, workflowId: string, deadlineMs: number): Promise<SyncOutcome> {
  for (;;) {
    try {
      return await awaitReport(client, workflowId);
    } catch (err) {
      if (err instanceof WorkflowFailedError || Date.now() > deadlineMs) throw err;
      await sleep(1000);
    }
  }
}

/** listRejected with the same retries. */
export async function listAll(
  client: Client,
  workflowId: string,
  deadlineMs: number,
): Promise<Awaited<ReturnType<typeof listRejected>>> {
  for (;;) {
    try {
      return await listRejected(client, workflowId);
    } catch (err) {
      // A replay that breaks (a query of a closed sync replays its history) breaks every time.
      if (Date.now() > deadlineMs || /Nondeterminism/.test(String(err))) throw err;
      await sleep(1000);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The promise, checked
// ---------------------------------------------------------------------------------------------

export interface Evaluation {
  counts: Counts;
  /** submitted = accepted + rejected + failed + superseded, pending 0, submitted = the targets sent. */
  invariantOk: boolean;
  /** Targets counted nowhere, still pending, or reported accepted though the provider never took them. */
  lost: number;
  /** Targets listed in two states (or counted twice). */
  inTwoStates: number;
  /** Targets the simulator received in more than one request (any answer). */
  duplicateDeliveries: number;
  /** Targets the provider processed (a real answer, even if the worker never read it) more than once. */
  processedTwice: number;
  providerCalls: number;
  problems: string[];
}

/** A request the simulator answered with its real answer (the provider acted on it). */
function landed(r: RecordedRequest): boolean {
  if (![200, 202, 400].includes(r.status)) return false;
  return r.fault === undefined || r.fault === 'truncate' || r.fault.startsWith('delay:');
}

function uuidsOf(r: RecordedRequest): string[] {
  const targets = (r.body as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(targets)) return [];
  return targets.flatMap((t) => {
    const uuid = (t as { uuid?: unknown } | null)?.uuid;
    return typeof uuid === 'string' ? [uuid] : [];
  });
}

export function evaluate(opts: {
  products: OctogenProduct[];
  report: SyncReport;
  listed: Awaited<ReturnType<typeof listRejected>>;
  requests: RecordedRequest[];
  abortReason?: string | undefined;
}): Evaluation {
  const { products, report, listed, requests } = opts;
  const n = products.length;
  const c = report.counts;
  const problems: string[] = [];
  if (opts.abortReason) problems.push(`aborted: ${opts.abortReason}`);

  const sum = c.accepted + c.rejected + c.failed + c.superseded;
  if (c.submitted !== sum) problems.push(`submitted ${c.submitted} != ${sum} (accepted+rejected+failed+superseded)`);
  if (c.pending !== 0) problems.push(`${c.pending} still pending`);
  if (c.submitted !== n) problems.push(`submitted ${c.submitted} != ${n} targets in the file`);

  // Every id listed in a non-accepted state, and how often.
  const states = new Map<string, string[]>();
  const note = (id: string, state: string) => states.set(id, [...(states.get(id) ?? []), state]);
  for (const r of listed.rejected) note(r.id, 'rejected');
  for (const f of listed.failed) note(f.id, 'failed');
  for (const s of report.superseded) note(s.id, 'superseded');
  let inTwoStates = [...states.values()].filter((s) => s.length > 1).length;
  if (inTwoStates > 0) problems.push(`${inTwoStates} targets listed in two states`);
  if (listed.rejected.length !== c.rejected)
    problems.push(`${listed.rejected.length} rejections listed, ${c.rejected} counted`);
  if (listed.failed.length !== c.failed) problems.push(`${listed.failed.length} failures listed, ${c.failed} counted`);

  // Accepted = everything not listed elsewhere; the count must match.
  let lost = Math.max(0, n - c.submitted) + c.pending;
  const excess = c.accepted + states.size - n;
  if (excess < 0) {
    lost += -excess;
    problems.push(`${-excess} targets counted in no state`);
  } else if (excess > 0) {
    inTwoStates += excess;
    problems.push(`${excess} targets counted twice`);
  }

  // Reported accepted, but the provider never took it: lost too.
  const uuidByLine = new Map(products.map((p, i) => [i + 1, p.uuid]));
  const notAccepted = new Set<string>();
  for (const e of [...listed.rejected, ...listed.failed]) {
    const uuid = (e.line !== undefined ? uuidByLine.get(e.line) : undefined) ?? (e.target as { uuid?: string })?.uuid;
    if (uuid) notAccepted.add(uuid);
  }
  const receipts = new Map<string, number>();
  const processed = new Map<string, number>();
  for (const r of requests) {
    const isLanded = landed(r);
    for (const uuid of uuidsOf(r)) {
      receipts.set(uuid, (receipts.get(uuid) ?? 0) + 1);
      if (isLanded) processed.set(uuid, (processed.get(uuid) ?? 0) + 1);
    }
  }
  if (report.superseded.length === 0) {
    const neverTaken = products.filter((p) => !notAccepted.has(p.uuid) && !processed.has(p.uuid)).length;
    if (neverTaken > 0) {
      lost += neverTaken;
      problems.push(`${neverTaken} targets reported accepted that the provider never took`);
    }
  }

  return {
    counts: c,
    invariantOk: problems.length === 0 && lost === 0 && inTwoStates === 0,
    lost,
    inTwoStates,
    duplicateDeliveries: [...receipts.values()].filter((k) => k > 1).length,
    processedTwice: [...processed.values()].filter((k) => k > 1).length,
    providerCalls: requests.length,
    problems,
  };
}
