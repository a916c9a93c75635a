/**
 * Queries a sync or slice workflow, asking again when the worker that took the query refused to
 * answer it from a workflow task not yet started (workflows/activation-guard.ts): that refusal evicts
 * the run, and the next query is answered from the history.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { UNSTARTED_TASK_REFUSED } from '../contracts/index.ts';

/** Refusals are rare (a worker died during a query); a few more asks cover a second one. */
const ATTEMPTS = 4;
const PAUSE_MS = 200;

const refused = (err: unknown): boolean => err instanceof Error && err.message.includes(UNSTARTED_TASK_REFUSED);

export async function ask<Ret, Args extends unknown[]>(
  handle: WorkflowHandle,
  query: QueryDefinition<Ret, Args>,
  ...args: Args
): Promise<Ret> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.query(query, ...args);
    } catch (err) {
      if (attempt >= ATTEMPTS || !refused(err)) throw err;
      await sleep(PAUSE_MS * attempt);
    }
  }
}
