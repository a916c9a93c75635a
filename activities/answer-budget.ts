/**
 * Keeping a batch's answer (or a lane's share of it) under a byte budget, so every activity result
 * stays under Temporal's payload limit.
 */
import { clipText } from '../contracts/index.ts';
import type { BatchAnswer } from './providers/adapter.ts';

/** A batch answer's budget: under Temporal's 256 KB per payload with room for metadata and the codec. */
export const ANSWER_BUDGET = 240 * 1024;

/**
 * A batch answer stays under ANSWER_BUDGET however long the provider's messages and warnings or
 * the echoes are: echoes go first (from the last outcome back, so as many as fit stay), then
 * messages and warnings are cut; codes, states and identities (what the ledger and re-submissions
 * need) always stay.
 */
export function answerWithinBudget(answer: BatchAnswer, budget = ANSWER_BUDGET): BatchAnswer {
  const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
  let size = bytes(answer);
  for (let i = answer.outcomes.length - 1; i >= 0 && size > budget; i -= 1) {
    const o = answer.outcomes[i];
    if (o?.state !== 'rejected' || o.target === undefined) continue;
    size -= bytes(o.target) + ',"target":'.length;
    delete o.target;
  }
  for (const max of [100, 20]) {
    if (bytes(answer) <= budget) break;
    for (const o of answer.outcomes) {
      if (o.state === 'rejected') o.message = clipText(o.message, max);
      else if (o.warning !== undefined) o.warning = clipText(o.warning, max);
    }
  }
  return answer;
}
