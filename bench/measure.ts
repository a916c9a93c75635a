/**
 * Measuring helpers for the bench: a worker in its own process (so its peak RSS is its own), the
 * histories of a sync (every run of the parent and every slice child), percentiles, and tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import type { temporal as protoTypes } from '@temporalio/proto';
import { projectRoot } from '../scripts/temporal-bin.ts';

const { temporal } = proto;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const OUTPUT_TAIL = 4000;

// ---------------------------------------------------------------------------------------------
// Worker process
// ---------------------------------------------------------------------------------------------

export interface BenchWorker {
  pid: number;
  /** The last few KB of the worker's stdout and stderr. */
  output(): string;
  /** Peak resident set size so far (VmHWM), in MB; undefined once the process is gone. */
  peakRssMb(): number | undefined;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
/** Kills every worker this process started (they are ours, by PID). */
export function killWorkers(): void {
  for (const child of live) child.kill('SIGKILL');
}
process.on('exit', killWorkers);

export function peakRssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

type TaskQueueType = protoTypes.api.enums.v1.TaskQueueType;
const { TaskQueueType } = temporal.api.enums.v1;

async function hasPollers(client: Client, name: string, type: TaskQueueType): Promise<boolean> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: type,
  });
  return (res.pollers?.length ?? 0) > 0;
}

/**
 * Starts `node --import tsx worker/run.ts` (what `npm run worker` runs) and waits until it polls
 * the sync's task queue (workflows and activities) and the provider's activity task queue.
 */
