/**
 * The client side of the provider-account governor (workflows/governor.ts). Activities read its
 * advice (cached in process for `cacheMs`, and replaced at once by the answer of every report they
 * make), wait out the account's pause before a call, cut a batch to the learned working size, and
 * report what the provider answered. When the governor cannot be reached, calls go on as before
 * and the workflow's split stays the fallback.
 */
import { createHash, randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  governorProbeUpdate,
  governorReportUpdate,
  governorStatusQuery,
  GOVERNOR_WORKFLOW_TYPE,
  governorWorkflowId,
  initialGovernorState,
  type GovernorWorkflow,
  type GovernorAdvice,
  type GovernorReport,
  type GovernorStatus,
} from '../contracts/governor.ts';

export type { GovernorAdvice, GovernorReport, GovernorStatus } from '../contracts/governor.ts';

/** A provider account as the governor knows it: its provider and a digest of who it is. */
export interface GovernorAccount {
  provider: string;
  /** Hex digest of the account's identity (base URL and credentials), never the credentials. */
  hash: string;
}

export interface Governor {
  workflowId(account: GovernorAccount): string;
  advice(account: GovernorAccount, fresh?: boolean): Promise<GovernorAdvice>;
  report(account: GovernorAccount, report: GovernorReport): Promise<GovernorAdvice>;
  probe(account: GovernorAccount, holder: string): Promise<{ granted: boolean; advice: GovernorAdvice }>;
  status(account: GovernorAccount): Promise<GovernorStatus | undefined>;
}

export interface GovernorOptions {
  client: Client;
  /** The workflow task queue the governor workflows run on (the worker's own). */
  taskQueue: string;
  /** How long an answer is reused in process, in ms (default 1,000). */
  cacheMs?: number;
  /** How long a question to the governor may take before calls go on without it (default 5,000 ms). */
  timeoutMs?: number;
}

const NOTHING_LEARNED: GovernorAdvice = { okRecords: 0, pausedUntil: 0 };

/**
 * The account of a provider configuration: its string settings (base URL, names, keys) digested,
 * with the task queue, so workers of one deployment share a governor and nothing secret is named.
 */
export function governorAccount(provider: string, config: unknown, taskQueue: string): GovernorAccount {
  const strings = Object.entries((config ?? {}) as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'string')
    .sort(([a], [b]) => a.localeCompare(b));
  const hash = createHash('sha256')
    .update(JSON.stringify([provider, taskQueue, strings]))
    .digest('hex')
    .slice(0, 20);
  return { provider, hash };
}

export function createGovernor(opts: GovernorOptions): Governor {
  const cacheMs = opts.cacheMs ?? 1_000;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const cache = new Map<string, { advice: GovernorAdvice; at: number }>();
  const id = (a: GovernorAccount) => governorWorkflowId(a.provider, a.hash);
  const remember = (a: GovernorAccount, advice: GovernorAdvice): GovernorAdvice => {
    const known = cache.get(id(a))?.advice;
    // A pause seen locally is never shortened by an answer that crossed it.
    const pausedUntil = Math.max(advice.pausedUntil, known?.pausedUntil ?? 0);
    const merged = { ...advice, pausedUntil };
    cache.set(id(a), { advice: merged, at: Date.now() });
    return merged;
  };
  const within = <T>(fn: () => Promise<T>): Promise<T> =>
    opts.client.withDeadline(new Date(Date.now() + timeoutMs), fn);
  const startOp = (a: GovernorAccount) =>
    new WithStartWorkflowOperation<GovernorWorkflow>(GOVERNOR_WORKFLOW_TYPE, {
      workflowId: id(a),
      taskQueue: opts.taskQueue,
      args: [initialGovernorState(a.provider)],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });

  return {
    workflowId: id,
    async advice(a, fresh = false) {
      const hit = cache.get(id(a));
      if (hit && !fresh && Date.now() - hit.at < cacheMs) return hit.advice;
      try {
        const status = await within(() => opts.client.workflow.getHandle(id(a)).query(governorStatusQuery));
        return remember(a, status);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return remember(a, NOTHING_LEARNED);
        throw err;
      }
    },
    async report(a, report) {
      if (report.kind === 'rate' && report.until !== undefined) {
        // Every call of this process holds back at once, before the governor has even heard.
        const known = cache.get(id(a));
        const advice = known?.advice ?? NOTHING_LEARNED;
        cache.set(id(a), {
          advice: { ...advice, pausedUntil: Math.max(advice.pausedUntil, report.until) },
          at: known?.at ?? 0,
        });
      }
      const advice = await within(() =>
        opts.client.workflow.executeUpdateWithStart(governorReportUpdate, {
          args: [report],
          startWorkflowOperation: startOp(a),
        }),
      );
      return remember(a, advice);
    },
    async probe(a, holder) {
      const answer = await within(() =>
        opts.client.workflow.executeUpdateWithStart(governorProbeUpdate, {
          args: [{ holder }],
          startWorkflowOperation: startOp(a),
        }),
      );
      return { granted: answer.granted, advice: remember(a, answer.advice) };
    },
    async status(a) {
      try {
        return await within(() => opts.client.workflow.getHandle(id(a)).query(governorStatusQuery));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },
  };
}

/** A fresh name for whoever asks for the probe (one activity attempt). */
export const probeHolder = (who: string): string => `${who}/${randomUUID().slice(0, 8)}`;

/** Compact JSON bytes of each target, and of a call carrying the first `n` of them. */
export function callBytes(sizes: number[], n: number): number {
  let sum = 2 + Math.max(0, n - 1);
  for (let i = 0; i < n; i += 1) sum += sizes[i] ?? 0;
  return sum;
}

export interface CallPlan {
  records: number;
  /** Set when this call is the account's probe: its answer must be reported with this holder. */
  holder?: string;
}

/**
 * How many of the next `remaining` targets the next call carries, once the account's pause is
 * over. Sizes up to what is known to work go at once; a larger one is a probe, one at a time.
 */
export async function planCall(
  gov: Governor,
  account: GovernorAccount,
  remaining: number[] | { count: number; sizes: () => number[] },
  holder: string,
  waitMs: (ms: number) => Promise<void>,
): Promise<CallPlan> {
  // Sizes are measured only when the account has a learned byte limit (JSON.stringify per target).
  const count = Array.isArray(remaining) ? remaining.length : remaining.count;
  const sizesOf = Array.isArray(remaining) ? () => remaining : remaining.sizes;
  let fresh = false;
  for (;;) {
    const adv = await gov.advice(account, fresh);
    const wait = adv.pausedUntil - Date.now();
    if (wait > 0) {
      await waitMs(Math.min(wait, 1_000));
      continue;
    }
    let size = count;
    if (adv.tooLargeRecords !== undefined) size = Math.min(size, adv.tooLargeRecords - 1);
    if (adv.maxBytes !== undefined) {
      const sizes = sizesOf();
      while (size > 1 && callBytes(sizes, size) > adv.maxBytes) size -= 1;
    }
    size = Math.max(1, size);
    if (adv.tooLargeRecords === undefined || size <= adv.okRecords) return { records: size };
    if (adv.probeRecords !== undefined) {
      const answer = await gov.probe(account, holder);
      if (answer.granted && answer.advice.probeRecords !== undefined) {
        return { records: Math.max(1, Math.min(size, answer.advice.probeRecords)), holder };
      }
    }
    if (adv.okRecords > 0) return { records: Math.min(size, adv.okRecords) };
    // Nothing is known to work yet and someone else is probing: wait for the answer.
    await waitMs(250);
    fresh = true;
  }
}
