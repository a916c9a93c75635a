/**
 * The slices a sync runs now and the counts each last signalled (sliceProgressSignal): merged
 * into the counts the sync shows, so they move while slices send, and replaced by each slice's
 * result when it closes. Counts still add up at every moment: a slice's signalled counts never
 * exceed its targets, which the sync counts as pending until then.
 */
import { SliceProgressSchema, formatCount, type Counts, type SliceProgress } from '../contracts/index.ts';

export interface LiveSlices {
  start(index: number, targets: number): void;
  /** The slice closed (its result merged, or its failure counted): its signalled counts go. */
  end(index: number): void;
  /** The signal handler: counts of a slice running now, checked; others are ignored. */
  update(progress: SliceProgress): void;
  /** `base` (the sync's own counts) with the running slices' counts moved out of pending. */
  counts(base: Counts): Counts;
  /** ", 3 of 8 slices done, 4 sending" (empty when the sync runs no slices). */
  describe(total: number): string;
}

export function createLiveSlices(): LiveSlices {
  const running = new Map<number, { targets: number; progress?: SliceProgress }>();
  let done = 0;
  let started = false;
  return {
    start(index, targets) {
      started = true;
      running.set(index, { targets });
    },
    end(index) {
      if (running.delete(index)) done += 1;
    },
    update(raw) {
      const parsed = SliceProgressSchema.safeParse(raw);
      if (!parsed.success) return;
      const p = parsed.data;
      const slice = running.get(p.slice);
      if (!slice || p.accepted + p.rejected + p.failed + (p.unchanged ?? 0) > slice.targets) return;
      slice.progress = p;
    },
    counts(base) {
      const c = { ...base };
      for (const { progress: p } of running.values()) {
        if (!p) continue;
        c.accepted += p.accepted;
        c.rejected += p.rejected;
        c.failed += p.failed;
        c.pending -= p.accepted + p.rejected + p.failed;
        // Unchanged targets were never sent: they leave `submitted` (and pending) for `unchanged`.
        const same = p.unchanged ?? 0;
        c.submitted -= same;
        c.pending -= same;
        c.unchanged += same;
      }
      return c;
    },
    describe(total) {
      if (!started) return '';
      return `; ${formatCount(done)} of ${formatCount(total)} slices done this run, ${running.size} sending`;
    },
  };
}
