/**
 * The provider seam. A provider is one module exporting a ProviderAdapter (its target schema,
 * batch limits, request, answer mapping and error classification) plus its simulator. The
 * workflow, client, CLI and report never look inside a target: they speak in sequence numbers,
 * identities and outcomes.
 */
import type { Dispatcher } from 'undici';
import type { z } from 'zod';

/** The answer for one target of a batch, aligned with the batch's order. */
export type TargetOutcome =
  | {
      state: 'accepted';
      warning?: string;
      /** Filled in by the activity layer for a warned target: whom the warning names, and its line. */
      identity?: string;
      line?: number;
    }
  | {
      state: 'rejected';
      code: string;
      message: string;
      transient?: boolean;
      /** Filled in by the activity layer: what re-submissions match, and the target as read. */
      identity?: string;
      target?: unknown;
      line?: number;
    };

/** A provider call that got an answer (2xx, or a documented "all rejected" answer). */
export interface BatchAnswer {
  httpStatus: number;
  requestId?: string;
  providerWorkflowId?: string;
  outcomes: TargetOutcome[];
  /**
   * Trailing targets not sent at all (a budgeted provider's one call carried only the learned
   * working size): the workflow sends them again in a later call. Outcomes cover the rest.
   */
  unsent?: number;
}

export interface BatchLimits {
  /** Most targets a single call may carry. */
  maxTargets: number;
  /** Most bytes of JSON a single call may carry, when the provider caps request size. */
  maxBytes?: number;
  /** Most bytes of JSON one target may take; a larger one is rejected, never sent. */
  maxTargetBytes?: number;
}

export interface SendContext<Config> {
  config: Config;
  dispatcher: Dispatcher | undefined;
  /** Per-request timeout (headers and body), in milliseconds. */
  timeoutMs: number;
  /** Cancelled when the activity is cancelled or times out. */
  signal: AbortSignal;
}

export interface ProviderAdapter<Target = unknown, Config = unknown> {
  name: string;
  /** Human name for messages ("Octogen"). */
  title: string;
  /** Validates one target; error messages must name the field and the fix. */
  targetSchema: z.ZodType<Target>;
  /** Batch limits; some are settings of the provider account, so they come from its config. */
  limits(config: Config): BatchLimits;
  /**
   * The provider's documented maximums, known without any configuration: what the client checks
   * before anything starts (a batch size over `maxTargets` is refused, never lowered in silence).
   */
  documentedLimits: BatchLimits;
  /**
   * The account's request budget, when the provider has one. The worker declares it as the rate
   * limit of the provider's activity task queue, which Temporal enforces across every sync and worker.
   */
  budget?(config: Config): { requestsPerMinute: number } | undefined;
  /** Targets with different group keys never share a batch (Octogen: the pinned catalog). */
  groupKey(target: Target): string;
  /** What identifies the product to the provider: matches answers and re-submissions to targets. */
  identity(target: Target): string;
  /**
   * What a changed-only sync compares with the item's last accepted payload (docs/state.md): by
   * default the target itself; `undefined` when the target carries nothing to compare (it is then
   * never found unchanged). Octogen: the source record's `version` or `etag`.
   */
  diffContent?(target: Target): unknown;
  /** Per-target rejection codes that mean "try again later": re-sent automatically, bounded. */
  transientRejectionCodes: readonly string[];
  /**
   * Reads the provider's configuration (base URL, credentials) from the worker's environment.
   * Returns the names of missing variables instead of throwing, so the worker can say them all.
   */
  configFromEnv(env: NodeJS.ProcessEnv): { config: Config } | { missing: string[]; hint: string };
  /** Sends one batch. Throws ApplicationFailures typed by FailureType; returns the answer. */
  send(targets: Target[], ctx: SendContext<Config>): Promise<BatchAnswer>;
}

/** An adapter with its types erased, as the registry holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProviderAdapter = ProviderAdapter<any, any>;
