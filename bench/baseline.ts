/**
 * The baseline: what a user would write without catalog-sync. A plain function that reads the
 * NDJSON file, cuts it into batches of 500 and posts them to Octogen's refresh endpoint with
 * undici, `concurrency` requests in flight. No durability, no retries, no per-target accounting
 * beyond counting what the provider accepted.
 */
import { readFile } from 'node:fs/promises';
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

export async function runBaseline(opts: BaselineOptions): Promise<BaselineResult> {
  const started = performance.now();
  const text = await readFile(opts.file, 'utf8');
  const targets: unknown[] = [];
  for (const line of text.split('\n')) if (line.trim() !== '') targets.push(JSON.parse(line));
  const batches: unknown[][] = [];
  for (let i = 0; i < targets.length; i += opts.batchSize) batches.push(targets.slice(i, i + opts.batchSize));

  const url = `${opts.baseUrl}/v1/products/refresh`;
  let next = 0;
  let accepted = 0;
  let calls = 0;
  let failedCalls = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < batches.length; i = next++) {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.apiKey}` },
        body: JSON.stringify({ targets: batches[i] }),
      });
      const body = (await res.body.json()) as { accepted?: unknown[] };
      calls += 1;
      if (res.statusCode === 202) accepted += body.accepted?.length ?? 0;
      else failedCalls += 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, () => lane()));
  return { wallMs: performance.now() - started, targets: targets.length, accepted, calls, failedCalls };
}
