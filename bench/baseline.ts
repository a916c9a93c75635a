/**
 * The baseline: what a user would write without catalog-sync. A plain function that reads the
 * NDJSON file, cuts it into batches of 500 and posts them to Octogen's refresh endpoint with
 * undici, `concurrency` requests in flight. No durability, no retries, no per-target accounting
 * beyond counting what the provider accepted.
 *
 * A file up to STREAM_ABOVE_BYTES is read whole, as most users would; a larger one (10 million
 * targets is ~480 MB, near V8's longest string) is read line by line, batches cut as it goes.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { request } from 'undici';

export interface BaselineOptions {
  /** NDJSON, one target a line. */
  file: string;
  /** The provider's base URL, without trailing slash. */
  baseUrl: string;
  apiKey: string;
  concurrency: number;
  batchSize: number;
}

export interface BaselineResult {
  wallMs: number;
  targets: number;
  accepted: number;
  calls: number;
  /** Calls answered with something other than 202. */
  failedCalls: number;
}

export const STREAM_ABOVE_BYTES = 256 * 1024 * 1024;

/** Batches of the whole file, read at once. */
async function* wholeFile(file: string, batchSize: number, count: (n: number) => void): AsyncGenerator<unknown[]> {
  const text = await readFile(file, 'utf8');
  const targets: unknown[] = [];
  for (const line of text.split('\n')) if (line.trim() !== '') targets.push(JSON.parse(line));
  count(targets.length);
  for (let i = 0; i < targets.length; i += batchSize) yield targets.slice(i, i + batchSize);
}

/** Batches cut while the file is read line by line. */
async function* streamed(file: string, batchSize: number, count: (n: number) => void): AsyncGenerator<unknown[]> {
  let batch: unknown[] = [];
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    batch.push(JSON.parse(line));
    count(1);
    if (batch.length === batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

export async function runBaseline(opts: BaselineOptions): Promise<BaselineResult> {
  const started = performance.now();
  let targets = 0;
  const count = (n: number) => {
    targets += n;
  };
  const large = (await stat(opts.file)).size > STREAM_ABOVE_BYTES;
  const batches = (large ? streamed : wholeFile)(opts.file, opts.batchSize, count);

  const url = `${opts.baseUrl}/v1/products/refresh`;
  let accepted = 0;
  let calls = 0;
  let failedCalls = 0;
  // The lanes share one generator: each next() is queued behind the previous one.
  const lane = async (): Promise<void> => {
    for (let next = await batches.next(); !next.done; next = await batches.next()) {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.apiKey}` },
        body: JSON.stringify({ targets: next.value }),
      });
      const body = (await res.body.json()) as { accepted?: unknown[] };
      calls += 1;
      if (res.statusCode === 202) accepted += body.accepted?.length ?? 0;
      else failedCalls += 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, () => lane()));
  return { wallMs: performance.now() - started, targets, accepted, calls, failedCalls };
}
