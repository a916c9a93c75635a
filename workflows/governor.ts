/**
 * The provider-account governor: one long-running workflow per provider account (and task queue),
 * shared by every sync and worker. Activities tell it what the provider answered and read back the
 * working batch size and the account's pause (activities/governor.ts). Learned limits: a call found
 * too large halves the size tried next (one probe at a time); the largest size answered is kept,
 * and after GOVERNOR_AGE_OUT_MS without an oversize answer the size is probed up by 25 %. Back-off:
 * a rate answer pauses the whole account until Retry-After, or a growing backoff when none came.
 */
import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  GOVERNOR_AGE_OUT_MS,
  GOVERNOR_BACKOFF_MS,
  GOVERNOR_PROBE_LEASE_MS,
  governorProbeUpdate,
  governorReportUpdate,
  governorStatusQuery,
  type GovernorAdvice,
  type GovernorReport,
  type GovernorState,
} from '../contracts/governor.ts';

/** A run continues as new after this many updates (about 5 events each), so its history stays small. */
const MAX_UPDATES = 400;

export function adviceOf(s: GovernorState): GovernorAdvice {
  return {
    okRecords: s.okRecords,
    pausedUntil: s.pausedUntil,
    ...(s.tooLargeRecords !== undefined ? { tooLargeRecords: s.tooLargeRecords } : {}),
    ...(s.probeRecords !== undefined ? { probeRecords: s.probeRecords } : {}),
    ...(s.maxBytes !== undefined ? { maxBytes: s.maxBytes } : {}),
    ...(s.probe !== undefined ? { probe: s.probe } : {}),
    ...(s.rateStreak > 0 ? { rateStreak: s.rateStreak } : {}),
  };
}

function release(s: GovernorState, holder: string | undefined): void {
  if (holder !== undefined && s.probe?.holder === holder) delete s.probe;
}

/** The next size to try after a too-large answer: half the smallest failing size, above what worked. */
function nextProbe(s: GovernorState): void {
  const half = Math.floor((s.tooLargeRecords ?? 0) / 2);
  if (half > s.okRecords) s.probeRecords = half;
  else delete s.probeRecords;
}

function oversize(s: GovernorState, r: { records: number; bytes: number }, now: number): void {
  s.oversizeAnswers += 1;
  s.lastOversizeAt = now;
  if (r.records <= s.okRecords || r.records <= 1) {
    // A record count known to work was too large: the bytes were.
    s.maxBytes = Math.max(1, Math.min(s.maxBytes ?? Infinity, Math.floor(r.bytes / 2)));
    return;
  }
  s.tooLargeRecords = Math.min(s.tooLargeRecords ?? Infinity, r.records);
  nextProbe(s);
}

/** Applies one report; `now` is the workflow's clock. */
export function applyReport(s: GovernorState, r: GovernorReport, now: number): void {
  release(s, r.holder);
  if (r.kind === 'oversize') oversize(s, r, now);
  else if (r.kind === 'ok') {
    s.rateStreak = 0;
    if (r.records > s.okRecords && (s.tooLargeRecords === undefined || r.records < s.tooLargeRecords)) {
      s.okRecords = r.records;
    }
    if (s.probeRecords !== undefined && s.okRecords >= s.probeRecords) delete s.probeRecords;
  } else if (r.kind === 'rate') {
    s.rateAnswers += 1;
    const backoff = Math.min(GOVERNOR_BACKOFF_MS.max, GOVERNOR_BACKOFF_MS.initial * 2 ** s.rateStreak);
    if (r.until === undefined) s.rateStreak += 1;
    s.pausedUntil = Math.max(s.pausedUntil, r.until ?? now + backoff);
  }
}

/** Probes the working size up by 25 % once no oversize answer came for GOVERNOR_AGE_OUT_MS. */
export function ageOut(s: GovernorState, now: number): void {
  const since = s.lastOversizeAt;
  if (s.tooLargeRecords === undefined || s.probeRecords !== undefined || since === undefined) return;
  if (now - since < GOVERNOR_AGE_OUT_MS) return;
  s.lastOversizeAt = now;
  if (s.maxBytes !== undefined) s.maxBytes = Math.ceil(s.maxBytes * 1.25);
  if (s.okRecords === 0) return;
  const up = Math.max(s.okRecords + 1, Math.ceil(s.okRecords * 1.25));
  // The old failing size is forgotten: the account's limit may have grown.
  s.tooLargeRecords = up + 1;
  s.probeRecords = up;
}

export async function governorWorkflow(start: GovernorState): Promise<void> {
  const s: GovernorState = { ...start };
  let handled = 0;
  setHandler(governorStatusQuery, () => ({ ...s }), {
    description:
      "The provider account's learned working size (records, bytes), its pause until (429 Retry-After) and probe state. No input.",
  });
  setHandler(
    governorReportUpdate,
    (report: GovernorReport) => {
      handled += 1;
      // Date.now() in workflow code is Temporal's clock (the workflow task's time, replayed from history).
      applyReport(s, report, Date.now());
      return adviceOf(s);
    },
    {
      description: 'Internal: a provider answer reported by a worker (ok, too large, rate-limited). Not for operators.',
    },
  );
  setHandler(
    governorProbeUpdate,
    ({ holder }) => {
      handled += 1;
      const now = Date.now();
      if (s.probe !== undefined && s.probe.until <= now) delete s.probe;
      const granted = s.probe === undefined && s.probeRecords !== undefined;
      if (granted) s.probe = { holder, until: now + GOVERNOR_PROBE_LEASE_MS };
      return { granted, advice: adviceOf(s) };
    },
    { description: 'Internal: a worker asks to probe a larger batch size. Not for operators.' },
  );
  const full = () => handled >= MAX_UPDATES || workflowInfo().continueAsNewSuggested;
  for (;;) {
    // Wakes now and then to age the learned size out, and when the run has grown enough.
    await condition(full, GOVERNOR_AGE_OUT_MS / 4);
    ageOut(s, Date.now());
    if (full()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof governorWorkflow>(s);
    }
  }
}
