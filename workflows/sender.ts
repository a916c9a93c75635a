/**
 * Sending batches: a queue with at most `concurrency` provider calls in flight, each answer
 * settled into the ledger, transient rejections re-sent (bounded), batches the provider finds too
 * large split, and failures that end the whole sync turned into an abort.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { BatchAnswer, SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  batchRejectionCode,
  providerFailureOutcome,
  providerTaskQueue,
  syncPriority,
  type BatchRef,
  type ProviderCall,
  type ProviderFailureDetails,
  type ResolvedOptions,
} from '../contracts/index.ts';
import { addCalls, settle, type Ledger } from './ledger.ts';

export interface SenderSpec {
  provider: string;
  options: ResolvedOptions;
  ledger: Ledger;
  /** How a batch of sequence numbers is carried to the activity: inline targets or a reference. */
  batchRef(seqs: number[]): BatchRef;
  /** Numbers batches within the sync or slice; `slice` marks the calls of a slice's batches. */
  nextBatchNumber(): number;
  slice?: number;
  /** The activity summary operators see in the UI ("batch 3/12, 500 targets"). */
  summary(batchNumber: number, size: number): string;
}

export interface Sender {
  enqueue(batches: number[][]): void;
  idle(): boolean;
  /** Set once a failure ended the sync: nothing more is sent. */
  abortReason(): string | undefined;
}

/**
 * The priority every provider call of this workflow carries: the sync's priority key (its option,
 * else the priority the workflow was started with, else the default) and the sync's fairness key
 * (its workflow ID; a slice or other child of the sync uses its parent's). Any activity that calls
 * a provider passes this as its `priority`.
 */
export function providerCallPriority(options: ResolvedOptions) {
  const info = workflowInfo();
  const syncId = info.workflowType === 'syncWorkflow' ? info.workflowId : (info.parent?.workflowId ?? info.workflowId);
  return syncPriority(syncId, options.priorityKey ?? (info.priority?.priorityKey || undefined));
}

/** The provider-call activity, its retry policy declared against failure type names only. */
function providerCalls(provider: string, opts: ResolvedOptions) {
  return proxyActivities<SyncActivities>({
    taskQueue: providerTaskQueue(workflowInfo().taskQueue, provider),
    startToCloseTimeout: '2 minutes',
    // A worker that dies mid-call is noticed here, and the batch is retried elsewhere.
    heartbeatTimeout: '10 seconds',
    // A small or urgent sync is not queued behind a whole catalog's backlog (task-queue fairness).
    priority: providerCallPriority(opts),
    retry: {
      initialInterval: opts.callInitialInterval,
      backoffCoefficient: 2,
      maximumInterval: opts.callMaximumInterval,
      maximumAttempts: opts.callAttempts,
      nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES,
    },
  }).sendBatch;
}

/** The call as the report keeps it, for tracing with the provider's support. */
const callOf = (slice: number | undefined, batch: number, answer: BatchAnswer, targets: number): ProviderCall => ({
  ...(slice !== undefined ? { slice } : {}),
  batch,
  httpStatus: answer.httpStatus,
  targets,
  ...(answer.requestId !== undefined ? { requestId: answer.requestId } : {}),
  ...(answer.providerWorkflowId !== undefined ? { providerWorkflowId: answer.providerWorkflowId } : {}),
});

/**
 * Each answered target into the ledger: accepted (with its warning), rejected, or failed once its
 * transient re-sends ran out. Returns the targets to re-send.
 */
function settleOutcomes(ledger: Ledger, seqs: number[], answer: BatchAnswer, transientResends: number): number[] {
  const resend: number[] = [];
  seqs.forEach((seq, i) => {
    const e = ledger.entries[seq];
    const o = answer.outcomes[i];
    if (!e) return;
    const named = {
      ...(o?.identity !== undefined ? { identity: o.identity } : {}),
      ...(o?.line !== undefined ? { line: o.line } : {}),
    };
    if (!o) {
      settle(ledger, seq, 'failed', {
        code: 'not_in_answer',
        message: 'the provider answer had no outcome for this target',
      });
    } else if (o.state === 'accepted') {
      settle(ledger, seq, 'accepted', o.warning !== undefined ? { warning: o.warning, ...named } : {});
    } else if (o.transient && e.resends < transientResends) {
      e.resends += 1;
      // Kept while re-sent: a re-send that fails as a whole still names its item and line.
      if (o.identity !== undefined) e.identity = o.identity;
      if (o.line !== undefined) e.line = o.line;
      resend.push(seq);
    } else {
      settle(ledger, seq, o.transient ? 'failed' : 'rejected', {
        code: o.code,
        message: o.transient ? `${o.message} (still so after ${e.resends} re-sends)` : o.message,
        origin: 'provider',
        ...(o.target !== undefined ? { target: o.target } : {}),
        ...named,
      });
    }
  });
  return resend;
}

