/**
 * The first pass over one slice of a sync's targets: plan (validation and batching, in a local
 * activity that reads the slice), then send. Runs inside the sync for a single slice, or as a
 * child workflow per slice when the sync fans out, so no run's history grows with the catalog.
 */
import { ActivityFailure, ApplicationFailure, proxyLocalActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/index.ts';
import {
  FailureType,
  NON_RETRYABLE_PROVIDER_FAILURES,
  resolveOptions,
  toRanges,
  type ProviderCall,
  type SliceRef,
  type SyncOptions,
  type TargetSource,
  type Warning,
} from '../contracts/index.ts';
import { newLedger, receive, settle, type Entry, type Ledger } from './ledger.ts';
import { createSender } from './sender.ts';
import { condition } from '@temporalio/workflow';

export interface SliceInput {
  provider: string;
  /** Inline: this slice's targets only. A reference: the whole source, read by slice. */
  source: TargetSource;
  slice: SliceRef;
  options?: SyncOptions;
}

export interface SliceResult {
  accepted: number;
  /** Every target of the slice that was not accepted, by sequence number. */
  entries: Record<string, Entry>;
  warnings: Warning[];
  calls: ProviderCall[];
  abortReason?: string;
}

/** Runs the slice's first pass into `ledger`; returns why the sync must end, if it must. */
export async function runSlice(input: SliceInput, ledger: Ledger): Promise<string | undefined> {
  const opts = resolveOptions(input.options ?? {});
  const { slice, source } = input;
  const { planSlice } = proxyLocalActivities<SyncActivities>({
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_PROVIDER_FAILURES },
  });
  receive(ledger, slice.firstSeq, source.kind === 'inline' ? source.targets : slice.count);
  const seqs = Array.from({ length: slice.count }, (_, i) => slice.firstSeq + i);
  let plan;
  try {
    plan = await planSlice({
      provider: input.provider,
      source,
      slice,
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
    });
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const message = cause instanceof Error ? cause.message : String(err);
    const type = cause instanceof ApplicationFailure && cause.type ? cause.type : FailureType.SyncAborted;
    for (const seq of seqs) settle(ledger, seq, 'failed', { code: type, message: `not sent: ${message}` });
    return message;
  }
  for (const r of plan.rejections) {
    settle(ledger, r.seq, 'rejected', {
      code: r.code,
      message: r.message,
      origin: 'validation',
      ...(r.target !== undefined ? { target: r.target } : {}),
      ...(r.line !== undefined ? { line: r.line } : {}),
    });
  }
  let batchNumber = 0;
  const sender = createSender({
    provider: input.provider,
    options: opts,
    ledger,
    nextBatchNumber: () => (batchNumber += 1),
    ...(source.kind === 'ref' ? { slice: slice.index } : {}),
    summary: (n, size) =>
      `${input.provider} batch ${n}/${plan.batches.length}${source.kind === 'ref' ? ` of slice ${slice.index}` : ''}, ${size} targets`,
    batchRef: (batch) =>
      source.kind === 'inline'
        ? { kind: 'inline', targets: batch.map((seq) => ledger.entries[seq]?.target) }
        : { kind: 'ref', ref: source.ref, slice, seqs: toRanges(batch) },
  });
  sender.enqueue(
    plan.batches.map((ranges) =>
      ranges.flatMap(([from, to]) => seqs.slice(from - slice.firstSeq, to - slice.firstSeq)),
    ),
  );
  await condition(sender.idle);
  return sender.abortReason();
}

/** Results stay well under Temporal's payload limit: past this, entries drop their echoes. */
const RESULT_BUDGET = 256 * 1024;

export async function syncSliceWorkflow(input: SliceInput): Promise<SliceResult> {
  const ledger = newLedger();
  const abortReason = await runSlice(input, ledger);
  let entries = ledger.entries;
  let warnings = ledger.warnings;
  if (JSON.stringify(entries).length + JSON.stringify(warnings).length > RESULT_BUDGET) {
    entries = {};
    for (const [seq, e] of Object.entries(ledger.entries)) {
      const slim: Entry = { state: e.state, resends: e.resends };
      if (e.code !== undefined) slim.code = e.code;
      if (e.message !== undefined) slim.message = e.message.slice(0, 100);
      if (e.origin !== undefined) slim.origin = e.origin;
      if (e.line !== undefined) slim.line = e.line;
      entries[seq] = slim;
    }
    warnings = warnings.map((w) => ({ id: w.id, message: w.message.slice(0, 60) }));
  }
  return {
    accepted: ledger.accepted,
    entries,
    warnings,
    calls: ledger.calls,
    ...(abortReason !== undefined ? { abortReason } : {}),
  };
}
