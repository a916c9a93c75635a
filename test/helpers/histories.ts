/**
 * Scans the histories of every workflow run on some task queues for their largest payloads: every
 * payload in every event (inputs, results, signal and update payloads, failure details, markers,
 * memo, continue-as-new state), wherever it sits in the event.
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { UNSTARTED_TASK_REFUSED } from '../../contracts/index.ts';

export interface PayloadSighting {
  workflowId: string;
  runId: string;
  eventId: string;
  eventType: string;
  /** Where in the event: "workflowExecutionStartedEventAttributes.input.payloads.0". */
  path: string;
  bytes: number;
}

export interface HistoryScan {
  runs: number;
  events: number;
  payloads: number;
  /** The largest payload seen, if any. */
  largest?: PayloadSighting;
  /** Every payload over the limit given. */
  over: PayloadSighting[];
  /**
   * Workflow tasks failed by workflows/activation-guard.ts. It refuses only activations a query
   * made (their failures write no event), so any here is a false alarm on a real task.
   */
  refusedTasks: { workflowId: string; runId: string; eventId: string }[];
}

const isPayload = (v: unknown): v is { data: Uint8Array; metadata?: Record<string, Uint8Array> } =>
  typeof v === 'object' && v !== null && (v as { data?: unknown }).data instanceof Uint8Array;

const payloadBytes = (p: { data: Uint8Array; metadata?: Record<string, Uint8Array> | null }): number =>
  p.data.length + Object.values(p.metadata ?? {}).reduce((n, m) => n + (m?.length ?? 0) + 16, 0);

/** Every payload in `value` (a decoded history event), with its path. */
function* payloadsIn(value: unknown, path: string, depth = 0): Generator<[string, number]> {
  if (depth > 40 || typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
  if (isPayload(value)) {
    yield [path, payloadBytes(value)];
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    if (typeof child === 'object' && child !== null) yield* payloadsIn(child, path ? `${path}.${key}` : key, depth + 1);
  }
}

/**
 * A run's events, a few at a time: a page of many events with large payloads could pass the
 * client's 4 MB message limit even when every payload is small enough.
 */
async function* historyEvents(client: Client, workflowId: string, runId: string) {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 8,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    yield* page.history?.events ?? [];
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

/** Lists every run (closed or open, every continue-as-new run) on `taskQueues` and scans its history. */
export async function scanHistories(
  client: Client,
  taskQueues: string[],
  limitBytes = 256 * 1024,
): Promise<HistoryScan> {
  const scan: HistoryScan = { runs: 0, events: 0, payloads: 0, over: [], refusedTasks: [] };
  for (const taskQueue of taskQueues) await scanRuns(client, `TaskQueue = '${taskQueue}'`, limitBytes, scan);
  return scan;
}

/**
 * Every run a visibility query lists, from the raw service: the client's list() decodes memos with
 * its data converter, and some suites' memos are encrypted with a codec this process lacks.
 */
async function* listRuns(client: Client, query: string | undefined) {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      pageSize: 200,
      ...(query !== undefined ? { query } : {}),
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const e of page.executions ?? []) {
      const workflowId = e.execution?.workflowId;
      const runId = e.execution?.runId;
      if (workflowId && runId) yield { workflowId, runId };
    }
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

/** Scans every run a visibility query lists (no query: every run in the namespace). */
export async function scanRuns(
  client: Client,
  query: string | undefined,
  limitBytes = 256 * 1024,
  scan: HistoryScan = { runs: 0, events: 0, payloads: 0, over: [], refusedTasks: [] },
): Promise<HistoryScan> {
  for await (const run of listRuns(client, query)) {
    scan.runs += 1;
    for await (const event of historyEvents(client, run.workflowId, run.runId)) {
      scan.events += 1;
      const eventType = proto.temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? String(event.eventType);
      if (event.workflowTaskFailedEventAttributes?.failure?.message?.includes(UNSTARTED_TASK_REFUSED)) {
        scan.refusedTasks.push({ workflowId: run.workflowId, runId: run.runId, eventId: String(event.eventId ?? '') });
      }
      for (const [path, bytes] of payloadsIn(event, '')) {
        scan.payloads += 1;
        const sighting = {
          workflowId: run.workflowId,
          runId: run.runId,
          eventId: String(event.eventId ?? ''),
          eventType,
          path,
          bytes,
        };
        if (!scan.largest || bytes > scan.largest.bytes) scan.largest = sighting;
        if (bytes > limitBytes) scan.over.push(sighting);
      }
    }
  }
  return scan;
}
