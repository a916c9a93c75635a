/**
 * The provider-account governor's messages, defined once for its workflow (workflows/governor.ts)
 * and the activities that ask and tell it (activities/governor.ts). One governor per provider
 * account and task queue holds what the provider taught: the working batch size it accepts and
 * until when the whole account is paused.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** The governor's workflow ID: `catalog-sync-governor-<provider>-<account hash>`. */
export const governorWorkflowId = (provider: string, accountHash: string): string =>
  `catalog-sync-governor-${provider}-${accountHash}`;

/** What one call taught, told by the activity that made it. */
export type GovernorReport =
  /** The provider said the call was too large: `records` records of `bytes` JSON bytes. */
  | { kind: 'oversize'; records: number; bytes: number; holder?: string }
  /** The call was answered: it was not too large. */
  | { kind: 'ok'; records: number; bytes: number; holder?: string }
  /** 429 or a rate answer: pause the account until `until` (epoch ms), or a backoff when absent. */
  | { kind: 'rate'; until?: number; holder?: string }
  /** Another failure: only releases the probe the caller held. */
  | { kind: 'released'; holder: string };

/** The learned working size and the pause, as every activity reads them. */
export interface GovernorAdvice {
  /** Largest record count known to be answered; 0 while none is known. */
  okRecords: number;
  /** Smallest record count the provider found too large; absent while none was. */
  tooLargeRecords?: number;
  /** The next larger size to try (one call at a time, by whoever holds the probe). */
  probeRecords?: number;
  /** Bytes a call stays under, learned when a call of a known-good record count was too large. */
  maxBytes?: number;
  /** Epoch ms before which no call to the account starts. */
  pausedUntil: number;
  /** Who holds the probe and until when (epoch ms); a holder that died loses it then. */
  probe?: { holder: string; until: number };
  /** Consecutive rate answers without Retry-After: the backoff grows with them, an answered call resets it. */
  rateStreak?: number;
}

export interface GovernorStatus extends GovernorAdvice {
  provider: string;
  /** Oversize answers and rate answers reported since the governor started (carried across runs). */
  oversizeAnswers: number;
  rateAnswers: number;
  /** Epoch ms of the last oversize answer (age-out counts from it). */
  lastOversizeAt?: number;
}

export interface GovernorState extends GovernorStatus {
  rateStreak: number;
}

/** Asks for the probe: granted when nobody holds it. Answers with the advice either way. */
export interface ProbeAnswer {
  granted: boolean;
  advice: GovernorAdvice;
}

/** A governor workflow's state before anything is learned (what a worker starts it with). */
export const initialGovernorState = (provider: string): GovernorState => ({
  provider,
  okRecords: 0,
  pausedUntil: 0,
  oversizeAnswers: 0,
  rateAnswers: 0,
  rateStreak: 0,
});

/** The governor workflow's type name: workers start it by name (activities never import workflows). */
export const GOVERNOR_WORKFLOW_TYPE = 'governorWorkflow';
export type GovernorWorkflow = (start: GovernorState) => Promise<void>;

export const governorStatusQuery = defineQuery<GovernorStatus>('status');
export const governorReportUpdate = defineUpdate<GovernorAdvice, [GovernorReport]>('report');
export const governorProbeUpdate = defineUpdate<ProbeAnswer, [{ holder: string }]>('probe');

/** After this long without an oversize answer, the working size is probed up by 25 %. */
export const GOVERNOR_AGE_OUT_MS = 10 * 60_000;
/** A probe not reported back within this long is given to the next caller. */
export const GOVERNOR_PROBE_LEASE_MS = 60_000;
/** Backoff of rate answers without Retry-After: 1 s, doubling, at most a minute. */
export const GOVERNOR_BACKOFF_MS = { initial: 1_000, max: 60_000 } as const;
