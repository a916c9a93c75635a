/**
 * The worker's spool sweep: at start and then periodically, spooled files older than
 * CATALOG_SYNC_SPOOL_RETENTION whose workflow Temporal no longer lists as running are deleted
 * (spool.ts explains how a file is tied to its workflow). A sweep that cannot ask Temporal deletes
 * nothing and tries again at the next tick.
 */
import type { Client } from '@temporalio/client';
import { spoolRetentionMs, sweepSpool, type SweepResult } from './spool.ts';

/** IDs of the namespace's running workflows (the sweep keeps their files). */
export async function runningWorkflowIds(client: Client): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) ids.push(wf.workflowId);
  return ids;
}

export interface SpoolSweeper {
  /** Runs one sweep now (also what the timer runs). */
  sweep(): Promise<SweepResult | undefined>;
  stop(): void;
}

/** How often the sweep runs: a quarter of the retention, between a minute and an hour. */
export const sweepEveryMs = (retentionMs: number): number => Math.min(3_600_000, Math.max(60_000, retentionMs / 4));

export function startSpoolSweeper(opts: {
  env: NodeJS.ProcessEnv;
  client: Client;
  warn: (message: string, meta: Record<string, unknown>) => void;
}): SpoolSweeper {
  const retention = spoolRetentionMs(opts.env); // a malformed setting stops the worker at start
  let running: Promise<SweepResult | undefined> | undefined;
  const sweep = () =>
    (running ??= sweepSpool({ env: opts.env, runningWorkflowIds: () => runningWorkflowIds(opts.client) })
      .catch((err: unknown) => {
        opts.warn('spool sweep skipped: nothing deleted', { error: (err as Error).message });
        return undefined;
      })
      .finally(() => {
        running = undefined;
      }));
  void sweep();
  const timer = setInterval(() => void sweep(), sweepEveryMs(retention));
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
