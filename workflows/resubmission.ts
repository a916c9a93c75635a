/**
 * Taking a re-submission: each corrected target names the rejection it fixes (by id, or by the
 * same provider identity), supersedes it, and joins the ledger as a new pending target.
 */
import type { Plan } from '../activities/index.ts';
import type { Resubmission, ResubmissionAnswer } from '../contracts/index.ts';
import { MAX_RESUBMITTED_PER_SYNC, parseTargetId, targetId } from '../contracts/index.ts';
import { addRefused, isFixable, type Ledger } from './ledger.ts';

export interface Taken {
  answer: ResubmissionAnswer;
  /** Batches of the new entries' sequence numbers, ready to send. */
  batches: number[][];
}

/**
 * `plan` was made for the items with sequence numbers 0..n-1 (their positions); `originals` is how
 * many targets the sync received before any re-submission.
 */
type Refusal = { code: string; message: string };

/**
 * The rejected or failed target an item fixes: the one it names (`fixes`), else the most recent
 * one with the same identity not yet claimed by this re-submission; or why there is none.
 */
function targetFixed(
  ledger: Ledger,
  item: Resubmission['items'][number],
  identity: string | undefined,
  claimed: Set<number>,
): number | Refusal {
  if (item.fixes === undefined) {
    // Most recent first, for matching by identity.
    const fixes = Object.keys(ledger.entries)
      .map(Number)
      .reverse()
      .find((seq) => {
        const e = ledger.entries[seq];
        return e !== undefined && isFixable(e) && e.identity === identity && !claimed.has(seq);
      });
    return (
      fixes ?? {
        code: 'nothing_to_fix',
        message: 'no rejected or failed target has this identity; name the one it fixes with "fixes": "t<n>"',
      }
    );
  }
  const fixes = parseTargetId(item.fixes);
  const entry = fixes === undefined ? undefined : ledger.entries[fixes];
  if (fixes === undefined || fixes >= ledger.submitted) {
    return { code: 'unknown_target', message: `${item.fixes} is not a target of this sync; use an id from the report` };
  }
  if (claimed.has(fixes)) {
    return {
      code: 'duplicate_fix',
      message: `${item.fixes} is already fixed by an earlier item of this re-submission`,
    };
  }
  if (!entry) {
    return {
      code: 'not_fixable',
      message: `${item.fixes} is accepted, still pending, or listed in a slice workflow (rejectedElsewhere); only rejected or failed targets in the report can be re-submitted`,
    };
  }
  if (!isFixable(entry)) {
    return {
      code: 'not_fixable',
      message: `${item.fixes} is ${entry.state}, not rejected or failed; only those can be re-submitted`,
    };
  }
  return fixes;
}

export function takeResubmission(ledger: Ledger, resubmission: Resubmission, plan: Plan, originals: number): Taken {
  const invalid = new Map(plan.rejections.map((r) => [r.seq, r]));
  const identities = new Map(plan.valid.map((v) => [v.seq, v.identity]));
  const answer: ResubmissionAnswer = { taken: [], refused: [] };
  const newSeqOf = new Map<number, number>();
  const claimed = new Set<number>();

  resubmission.items.forEach((item, index) => {
    const refuse = ({ code, message }: Refusal) => {
      answer.refused.push({ index, code, message, ...(item.fixes !== undefined ? { fixes: item.fixes } : {}) });
    };
    const bad = invalid.get(index);
    if (bad) return refuse(bad);
    if (ledger.submitted - originals >= MAX_RESUBMITTED_PER_SYNC) {
      return refuse({
        code: 'too_many_resubmissions',
        message: `this sync has taken ${MAX_RESUBMITTED_PER_SYNC} re-submitted targets, its limit; start a new sync with the rest`,
      });
    }
    const identity = identities.get(index);
    const fixes = targetFixed(ledger, item, identity, claimed);
    if (typeof fixes !== 'number') return refuse(fixes);
    claimed.add(fixes);
    const seq = ledger.submitted;
    ledger.submitted += 1;
    ledger.entries[seq] = {
      target: item.target,
      state: 'pending',
      resends: 0,
      ...(identity !== undefined ? { identity } : {}),
    };
    const old = ledger.entries[fixes];
    if (old) {
      old.state = 'superseded';
      old.supersededBy = seq;
    }
    newSeqOf.set(index, seq);
    answer.taken.push({ index, id: targetId(seq), supersedes: targetId(fixes) });
  });

  addRefused(ledger, answer.refused);
  const batches = plan.batches
    .map((batch) => batch.flatMap((index) => (newSeqOf.has(index) ? [newSeqOf.get(index) as number] : [])))
    .filter((batch) => batch.length > 0);
  return { answer, batches };
}
