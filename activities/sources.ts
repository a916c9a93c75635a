/**
 * Reading targets by reference: an NDJSON file every worker can read, or an http(s) URL of one.
 * A scan cuts the source into slices by byte offset; each activity then reads only its slice
 * (a file range, or an HTTP Range request), so no activity holds the whole source. Which URLs may
 * be read is source-policy.ts's call; callers pass the guarded dispatcher it builds. A spooled file
 * whose lines are sealed (spool.ts) is opened line by line, after the byte-range read.
 */
import { createReadStream } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import type { SliceRef, TargetsRef } from '../contracts/index.ts';
import { shownUrl } from './source-policy.ts';

const NEWLINE = 0x0a;

async function* bytesOf(
  ref: TargetsRef,
  range: { start: number; end?: number },
  dispatcher: Dispatcher | undefined,
): AsyncGenerator<Buffer> {
  if ('file' in ref) {
    if (range.end !== undefined && range.end <= range.start) return;
    // A page is read in one chunk of its own size: a 1 MB buffer for a 50 KB page is mostly garbage.
    const chunk = range.end !== undefined ? Math.min(1 << 20, Math.max(1 << 12, range.end - range.start)) : 1 << 20;
    yield* createReadStream(ref.file, {
      start: range.start,
      ...(range.end !== undefined ? { end: range.end - 1 } : {}),
      highWaterMark: chunk,
    }) as AsyncIterable<Buffer>;
    return;
  }
  const res = await request(ref.url, {
    method: 'GET',
    headers: { range: `bytes=${range.start}-${range.end !== undefined ? range.end - 1 : ''}` },
    ...(dispatcher ? { dispatcher } : {}),
  });
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    await res.body.dump();
    throw new Error(`GET ${shownUrl(ref.url)} answered ${res.statusCode}`);
  }
  // A server without Range support sends it all: skip to the slice ourselves.
  let skip = res.statusCode === 200 ? range.start : 0;
  let left = range.end !== undefined ? range.end - range.start : Infinity;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    let part = chunk;
    if (skip > 0) {
      const n = Math.min(skip, part.length);
      part = part.subarray(n);
      skip -= n;
    }
    if (part.length === 0) continue;
    if (part.length > left) part = part.subarray(0, left);
    left -= part.length;
    yield part;
    if (left <= 0) break;
  }
}

const isBlank = (buf: Buffer, from: number, to: number): boolean => {
  for (let i = from; i < to; i += 1) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
};

/** Counts the targets (non-blank lines) and cuts them into slices of `sliceSize`. */
export async function scanRef(
  ref: TargetsRef,
  sliceSize: number,
  dispatcher?: Dispatcher,
): Promise<{ total: number; slices: SliceRef[] }> {
  const slices: SliceRef[] = [];
  let total = 0;
  let pos = 0; // absolute offset of the chunk's first byte
  let lineStart = 0;
  let line = 1;
  let blank = true;
  let current: SliceRef | undefined;
  const endLine = (endOffset: number) => {
    if (!blank) {
      if (!current || current.count >= sliceSize) {
        current = {
          index: slices.length,
          firstSeq: total,
          count: 0,
          start: lineStart,
          end: lineStart,
          firstLine: line,
        };
        slices.push(current);
      }
      current.count += 1;
      current.end = endOffset;
      total += 1;
    }
    lineStart = endOffset;
    line += 1;
    blank = true;
  };
  for await (const chunk of bytesOf(ref, { start: 0 }, dispatcher)) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      const to = nl === -1 ? chunk.length : nl;
      if (blank && !isBlank(chunk, from, to)) blank = false;
      if (nl === -1) break;
      endLine(pos + nl + 1);
      from = nl + 1;
    }
    pos += chunk.length;
  }
  if (lineStart < pos) endLine(pos);
  return { total, slices };
}

/** One target of a source as read: parsed, or (a line that is not JSON) a reason that quotes nothing of it. */
export interface SourceItem {
  seq: number;
  line: number;
  target?: unknown;
  error?: string;
}

/**
 * The non-blank lines of one slice, each parsed as JSON, with their sequence numbers and 1-based
 * line numbers. `open` turns a sealed line back into its text (spooled files written with a codec
 * key). A line that is not JSON keeps only a reason that quotes nothing of it (the parser's own
 * messages quote the text, and a source line may hold anything).
 */
export async function readSlice(
  ref: TargetsRef,
  slice: SliceRef,
  dispatcher?: Dispatcher,
  open?: (line: string) => string,
): Promise<SourceItem[]> {
  const parts: Buffer[] = [];
  for await (const chunk of bytesOf(ref, { start: slice.start, end: slice.end }, dispatcher)) parts.push(chunk);
  const lines = Buffer.concat(parts).toString('utf8').split('\n');
  const sealed = open !== undefined && 'file' in ref && ref.sealed === true;
  const out: SourceItem[] = [];
  let seq = slice.firstSeq;
  for (let i = 0; i < lines.length; i += 1) {
    const raw = lines[i] as string;
    if (raw.trim() === '') continue;
    const line = slice.firstLine + i;
    const text = sealed ? open(raw) : raw; // a seal that does not open fails the read, not the line
    try {
      out.push({ seq, line, target: JSON.parse(text) as unknown });
    } catch {
      out.push({ seq, line, error: 'not JSON' });
    }
    seq += 1;
  }
  if (out.length !== slice.count) {
    throw new Error(
      `the source changed while the sync ran: slice ${slice.index} has ${out.length} targets, not ${slice.count}`,
    );
  }
  return out;
}
