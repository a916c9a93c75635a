/**
 * The client's query: a refusal by workflows/activation-guard.ts is asked again (the refusing worker
 * evicted the run, so the next answer comes from the history); any other failure is the caller's.
 * test/activation-guard.test.ts makes a real refusal through the server.
 */
import { QueryNotRegisteredError, type WorkflowHandle } from '@temporalio/client';
import { defineQuery } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { ask } from '../client/ask.ts';
import { UNSTARTED_TASK_REFUSED } from '../contracts/index.ts';

const countQuery = defineQuery<number, [number]>('count');

/** A handle whose query fails with `failures` in turn, then answers its argument. */
function handleFailing(failures: Error[]): { handle: WorkflowHandle; asked: () => number } {
  let asked = 0;
  const handle = {
    query: (_q: unknown, n: number) => {
      asked += 1;
      const failure = failures.shift();
      return failure ? Promise.reject(failure) : Promise.resolve(n);
    },
  } as unknown as WorkflowHandle;
  return { handle, asked: () => asked };
}

const refusal = () => new QueryNotRegisteredError(`${UNSTARTED_TASK_REFUSED}: events up to 61 ...`, 3);

describe('ask', () => {
  it('asks again after a refusal, and answers', async () => {
    const { handle, asked } = handleFailing([refusal(), refusal()]);
    await expect(ask(handle, countQuery, 7)).resolves.toBe(7);
    expect(asked()).toBe(3);
  });

  it('gives up after four refusals, with the last one', async () => {
    const { handle, asked } = handleFailing([refusal(), refusal(), refusal(), refusal(), refusal()]);
    await expect(ask(handle, countQuery, 7)).rejects.toThrow(UNSTARTED_TASK_REFUSED);
    expect(asked()).toBe(4);
  });

  it('does not ask again after any other failure', async () => {
    const { handle, asked } = handleFailing([new Error('Workflow not found')]);
    await expect(ask(handle, countQuery, 7)).rejects.toThrow('Workflow not found');
    expect(asked()).toBe(1);
  });
});
