/**
 * Priority and fairness of a sync's tasks (Temporal task-queue priority and fairness).
 *
 * - `priorityKey` (SyncOptions, `submit --priority`): 1 is the most urgent, 5 the least, 3 when not
 *   given (Temporal's own default). The library starts the sync workflow with it, so its slices and
 *   activities inherit it, and every provider call carries it explicitly too.
 * - The fairness key is per sync: the sync's workflow ID (a slice uses its sync's). With fairness
 *   on in the server, a backlogged task queue dispatches the keys in turn, so a small sync's calls
 *   are not queued behind a whole catalog's backlog.
 *
 * Free of Node-only imports: the workflow bundle takes this module.
 */
import type { Priority } from '@temporalio/common';

export const PRIORITY_KEYS = { min: 1, max: 5, default: 3 } as const;

/** One line naming the range, for every place a priority key is read (option, flag, HTTP). */
export const PRIORITY_KEY_MESSAGE = `priorityKey must be a whole number from ${PRIORITY_KEYS.min} (most urgent) to ${PRIORITY_KEYS.max} (least urgent); the default is ${PRIORITY_KEYS.default}`;

/** Temporal limits fairness keys to 64 bytes. */
export const FAIRNESS_KEY_BYTES = 64;

/** Two FNV-1a 32-bit hashes with different seeds, as 16 hex digits: deterministic, no Node crypto. */
function digest16(s: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 + 0x200) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/**
 * The fairness key of a sync ID: the ID itself when it is printable ASCII of at most 64 bytes,
 * otherwise its first 47 characters (non-printable or non-ASCII ones as "_"), "~" and a digest.
 */
export function fairnessKeyOf(id: string): string {
  if (/^[\x20-\x7e]*$/.test(id) && id.length <= FAIRNESS_KEY_BYTES) return id;
  return `${id.slice(0, 47).replace(/[^\x20-\x7e]/g, '_')}~${digest16(id)}`;
}

/** The priority a sync's tasks carry: its priority key (or the default) and its fairness key. */
export function syncPriority(
  syncId: string,
  priorityKey: number | undefined,
): Required<Omit<Priority, 'fairnessWeight'>> {
  return { priorityKey: priorityKey ?? PRIORITY_KEYS.default, fairnessKey: fairnessKeyOf(syncId) };
}
