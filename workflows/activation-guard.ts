/**
 * Refuses an activation that applies events no workflow task has started.
 *
 * A query dispatched while no workflow task is pending, answered by a worker that reads the history
 * a moment later (after waiting on a dead worker's sticky queue, up to its 10 s), can get events
 * that arrived in between: an activity's answer, then a WorkflowTaskScheduled never started. The
 * SDK's core applies them to answer the query, and keeps the run cached in that state. The next
 * workflow task, which carries those events and the ones after, then reacts to them in two
 * activations where every replay reacts in one, so whatever a sync emits once per wake (a search
 * attribute upsert, a progress timer) differs from any replay: the history stops replaying.
 * test/activation-guard.test.ts reproduces it through the real server.
 *
 * Such an activation is the only one whose history length moves while workflow time stands still:
 * time moves with each WorkflowTaskStarted event, and these events have none. Failing it makes
 * the SDK evict the run and fail that one query (the client asks again, docs/reliability.md); the
 * workflow task that follows replays from the history, as a replay would.
 */
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { UNSTARTED_TASK_REFUSED } from '../contracts/index.ts';

interface Seen {
  historyLength: number;
  time: string;
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  let last: Seen | undefined;
  // A local activity's answer moves workflow time to the worker's clock; a worker clock ahead of
  // the server's can hold time there past the next task's start. No refusal while time is there.
  let localAnswerTime: string | undefined;
  return {
    internals: [
      {
        activate(input, next) {
          const { activation, batchIndex } = input;
          const jobs = activation.jobs ?? [];
          // Queries change nothing; a second batch is the same activation.
          if (batchIndex === 0 && jobs.some((j) => j.queryWorkflow == null)) {
            const ts = activation.timestamp;
            const seen: Seen = {
              historyLength: activation.historyLength ?? 0,
              time: ts ? `${String(ts.seconds ?? 0)}.${ts.nanos ?? 0}` : '',
            };
            const split =
              !activation.isReplaying &&
              last !== undefined &&
              seen.historyLength !== last.historyLength &&
              seen.time === last.time &&
              seen.time !== localAnswerTime;
            last = seen;
            if (jobs.some((j) => j.resolveActivity?.isLocal === true)) localAnswerTime = seen.time;
            if (split) {
              throw new Error(
                `${UNSTARTED_TASK_REFUSED}: events up to ${seen.historyLength} belong to a workflow task not yet ` +
                  'started; the run is evicted and replays from its history',
              );
            }
          }
          next(input);
        },
      },
    ],
  };
};
