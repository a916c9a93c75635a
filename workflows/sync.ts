/**
 * The sync workflow: one per sync request. Plans the targets (validation and batching, in an
 * activity), sends the batches a few at a time, settles every target from the provider's answers,
 * then stays open for corrected re-submissions until nothing is left to fix, the window ends, or
 * the caller says finish. Deterministic: all I/O is in activities; time is Temporal's.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common/lib/time';
import type { BatchAnswer, SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  ResubmissionSchema,
  SyncOptionsSchema,
  finishSignal,
  resubmitSignal,
  providerTaskQueue,
  resolveOptions,
  resubmitUpdate,
  statusQuery,
  type ClosedReason,
  type ProviderFailureDetails,
  type Resubmission,
  type ResubmissionAnswer,
  type SyncInput,
  type SyncPhase,
  type SyncReport,
} from '../contracts/index.ts';
import {
  counts,
  listFailed,
  listRejected,
  listSuperseded,
  listWarnings,
  newLedger,
  settle,
  type Ledger,
} from './ledger.ts';
import { takeResubmission } from './resubmission.ts';

/** Failure types that end the whole sync: every further call would fail the same way. */
const ABORTING = new Set<string>([FailureType.ProviderAuthError, FailureType.ProviderNotConfigured]);

export async function syncWorkflow(input: SyncInput): Promise<SyncReport> {
  const parsedOptions = SyncOptionsSchema.safeParse(input.options ?? {});
  if (!parsedOptions.success) {
    throw ApplicationFailure.create({
      type: FailureType.InvalidSyncRequest,
      nonRetryable: true,
      message: `invalid sync options: ${parsedOptions.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    });
  }
  const opts = resolveOptions(parsedOptions.data);
  const { provider } = input;

  const { planTargets } = proxyLocalActivities<SyncActivities>({
    startToCloseTimeout: '1 minute',
    retry: {
      maximumAttempts: 3,
      nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES,
    },
  });
  // The retry policy of provider calls, declared against failure type names only.
  const { sendBatch } = proxyActivities<SyncActivities>({
    taskQueue: providerTaskQueue(workflowInfo().taskQueue, provider),
    startToCloseTimeout: '2 minutes',
    // A worker that dies mid-call is noticed here, and the batch is retried elsewhere.
    heartbeatTimeout: '10 seconds',
    retry: {
      initialInterval: opts.callInitialInterval,
      backoffCoefficient: 2,
      maximumInterval: opts.callMaximumInterval,
      maximumAttempts: opts.callAttempts,
      nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES,
    },
  });

  const ledger: Ledger = newLedger(input.targets);
  let phase: SyncPhase = 'validating';
  let firstPassSettled = false;
  let windowEndsAt: number | undefined;
  let closedReason: ClosedReason | undefined;
  let abortReason: string | undefined;
  let finishRequested = false;
  let closing = false;

  const report = (): SyncReport => ({
    workflowId: workflowInfo().workflowId,
    provider,
    phase,
    counts: counts(ledger),
    rejected: listRejected(ledger),
    failed: listFailed(ledger),
    warnings: listWarnings(ledger),
    superseded: listSuperseded(ledger),
    refused: ledger.refused,
    calls: ledger.calls,
    firstPassSettled,
    ...(windowEndsAt !== undefined ? { windowEndsAt: new Date(windowEndsAt).toISOString() } : {}),
    ...(closedReason !== undefined ? { closedReason } : {}),
    ...(abortReason !== undefined ? { abortReason } : {}),
  });

  // ---- Sending: a queue of batches, at most `concurrency` calls in flight. ----
  const queue: number[][] = [];
  let running = 0;
  let waitingResends = 0;
  let batchNumber = 0;
  const idle = () => queue.length === 0 && running === 0 && waitingResends === 0;

  const abort = (reason: string, code: string) => {
    if (abortReason !== undefined) return;
    abortReason = reason;
    for (const batch of queue.splice(0)) {
      for (const seq of batch) {
        const e = ledger.entries[seq];
        if (e) settle(e, 'failed', { code, message: `not sent: ${reason}` });
      }
    }
  };

  const enqueue = (batches: number[][]) => {
    if (abortReason !== undefined) {
      for (const seq of batches.flat()) {
        const e = ledger.entries[seq];
        if (e)
          settle(e, 'failed', {
            code: FailureType.SyncAborted,
            message: `not sent: ${abortReason}`,
          });
      }
      return;
    }
    queue.push(...batches);
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
    ledger.calls.push({
      batch: number,
      httpStatus: answer.httpStatus,
      targets: batch.length,
      ...(answer.requestId !== undefined ? { requestId: answer.requestId } : {}),
      ...(answer.providerWorkflowId !== undefined ? { providerWorkflowId: answer.providerWorkflowId } : {}),
    });
    const resend: number[] = [];
    batch.forEach((seq, i) => {
      const e = ledger.entries[seq];
      const o = answer.outcomes[i];
      if (!e) return;
      if (!o) {
        settle(e, 'failed', {
          code: 'not_in_answer',
          message: 'the provider answer had no outcome for this target',
        });
      } else if (o.state === 'accepted') {
        settle(e, 'accepted', o.warning !== undefined ? { warning: o.warning } : {});
      } else if (o.transient && e.resends < opts.transientResends) {
        e.resends += 1;
        resend.push(seq);
      } else if (o.transient) {
        settle(e, 'failed', {
          code: o.code,
          message: `${o.message} (still so after ${e.resends} re-sends)`,
        });
      } else {
        settle(e, 'rejected', {
          code: o.code,
          message: o.message,
          origin: 'provider',
        });
      }
    });
    if (resend.length > 0) {
      // Transient rejections go out again after a pause that grows with each re-send.
      const attempt = Math.max(...resend.map((s) => ledger.entries[s]?.resends ?? 1));
      waitingResends += 1;
      void sleep(msToNumber(opts.callInitialInterval) * 2 ** (attempt - 1)).then(() => {
        waitingResends -= 1;
        enqueue([resend]);
      });
    }
  };

  const sendOne = async (batch: number[]): Promise<void> => {
    batchNumber += 1;
    const number = batchNumber;
    try {
      const answer = await sendBatch({
        provider,
        batch: number,
        targets: batch.map((seq) => ledger.entries[seq]?.target),
      });
      applyAnswer(number, batch, answer);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      const type =
        cause instanceof ApplicationFailure
          ? (cause.type ?? 'ApplicationFailure')
          : ((cause as Error | undefined)?.name ?? 'Error');
      const details =
        cause instanceof ApplicationFailure ? (cause.details?.[0] as ProviderFailureDetails | undefined) : undefined;
      const message = (cause as Error | undefined)?.message ?? String(err);
      const entries = batch.map((seq) => ledger.entries[seq]).filter((e) => e !== undefined);
      if (ABORTING.has(type)) {
        for (const e of entries) settle(e, 'failed', { code: type, message });
        abort(message, type);
      } else if (type === FailureType.ProviderBatchTooLarge && batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        enqueue([batch.slice(0, half), batch.slice(half)]);
      } else if (type === FailureType.ProviderCallerError || type === FailureType.ProviderBatchTooLarge) {
        const code = details?.code ?? (details?.httpStatus !== undefined ? `http_${details.httpStatus}` : type);
        for (const e of entries) settle(e, 'rejected', { code, message, origin: 'provider' });
      } else {
        // Transient failures that outlived the retry policy, or timeouts.
        for (const e of entries) settle(e, 'failed', { code: type, message });
      }
    }
  };

  // ---- Re-submission, by signal or by update. ----
  const resubmit = async (resubmission: Resubmission): Promise<ResubmissionAnswer> => {
    if (closing) {
      const refused = resubmission.items.map((item, index) => ({
        index,
        code: 'sync_closed',
        message: 'the sync has closed its re-submission window; start a new sync',
        ...(item.fixes !== undefined ? { fixes: item.fixes } : {}),
      }));
      ledger.refused.push(...refused);
      return { taken: [], refused };
    }
    const plan = await planTargets({
      provider,
      targets: resubmission.items.map((item, seq) => ({
        seq,
        target: item.target,
      })),
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    });
    const { answer, batches } = takeResubmission(ledger, resubmission, plan);
    enqueue(batches);
    return answer;
  };

  setHandler(statusQuery, report);
  setHandler(finishSignal, () => {
    finishRequested = true;
  });
  setHandler(resubmitSignal, async (raw) => {
    const parsed = ResubmissionSchema.safeParse(raw);
    if (!parsed.success) {
      ledger.refused.push({
        index: -1,
        code: 'invalid_resubmission',
        message: parsed.error.issues.map((i) => i.message).join('; '),
      });
      return;
    }
    await resubmit(parsed.data);
  });
  setHandler(resubmitUpdate, resubmit, {
    // Rejected updates never enter history: the caller gets the reason at once.
    validator: (raw) => {
      ResubmissionSchema.parse(raw);
      if (closing) throw new Error('the sync has closed its re-submission window; start a new sync');
    },
  });

  // ---- First pass. ----
  try {
    const plan = await planTargets({
      provider,
      targets: input.targets.map((target, seq) => ({ seq, target })),
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    });
    for (const r of plan.rejections) {
      const e = ledger.entries[r.seq];
      if (e)
        settle(e, 'rejected', {
          code: r.code,
          message: r.message,
          origin: 'validation',
        });
    }
    for (const v of plan.valid) {
      const e = ledger.entries[v.seq];
      if (e) e.identity = v.identity;
    }
    phase = 'sending';
    enqueue(plan.batches);
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const message = cause instanceof Error ? cause.message : String(err);
    const type = cause instanceof ApplicationFailure && cause.type ? cause.type : FailureType.SyncAborted;
    for (const e of ledger.entries)
      if (e.state === 'pending') settle(e, 'failed', { code: type, message: `not sent: ${message}` });
    abortReason = message;
  }
  await condition(idle);
  firstPassSettled = true;

  // ---- Open for re-submission. ----
  const nothingToFix = () => ledger.entries.every((e) => e.state !== 'rejected' && e.state !== 'failed');
  if (abortReason === undefined) {
    phase = 'open';
    windowEndsAt = Date.now() + msToNumber(opts.resubmissionWindow); // Temporal's clock in workflows
    for (;;) {
      if (abortReason !== undefined) break;
      if (finishRequested) {
        closedReason = 'finished';
        break;
      }
      if (idle() && nothingToFix()) {
        closedReason = 'nothing-to-fix';
        break;
      }
      const remaining = windowEndsAt - Date.now();
      if (remaining <= 0) {
        closedReason = 'window-ended';
        break;
      }
      await condition(() => finishRequested || abortReason !== undefined || (idle() && nothingToFix()), remaining);
    }
  }
  closing = true;
  await condition(() => idle() && allHandlersFinished());
  phase = 'closed';

  if (abortReason !== undefined) {
    closedReason = 'aborted';
    throw ApplicationFailure.create({
      type: FailureType.SyncAborted,
      nonRetryable: true,
      message: abortReason,
      details: [report()],
    });
  }
  return report();
}
