/**
 * The sync's activities, built by a factory so the worker passes its environment and tests pass
 * an undici dispatcher. Credentials are read here, in the worker, and never cross into workflows.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import { FailureType } from '../contracts/errors.ts';
import { planTargets, type Plan, type SequencedTarget } from './plan.ts';
import type { AnyProviderAdapter, BatchAnswer } from './providers/adapter.ts';
import { providerAdapter, providerNames } from './providers/index.ts';

export type { Plan, PlannedRejection, SequencedTarget } from './plan.ts';
export type { BatchAnswer, TargetOutcome } from './providers/adapter.ts';

const HEARTBEAT_EVERY_MS = 1_000;

export interface ActivityDeps {
  /** Where provider configuration and credentials come from; the worker passes process.env. */
  env: NodeJS.ProcessEnv;
  /** Tests inject one (a MockAgent or a pool with small timeouts); production uses undici's global. */
  dispatcher?: Dispatcher;
  /** Per-request timeout for provider calls, in milliseconds. */
  requestTimeoutMs?: number;
}

export interface PlanInput {
  provider: string;
  targets: SequencedTarget[];
  batchSize?: number;
}

export interface SendBatchInput {
  provider: string;
  /** The batch's number in the sync, for activity summaries and the report. */
  batch: number;
  targets: unknown[];
}

function adapterOrFail(provider: string): AnyProviderAdapter {
  const adapter = providerAdapter(provider);
  if (!adapter) {
    throw ApplicationFailure.create({
      type: FailureType.ProviderNotConfigured,
      nonRetryable: true,
      message: `unknown provider "${provider}"; use one of: ${providerNames().join(', ')}`,
    });
  }
  return adapter;
}

export function createActivities(deps: ActivityDeps) {
  const timeoutMs = deps.requestTimeoutMs ?? 30_000;
  const configs = new Map<string, unknown>();

  function configFor(adapter: AnyProviderAdapter): unknown {
    if (configs.has(adapter.name)) return configs.get(adapter.name);
    const read = adapter.configFromEnv(deps.env);
    if ('missing' in read) {
      throw ApplicationFailure.create({
        type: FailureType.ProviderNotConfigured,
        message: `the worker has no ${adapter.title} configuration: ${read.missing.join(', ')} is not set; ${read.hint}`,
        details: [
          {
            provider: adapter.name,
            message: `missing ${read.missing.join(', ')}`,
          },
        ],
      });
    }
    configs.set(adapter.name, read.config);
    return read.config;
  }

  return {
    async planTargets(input: PlanInput): Promise<Plan> {
      const adapter = adapterOrFail(input.provider);
      // Fails before any call when this worker cannot reach the provider at all.
      const config = configFor(adapter);
      return planTargets(adapter, adapter.limits(config), input.targets, input.batchSize);
    },

    async sendBatch(input: SendBatchInput): Promise<BatchAnswer> {
      const adapter = adapterOrFail(input.provider);
      const config = configFor(adapter);
      // Targets were validated when planned; parse again so the adapter gets its typed form.
      const targets = input.targets.map((t) => adapter.targetSchema.parse(t));
      const ctx = Context.current();
      // Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the call's.
      const heartbeat = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      let answer: BatchAnswer;
      try {
        answer = await adapter.send(targets, {
          config,
          dispatcher: deps.dispatcher,
          timeoutMs,
          signal: ctx.cancellationSignal,
        });
      } finally {
        clearInterval(heartbeat);
      }
      // Mark the rejections the workflow may re-send by itself; it knows no provider's codes.
      const transient = new Set(adapter.transientRejectionCodes);
      for (const o of answer.outcomes) if (o.state === 'rejected' && transient.has(o.code)) o.transient = true;
      return answer;
    },
  };
}

export type SyncActivities = ReturnType<typeof createActivities>;
