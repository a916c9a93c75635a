/**
 * The source's pages, packed for continue-as-new: a by-reference catalog of 10 million targets is
 * 10,000 pages, about 800 KB as objects but about 70 KB packed, so the carried state stays small.
 */
import type { PackedPages } from './ledger.ts';
import type { SliceRef } from './sync.ts';

export function packPages(pages: SliceRef[], size: number): PackedPages {
  const tokens: string[] = [];
  let prevEnd = 0;
  let nextLine = 1;
  for (const p of pages) {
    const length = p.end - p.start;
    const startGap = p.start - prevEnd;
    const lineGap = p.firstLine - nextLine;
    tokens.push(
      p.count === size && startGap === 0 && lineGap === 0 ? `${length}` : `${length}:${p.count}:${startGap}:${lineGap}`,
    );
    prevEnd = p.end;
    nextLine = p.firstLine + p.count;
  }
  return { size, tokens: tokens.join(',') };
}

export function unpackPages(packed: PackedPages): SliceRef[] {
  const pages: SliceRef[] = [];
  if (packed.tokens === '') return pages;
  let prevEnd = 0;
  let nextLine = 1;
  let firstSeq = 0;
  for (const token of packed.tokens.split(',')) {
    const [length = 0, count = packed.size, startGap = 0, lineGap = 0] = token.split(':').map(Number);
    const start = prevEnd + startGap;
    const page: SliceRef = {
      index: pages.length,
      firstSeq,
      count,
      start,
      end: start + length,
      firstLine: nextLine + lineGap,
    };
    pages.push(page);
    prevEnd = page.end;
    nextLine = page.firstLine + count;
    firstSeq += count;
  }
  return pages;
}