export async function startBenchWorker(opts: {
  client: Client;
  env: Record<string, string>;
  taskQueue: string;
  providerTaskQueue: string;
  readyTimeoutMs?: number;
}): Promise<BenchWorker> {
  const root = projectRoot();
  // WORKER_NODE_ARGS: extra Node flags for the worker, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
  const child = spawn(
    process.execPath,
    [
      ...(process.env.WORKER_NODE_ARGS ? process.env.WORKER_NODE_ARGS.split(' ') : []),
      '--import',
      'tsx',
      path.join(root, 'worker', 'run.ts'),
    ],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  live.add(child);
  let output = '';
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ? `signal ${signal}` : `code ${code}`;
      live.delete(child);
      resolve();
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the worker process');

  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const gone = await Promise.race([exit.then(() => true), sleep(5000).then(() => false)]);
    if (!gone) {
      child.kill('SIGKILL');
      await exit;
    }
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  const queues: [string, TaskQueueType][] = [
    [opts.taskQueue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW],
    [opts.taskQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
    [opts.providerTaskQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
  ];
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`the worker exited (${exited}) before polling:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the worker did not poll its task queues in time:\n${output}`);
      const ready = await Promise.all(queues.map(([name, type]) => hasPollers(opts.client, name, type)));
      if (ready.every(Boolean)) break;
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid,
    output: () => output,
    peakRssMb: () => (exited === undefined ? peakRssMb(pid) : undefined),
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Histories
// ---------------------------------------------------------------------------------------------

export interface HistoryStats {
  /** Runs looked at: every run of the parent plus every slice child. */
  runs: number;
  parentRuns: number;
  /** The largest history of any run, by events and by encoded bytes (each its own maximum). */
  maxEvents: number;
  maxBytes: number;
  /** Which run holds the largest history by bytes: "parent run 2" or "slice-7". */
  maxBytesRun: string;
  /** The largest single event (its encoded size, payloads included) and its type. */
  largestEventBytes: number;
  largestEventType: string;
  /** Where a fanned-out sync spends its time, from the event times of its histories. */
  timeline: Timeline;
}

/** Means in ms over the slice children (or their sendBatch activities); undefined when none. */
export interface Timeline {
  /** Parent run 1: started -> first child initiated (scanSource and the workflow tasks around it). */
  scanMs: number | undefined;
  /** Parent: start-child initiated -> child started. */
  startChildMs: number | undefined;
  /** Child: started -> its first sendBatch scheduled (workflow task + planSlice local activity). */
  childPlanMs: number | undefined;
  /** sendBatch: scheduled -> started (matching, provider task queue dispatch, worker slots). */
  sendQueueMs: number | undefined;
  /** sendBatch: started -> completed (read the slice range, validate, HTTP call, map answer). */
  sendRunMs: number | undefined;
  /** Child: last sendBatch completed -> child completed. */
  childCloseMs: number | undefined;
  /** Child: started -> completed. */
  childLifetimeMs: number | undefined;
  /** Parent: child completed -> next child initiated (the parent's workflow task). */
  parentReactMs: number | undefined;
  /** Parent: last child completed -> run closed (continue-as-new or result). */
  parentCloseMs: number | undefined;
}

type HistoryEvent = protoTypes.api.history.v1.IHistoryEvent;
const E = temporal.api.enums.v1.EventType;
const at = (ev: HistoryEvent): number => tsToMs(ev.eventTime);
const mean = (xs: number[]): number | undefined =>
  xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;

interface TimelineSamples {
  scan: number[];
  startChild: number[];
  childPlan: number[];
  sendQueue: number[];
  sendRun: number[];
  childClose: number[];
  childLifetime: number[];
  parentReact: number[];
  parentClose: number[];
}

function sampleParent(events: HistoryEvent[], first: boolean, out: TimelineSamples): void {
  const started = events[0] ? at(events[0]) : 0;
  const initiated = new Map<string, number>();
  let firstInitiated: number | undefined;
  let lastChildDone: number | undefined;
  let pendingReact: number | undefined;
  for (const ev of events) {
    if (ev.eventType === E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) {
      const id = ev.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId ?? '';
      initiated.set(id, at(ev));
      firstInitiated ??= at(ev);
      if (pendingReact !== undefined) out.parentReact.push(at(ev) - pendingReact);
      pendingReact = undefined;
    } else if (ev.eventType === E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED) {
      const id = ev.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId ?? '';
      const from = initiated.get(id);
      if (from !== undefined) out.startChild.push(at(ev) - from);
    } else if (ev.eventType === E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) {
      lastChildDone = at(ev);
      pendingReact ??= at(ev);
    }
  }
  if (first && firstInitiated !== undefined) out.scan.push(firstInitiated - started);
  const last = events[events.length - 1];
  if (lastChildDone !== undefined && last) out.parentClose.push(at(last) - lastChildDone);
}

function sampleChild(events: HistoryEvent[], out: TimelineSamples): void {
  const first = events[0];
  const last = events[events.length - 1];
  if (!first || !last) return;
  const scheduled = new Map<string, number>();
  const startedAt = new Map<string, number>();
  let firstScheduled: number | undefined;
  let lastCompleted: number | undefined;
  for (const ev of events) {
    if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      scheduled.set(String(ev.eventId), at(ev));
      firstScheduled ??= at(ev);
    } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const id = String(ev.activityTaskStartedEventAttributes?.scheduledEventId);
      const from = scheduled.get(id);
      if (from !== undefined) out.sendQueue.push(at(ev) - from);
      startedAt.set(id, at(ev));
    } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const from = startedAt.get(String(ev.activityTaskCompletedEventAttributes?.scheduledEventId));
      if (from !== undefined) out.sendRun.push(at(ev) - from);
      lastCompleted = at(ev);
    }
  }
  if (firstScheduled !== undefined) out.childPlan.push(firstScheduled - at(first));
  if (lastCompleted !== undefined) out.childClose.push(at(last) - lastCompleted);
  out.childLifetime.push(at(last) - at(first));
}

interface RunRef {
  workflowId: string;
  runId: string;
  startTime: number;
}

async function listRuns(client: Client, query: string): Promise<RunRef[]> {
  const out: RunRef[] = [];
  for await (const w of client.workflow.list({ query }))
    out.push({ workflowId: w.workflowId, runId: w.runId, startTime: w.startTime.getTime() });
  return out;
}

