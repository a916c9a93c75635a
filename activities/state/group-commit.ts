/**
 * Group commit: the records handed in during one turn of the event loop (the answers of several
 * lanes, of several syncs) are written in one transaction, one transaction after the other. Each
 * caller's promise settles when its records are written, or with the write's error: a record is
 * never taken as written before the store has it.
 */
import type { TargetOutcomeRecord } from '../../contracts/target-state.ts';

interface Waiting {
  records: readonly TargetOutcomeRecord[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function groupCommit(
  write: (records: readonly TargetOutcomeRecord[]) => Promise<unknown>,
): (records: readonly TargetOutcomeRecord[]) => Promise<void> {
  let waiting: Waiting[] = [];
  let scheduled = false;
  let last: Promise<void> = Promise.resolve();
  const flush = () => {
    scheduled = false;
    const group = waiting;
    waiting = [];
    last = last.then(async () => {
      try {
        await write(group.length === 1 ? (group[0] as Waiting).records : group.flatMap((w) => w.records));
        for (const w of group) w.resolve();
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    });
  };
  return (records) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ records, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
