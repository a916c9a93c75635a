/**
 * Taking a re-submission: each corrected target names the rejection it fixes (by id, or by the
 * same provider identity), supersedes it, and joins the ledger as a new pending target.
 */
import type { Plan } from '../activities/index.ts';
import type { RefusedItem, Resubmission, ResubmissionAnswer } from '../contracts/index.ts';
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
export function takeResubmission(ledger: Ledger, resubmission: Resubmission, plan: Plan, originals: number): Taken {
  const invalid = new Map(plan.rejections.map((r) => [r.seq, r]));
  const identities = new Map(plan.valid.map((v) => [v.seq, v.identity]));
  const answer: ResubmissionAnswer = { taken: [], refused: [] };
  const newSeqOf = new Map<number, number>();
  const claimed = new Set<number>();
  // Most recent first, for matching by identity.
  const fixableByRecency = () =>
    Object.keys(ledger.entries)
      .map(Number)
      .reverse()
      .filter((seq) => {
        const e = ledger.entries[seq];
        return e !== undefined && isFixable(e);
      });

  resubmission.items.forEach((item, index) => {
    const refuse = (code: string, message: string) => {
      const refused: RefusedItem = { index, code, message, ...(item.fixes !== undefined ? { fixes: item.fixes } : {}) };
      answer.refused.push(refused);
    };
    const bad = invalid.get(index);
    if (bad) return refuse(bad.code, bad.message);
    if (ledger.submitted - originals >= MAX_RESUBMITTED_PER_SYNC) {
      return refuse(
        'too_many_resubmissions',
        `this sync has taken ${MAX_RESUBMITTED_PER_SYNC} re-submitted targets, its limit; start a new sync with the rest`,
      );
    }
    const identity = identities.get(index);
    let fixes: number | undefined;
    if (item.fixes !== undefined) {
      fixes = parseTargetId(item.fixes);
      const entry = fixes === undefined ? undefined : ledger.entries[fixes];
      if (fixes === undefined || fixes >= ledger.submitted) {
        return refuse('unknown_target', `${item.fixes} is not a target of this sync; use an id from the report`);
      }
      if (claimed.has(fixes)) {
        return refuse('duplicate_fix', `${item.fixes} is already fixed by an earlier item of this re-submission`);
      }
      if (!entry) {
        return refuse(
          'not_fixable',
          `${item.fixes} is accepted, still pending, or listed in a slice workflow (rejectedElsewhere); only rejected or failed targets in the report can be re-submitted`,
        );
      }
      if (!isFixable(entry)) {
        return refuse(
          'not_fixable',
          `${item.fixes} is ${entry.state}, not rejected or failed; only those can be re-submitted`,
        );
      }
    } else {
      fixes = fixableByRecency().find((seq) => ledger.entries[seq]?.identity === identity && !claimed.has(seq));
      if (fixes === undefined) {
        return refuse(
          'nothing_to_fix',
          'no rejected or failed target has this identity; name the one it fixes with "fixes": "t<n>"',
        );
      }
    }
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
    .map((batch) =>
      batch.flatMap((index) => {
        const seq = newSeqOf.get(index);
        return seq === undefined ? [] : [seq];
      }),
    )
    .filter((batch) => batch.length > 0);
  return { answer, batches };
}
