/**
 * The last successful run of a schedule: where a change-feed run starts reading (the cursor of
 * the newest run that completed). Read by the feed activity; the client re-exports it.
 */
import {
  ScheduleNotFoundError,
  WorkflowNotFoundError,
  type Client,
  type ScheduleExecutionResult,
} from '@temporalio/client';
import type { ScheduledSyncInput, ScheduledSyncResult } from '../contracts/scheduled.ts';

export interface SuccessfulRun {
  workflowId: string;
  runId: string;
  result: ScheduledSyncResult;
}

const RESULT_LOOKUPS = 50;

/**
 * The newest run of the schedule that completed (failed, cancelled and running ones are passed
 * over) and carries a cursor. The schedule's recent actions are read first, each run described
 * directly (no visibility lag right after a run closed); past those, visibility is asked for
 * `TemporalScheduledById = <id> AND ExecutionStatus = 'Completed'`, newest close time first.
 */
export async function lastSuccessfulRun(
  client: Client,
  scheduleId: string,
  /** `exclude`: the run ID of the asking run (runs triggered in the same second share a workflow ID). */
  opts: { exclude?: string } = {},
): Promise<SuccessfulRun | undefined> {
  const seen = new Set<string>();
  const completed = async (workflowId: string, runId: string): Promise<SuccessfulRun | undefined> => {
    seen.add(runId);
    const handle = client.workflow.getHandle<(input: ScheduledSyncInput) => Promise<ScheduledSyncResult>>(
      workflowId,
      runId,
    );
    const result = await handle.result();
    return result?.cursor !== undefined ? { workflowId, runId, result } : undefined;
  };

  let recent: ScheduleExecutionResult[] = [];
  try {
    recent = (await client.schedule.getHandle(scheduleId).describe()).info.recentActions;
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  for (const action of [...recent].reverse()) {
    const { workflowId, firstExecutionRunId: runId } = action.action.workflow;
    if (runId === opts.exclude) continue;
    try {
      const { status } = await client.workflow.getHandle(workflowId, runId).describe();
      if (status.name !== 'COMPLETED') continue;
      const found = await completed(workflowId, runId);
      if (found) return found;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  const query = `TemporalScheduledById = '${scheduleId.replace(/['\\]/g, '\\$&')}' AND ExecutionStatus = 'Completed'`;
  const candidates: { workflowId: string; runId: string; closedAt: number }[] = [];
  for await (const w of client.workflow.list({ query, pageSize: RESULT_LOOKUPS })) {
    if (w.runId !== opts.exclude && !seen.has(w.runId)) {
      candidates.push({ workflowId: w.workflowId, runId: w.runId, closedAt: w.closeTime?.getTime() ?? 0 });
    }
    // Visibility answers newest close time first: the first page holds the one we want.
    if (candidates.length >= RESULT_LOOKUPS) break;
  }
  candidates.sort((a, b) => b.closedAt - a.closedAt);
  for (const c of candidates) {
    try {
      const found = await completed(c.workflowId, c.runId);
      if (found) return found;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return undefined;
}