/**
 * Finds every run of the sync `workflowId` (continue-as-new runs) and of its slice children
 * (`${workflowId}/slice-${n}`), waiting for visibility to list `expectedSlices` of them.
 */
async function syncRuns(client: Client, workflowId: string, expectedSlices: number): Promise<RunRef[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let runs: RunRef[];
    try {
      runs = await listRuns(client, `WorkflowId STARTS_WITH '${workflowId}'`);
    } catch {
      // A visibility store without STARTS_WITH: the parent's runs, then each slice by its ID.
      const parent = await listRuns(client, `WorkflowId = '${workflowId}'`);
      const slices = await mapLimit(
        Array.from({ length: expectedSlices }, (_, i) => `${workflowId}/slice-${i}`),
        8,
        async (id) => {
          const d = await client.workflow.getHandle(id).describe();
          return { workflowId: id, runId: d.runId, startTime: d.startTime.getTime() };
        },
      );
      return [...parent, ...slices];
    }
    const slices = runs.filter((r) => r.workflowId !== workflowId).length;
    if ((slices >= expectedSlices && runs.length > slices) || Date.now() > deadline) return runs;
    await sleep(250);
  }
}

export async function historyStats(client: Client, workflowId: string, expectedSlices: number): Promise<HistoryStats> {
  const runs = (await syncRuns(client, workflowId, expectedSlices)).sort((a, b) => a.startTime - b.startTime);
  const stats: HistoryStats = {
    runs: runs.length,
    parentRuns: runs.filter((r) => r.workflowId === workflowId).length,
    maxEvents: 0,
    maxBytes: 0,
    maxBytesRun: '',
    largestEventBytes: 0,
    largestEventType: '',
    timeline: {} as Timeline,
  };
  const samples: TimelineSamples = {
    scan: [],
    startChild: [],
    childPlan: [],
    sendQueue: [],
    sendRun: [],
    childClose: [],
    childLifetime: [],
    parentReact: [],
    parentClose: [],
  };
  let parentRun = 0;
  const named = runs.map((r) => ({
    ...r,
    name: r.workflowId === workflowId ? `parent run ${(parentRun += 1)}` : r.workflowId.slice(workflowId.length + 1),
  }));
  await mapLimit(named, 8, async (run) => {
    const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    const events = history.events ?? [];
    if (run.workflowId === workflowId) sampleParent(events, run.name === 'parent run 1', samples);
    else sampleChild(events, samples);
    const bytes = temporal.api.history.v1.History.encode(history).finish().length;
    stats.maxEvents = Math.max(stats.maxEvents, events.length);
    if (bytes > stats.maxBytes) {
      stats.maxBytes = bytes;
      stats.maxBytesRun = run.name;
    }
    for (const ev of events) {
      const size = temporal.api.history.v1.HistoryEvent.encode(ev).finish().length;
      if (size > stats.largestEventBytes) {
        stats.largestEventBytes = size;
        stats.largestEventType = temporal.api.enums.v1.EventType[ev.eventType ?? 0] ?? String(ev.eventType);
      }
    }
  });
  stats.timeline = {
    scanMs: mean(samples.scan),
    startChildMs: mean(samples.startChild),
    childPlanMs: mean(samples.childPlan),
    sendQueueMs: mean(samples.sendQueue),
    sendRunMs: mean(samples.sendRun),
    childCloseMs: mean(samples.childClose),
    childLifetimeMs: mean(samples.childLifetime),
    parentReactMs: mean(samples.parentReact),
    parentCloseMs: mean(samples.parentClose),
  };
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => lane()));
  return out;
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list; the median averages the middle two. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  if (p === 50 && sorted.length % 2 === 0) {
    return ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  }
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A markdown table with padded columns; numbers and right-aligned columns are padded left. */
export function markdownTable(header: string[], rows: string[][], rightAligned: boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cell: string, i: number) =>
    rightAligned[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0);
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, i)).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (rightAligned[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
