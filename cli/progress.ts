/**
 * Progress while the CLI waits for a sync: a bar with counts, redrawn in place, when the output
 * is a terminal; otherwise a plain line whenever the counts change (at most once a second).
 */
import type { SyncReport } from '../contracts/index.ts';

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

const WIDTH = 30;

export function progressLine(report: SyncReport): string {
  const c = report.counts;
  const settled = c.submitted - c.pending;
  return `${settled}/${c.submitted} settled: accepted ${c.accepted}, rejected ${c.rejected}, failed ${c.failed}, superseded ${c.superseded}`;
}

export function progressBar(report: SyncReport): string {
  const c = report.counts;
  const done = c.submitted === 0 ? 1 : (c.submitted - c.pending) / c.submitted;
  const filled = Math.round(done * WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${Math.floor(done * 100)}% ${progressLine(report)}`;
}

/** Returns the onProgress callback and a function that ends the display. */
export function createProgress(stream: ProgressStream, now: () => number = Date.now) {
  let last = '';
  let lastAt = 0;
  let drawn = false;
  return {
    /** `final` draws even when the counts and the clock would skip it (plain lines). */
    update(report: SyncReport, final = false): void {
      if (stream.isTTY) {
        stream.write(`\r${progressBar(report)}\x1b[K`);
        drawn = true;
        return;
      }
      const line = progressLine(report);
      if (line === last || (!final && now() - lastAt < 1000)) return;
      last = line;
      lastAt = now();
      stream.write(`progress: ${line}\n`);
    },
    end(): void {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