/** A failed call's type, details and message, from the activity failure's cause. */
function failureOf(err: unknown): { type: string; details: ProviderFailureDetails | undefined; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const failure = cause instanceof ApplicationFailure ? cause : undefined;
  return {
    type: failure ? (failure.type ?? 'ApplicationFailure') : ((cause as Error | undefined)?.name ?? 'Error'),
    details: failure?.details?.[0] as ProviderFailureDetails | undefined,
    message: (cause as Error | undefined)?.message ?? String(err),
  };
}

export function createSender(spec: SenderSpec): Sender {
  const { ledger, options: opts, provider } = spec;
  const sendBatch = providerCalls(provider, opts);
  const queue: number[][] = [];
  let running = 0;
  let waitingResends = 0;
  let abortReason: string | undefined;

  const failAll = (seqs: number[], code: string, message: string) => {
    for (const seq of seqs) settle(ledger, seq, 'failed', { code, message });
  };
  const abort = (reason: string, code: string) => {
    if (abortReason !== undefined) return;
    abortReason = reason;
    for (const batch of queue.splice(0)) failAll(batch, code, `not sent: ${reason}`);
  };
  const enqueue = (batches: number[][]) => {
    if (abortReason !== undefined) {
      failAll(batches.flat(), FailureType.SyncAborted, `not sent: ${abortReason}`);
      return;
    }
    queue.push(...batches.filter((b) => b.length > 0));
    pump();
  };
  const pump = () => {
    while (running < opts.concurrency && queue.length > 0 && abortReason === undefined) {
      const batch = queue.shift();
      if (!batch) break;
      running += 1;
      void sendOne(batch).finally(() => {
        running -= 1;
        pump();
      });
    }
  };
  const applyAnswer = (number: number, batch: number[], answer: BatchAnswer) => {
    // A budgeted provider's one call may carry only the account's learned size: the rest goes again.
    const sent = batch.length - Math.max(0, Math.min(batch.length, answer.unsent ?? 0));
    if (sent < batch.length) enqueue([batch.slice(sent)]);
    if (sent === 0) return;
    addCalls(ledger, [callOf(spec.slice, number, answer, sent)]);
    const resend = settleOutcomes(ledger, batch.slice(0, sent), answer, opts.transientResends);
    if (resend.length === 0) return;
    // Transient rejections go out again after a pause that grows with each re-send.
    const attempt = Math.max(...resend.map((s) => ledger.entries[s]?.resends ?? 1));
    waitingResends += 1;
    void sleep(msToNumber(opts.callInitialInterval) * 2 ** (attempt - 1)).then(() => {
      waitingResends -= 1;
      enqueue([resend]);
    });
  };
  const sendOne = async (batch: number[]): Promise<void> => {
    const number = spec.nextBatchNumber();
    try {
      const answer = await sendBatch.executeWithOptions({ summary: spec.summary(number, batch.length) }, [
        {
          provider,
          batch: number,
          ...(spec.slice !== undefined ? { slice: spec.slice } : {}),
          targets: spec.batchRef(batch),
        },
      ]);
      applyAnswer(number, batch, answer);
    } catch (err) {
      const { type, details, message } = failureOf(err);
      const outcome = providerFailureOutcome(type, batch.length);
      if (outcome === 'abort') {
        failAll(batch, type, message);
        abort(message, type);
      } else if (outcome === 'split') {
        const half = Math.ceil(batch.length / 2);
        enqueue([batch.slice(0, half), batch.slice(half)]);
      } else if (outcome === 'reject') {
        const code = batchRejectionCode(type, details);
        for (const seq of batch) settle(ledger, seq, 'rejected', { code, message, origin: 'provider' });
      } else {
        failAll(batch, type, message); // transient failures that outlived the retry policy, or timeouts
      }
    }
  };
  return {
    enqueue,
    idle: () => queue.length === 0 && running === 0 && waitingResends === 0,
    abortReason: () => abortReason,
  };
}
