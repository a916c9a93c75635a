/**
 * Failure type names: the one place errors are named. Activities throw ApplicationFailures with
 * these types, the workflow's retry policies are declared against them, and the client reads them
 * back. Names are stable public strings; never derive them from class names.
 */
export const FailureType = {
  /** 503, 502, 504, Insider's 500: the provider is briefly unable to answer. Retried. */
  ProviderUnavailable: 'ProviderUnavailable',
  /** 429: over the provider's budget. Retried after Retry-After when the provider gives one. */
  ProviderRateLimited: 'ProviderRateLimited',
  /** Connection refused or reset, a body cut short, a request that timed out. Retried. */
  ProviderNetworkError: 'ProviderNetworkError',
  /** A 2xx whose body is not the documented shape: the call may or may not have landed. Retried. */
  ProviderBadAnswer: 'ProviderBadAnswer',
  /** 400 without the answer shape, 422: the request itself must change. Never retried. */
  ProviderCallerError: 'ProviderCallerError',
  /** 401 (or a 403 about the key): every batch would fail the same way; ends the sync. */
  ProviderAuthError: 'ProviderAuthError',
  /** The provider found the batch too large: split it, never resend it as is. */
  ProviderBatchTooLarge: 'ProviderBatchTooLarge',
  /** The worker has no configuration for the provider (missing key, unknown provider). */
  ProviderNotConfigured: 'ProviderNotConfigured',
  /** The sync request itself is malformed (bad options, unknown provider). */
  InvalidSyncRequest: 'InvalidSyncRequest',
  /** A re-submission over its item or byte limit, malformed, or sent to a closing sync. */
  InvalidResubmission: 'InvalidResubmission',
  /** The whole sync ended early (auth failure); details carry the report. */
  SyncAborted: 'SyncAborted',
  /**
   * The target-state store (SQLite or PostgreSQL) could not record a provider's answer: the
   * activity fails and is retried, so no answer is ever left unrecorded. Its message names the
   * store's kind, host and database, never its password.
   */
  StateStoreUnavailable: 'StateStoreUnavailable',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failure types of scheduled syncs' change feeds. */
export const FeedFailureType = {
  /** Refused, reset or timed out; or 408, 429, 5xx. Retried, then the run fails. */
  FeedUnavailable: 'FeedUnavailable',
  /** A 2xx whose body is not `{"targets": [...], "cursor": "..."}`. Retried, then the run fails. */
  FeedBadAnswer: 'FeedBadAnswer',
  /** Any other 4xx (a wrong URL, a cursor the feed refuses): the feed or schedule must change. Not retried. */
  FeedRefused: 'FeedRefused',
} as const;
export type FeedFailureType = (typeof FeedFailureType)[keyof typeof FeedFailureType];

/** Failure types of a scheduled run. */
export const ScheduledFailureType = {
  /** The child sync failed or was aborted; details carry its report when it had one. */
  ScheduledSyncFailed: 'ScheduledSyncFailed',
  /** The sync finished with failed targets: the run fails so the next one sends them again. */
  ScheduledSyncIncomplete: 'ScheduledSyncIncomplete',
} as const;

/** Failure types the provider-call retry policy must never retry. */
export const NON_RETRYABLE_PROVIDER_FAILURES: FailureType[] = [
  FailureType.ProviderCallerError,
  FailureType.ProviderAuthError,
  FailureType.ProviderBatchTooLarge,
  FailureType.ProviderNotConfigured,
];

/**
 * What a failed provider call means for its batch, by failure type: the sync ends (bad credentials,
 * no configuration), the batch is split (too large, more than one target), its targets are rejected
 * (the provider refused them), or the call may go again later (anything else: 5xx, 429, network).
 */
export function providerFailureOutcome(type: string, batchSize: number): 'abort' | 'split' | 'reject' | 'transient' {
  if (type === FailureType.ProviderAuthError || type === FailureType.ProviderNotConfigured) return 'abort';
  if (type === FailureType.ProviderBatchTooLarge) return batchSize > 1 ? 'split' : 'reject';
  if (type === FailureType.ProviderCallerError) return 'reject';
  return 'transient';
}

/** The code a target rejected with its whole batch carries: the provider's, else its HTTP status, else the type. */
export const batchRejectionCode = (type: string, details: ProviderFailureDetails | undefined): string =>
  details?.code ?? (details?.httpStatus !== undefined ? `http_${details.httpStatus}` : type);

/** Details carried by every provider failure (ApplicationFailure.details[0]). */
export interface ProviderFailureDetails {
  provider: string;
  httpStatus?: number;
  /** The provider's own error code, when its body gave one. */
  code?: string;
  message: string;
}

/**
 * What a worker says, in the failed query's message, when it refused an activation applying events
 * no workflow task had started (workflows/activation-guard.ts). Such a query is asked again.
 */
export const UNSTARTED_TASK_REFUSED = 'UnstartedWorkflowTaskRefused';
