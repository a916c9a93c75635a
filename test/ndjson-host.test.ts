/** The NDJSON host, exercised over real HTTP as a sync fetching its targets by URL would. */
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NDJSON_CONTENT_TYPE, parseRange, startNdjsonHost, type NdjsonHost } from '../simulators/ndjson-host.ts';

interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function get(url: string, options: { range?: string; method?: 'GET' | 'HEAD' | 'POST' } = {}): Promise<Fetched> {
  const res = await request(url, {
    method: options.method ?? 'GET',
    headers: options.range === undefined ? {} : { range: options.range },
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

const LINES = ['{"uuid":"11111111-1111-4111-8111-111111111111"}', '{"url":"https://shop.example/p/é"}', ''].join('\n');
const BYTES = Buffer.from(LINES, 'utf8');

let host: NdjsonHost;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ndjson-host-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  host = await startNdjsonHost();
});
afterEach(async () => {
  await host.close();
});

describe('put and GET', () => {
  it('serves an in-memory document at the returned URL', async () => {
    const url = host.put('targets.ndjson', LINES);
    expect(url).toBe(`${host.url}/targets.ndjson`);
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(NDJSON_CONTENT_TYPE);
    expect(res.headers['content-length']).toBe(String(BYTES.length)); // bytes, not characters
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.body.equals(BYTES)).toBe(true);
  });

  it('serves a Buffer as given, copied at put time, and replaces a document put again', async () => {
    const data = Buffer.from('{"a":1}\n');
    const url = host.put('b.ndjson', data);
    data.write('X');
    expect((await get(url)).body.toString()).toBe('{"a":1}\n');
    expect(host.put('b.ndjson', '{"b":2}\n')).toBe(url);
    expect((await get(url)).body.toString()).toBe('{"b":2}\n');
  });

  it('percent-encodes names with spaces and folders, and finds them however the path is encoded', async () => {
    const url = host.put('feeds/north wind.ndjson', LINES);
    expect(url).toBe(`${host.url}/feeds/north%20wind.ndjson`);
    expect((await get(url)).status).toBe(200);
    expect((await get(`${host.url}/feeds/%6Eorth%20wind.ndjson?v=2`)).status).toBe(200); // %6E = "n"
    expect(() => host.put('', 'x')).toThrow(RangeError);
    expect(() => host.put('/abs.ndjson', 'x')).toThrow(RangeError);
    expect(() => host.put('a/../b.ndjson', 'x')).toThrow(RangeError);
  });

  it('answers 404 for an unknown document, 400 for a malformed path, 405 for other methods', async () => {
    const url = host.put('x.ndjson', LINES);
    const missing = await get(`${host.url}/nope.ndjson`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString())).toEqual({
      error: { code: 'http_404', message: 'No document at /nope.ndjson.' },
    });
    expect((await get(`${host.url}/bad%E0%A4%A.ndjson`)).status).toBe(400);
    const post = await get(url, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves an empty document', async () => {
    const url = host.put('empty.ndjson', '');
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.body.length).toBe(0);
    expect((await get(url, { range: 'bytes=0-' })).status).toBe(416);
  });
});

describe('Range', () => {
  const size = BYTES.length;

  it.each([
    ['bytes=START-END', 'bytes=5-14', 5, 14],
    ['bytes=START-', 'bytes=10-', 10, size - 1],
    ['an END past the end (clamped)', `bytes=3-${size + 100}`, 3, size - 1],
    ['a single byte', 'bytes=0-0', 0, 0],
    ['the last byte', `bytes=${size - 1}-`, size - 1, size - 1],
    ['a suffix bytes=-N', 'bytes=-4', size - 4, size - 1],
    ['a suffix longer than the document', `bytes=-${size + 5}`, 0, size - 1],
  ])('answers 206 with Content-Range for %s', async (_label, range, start, end) => {
    const url = host.put('r.ndjson', BYTES);
    const res = await get(url, { range });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.headers['content-type']).toBe(NDJSON_CONTENT_TYPE);
    expect(res.body.equals(BYTES.subarray(start, end + 1))).toBe(true);
  });

  it.each([
    ['START at the size', `bytes=${size}-`],
    ['START past the size', `bytes=${size + 10}-${size + 20}`],
    ['END before START', 'bytes=9-3'],
    ['an empty suffix', 'bytes=-0'],
    ['garbage after bytes=', 'bytes=abc'],
  ])('answers 416 with Content-Range bytes */SIZE for %s', async (_label, range) => {
    const url = host.put('r.ndjson', BYTES);
    const res = await get(url, { range });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe(`bytes */${size}`);
  });

  it('ignores multi-range and non-byte ranges, sending the whole document', async () => {
    const url = host.put('r.ndjson', BYTES);
    for (const range of ['bytes=0-1,4-5', 'items=0-1']) {
      const res = await get(url, { range });
      expect(res.status).toBe(200);
      expect(res.body.equals(BYTES)).toBe(true);
    }
  });

  it('parses ranges without a server', () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=2-4', 10)).toEqual({ kind: 'partial', start: 2, end: 4 });
    expect(parseRange(' Bytes = 2-', 10)).toEqual({ kind: 'partial', start: 2, end: 9 });
    expect(parseRange('bytes=-', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});

describe('HEAD', () => {
  it('announces the size and byte ranges without a body, ignoring Range', async () => {
    const url = host.put('h.ndjson', LINES);
    for (const range of [undefined, 'bytes=0-3']) {
      const res = await get(url, { method: 'HEAD', ...(range === undefined ? {} : { range }) });
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(BYTES.length));
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers['content-type']).toBe(NDJSON_CONTENT_TYPE);
      expect(res.headers['content-range']).toBeUndefined();
      expect(res.body.length).toBe(0);
    }
    expect((await get(`${host.url}/nope`, { method: 'HEAD' })).status).toBe(404);
  });
});

describe('putFile', () => {
  it('streams a file from disk, with ranges, reading its current content on each request', async () => {
    const file = join(dir, 'targets.ndjson');
    await writeFile(file, BYTES);
    const url = host.putFile('disk.ndjson', file);
    expect(url).toBe(`${host.url}/disk.ndjson`);
    const whole = await get(url);
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe(NDJSON_CONTENT_TYPE);
    expect(whole.body.equals(BYTES)).toBe(true);
    const part = await get(url, { range: 'bytes=5-' });
    expect(part.status).toBe(206);
    expect(part.body.equals(BYTES.subarray(5))).toBe(true);

    await writeFile(file, '{"n":1}\n{"n":2}\n');
    const head = await get(url, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe('16');
    expect((await get(url, { range: 'bytes=8-' })).body.toString()).toBe('{"n":2}\n');

    await unlink(file);
    expect((await get(url)).status).toBe(404);
  });

  it('serves a large file in full and in the middle', async () => {
    const lines = Array.from({ length: 60_000 }, (_, i) => `{"uuid":"${String(i).padStart(36, '0')}"}\n`);
    const big = Buffer.from(lines.join(''), 'utf8'); // about 3 MB
    const file = join(dir, 'big.ndjson');
    await writeFile(file, big);
    const url = host.putFile('big.ndjson', file);
    const whole = await get(url);
    expect(whole.headers['content-length']).toBe(String(big.length));
    expect(whole.body.equals(big)).toBe(true);
    const start = 1_000_003;
    const end = 2_000_002;
    const middle = await get(url, { range: `bytes=${start}-${end}` });
    expect(middle.status).toBe(206);
    expect(middle.headers['content-range']).toBe(`bytes ${start}-${end}/${big.length}`);
    expect(middle.body.equals(big.subarray(start, end + 1))).toBe(true);
  });

  it('throws at once for a missing file or a folder', () => {
    expect(() => host.putFile('x.ndjson', join(dir, 'missing.ndjson'))).toThrow(/ENOENT/);
    expect(() => host.putFile('x.ndjson', dir)).toThrow(/not a regular file/);
  });
});

describe('faults', () => {
  it('answers the next n GETs with the status, whatever the path, leaving HEAD alone', async () => {
    const url = host.put('f.ndjson', LINES);
    host.failNext(2);
    expect((await get(url, { method: 'HEAD' })).status).toBe(200);
    const first = await get(url);
    expect(first.status).toBe(503);
    expect(first.headers['content-type']).toBe('application/json');
    expect(JSON.parse(first.body.toString())).toEqual({ error: { code: 'http_503', message: 'Injected HTTP 503.' } });
    expect((await get(`${host.url}/other`, { range: 'bytes=0-' })).status).toBe(503);
    expect((await get(url)).status).toBe(200);
  });

  it('queues calls in order, with their own statuses', async () => {
    const url = host.put('f.ndjson', LINES);
    host.failNext(1, 500);
    host.failNext(2, 429);
    host.failNext(0, 502);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(url)).status);
    expect(statuses).toEqual([500, 429, 429, 200]);
  });

  it('refuses a bad count or a non-error status', () => {
    expect(() => host.failNext(-1)).toThrow(RangeError);
    expect(() => host.failNext(1.5)).toThrow(RangeError);
    expect(() => host.failNext(1, 200)).toThrow(RangeError);
    expect(() => host.failNext(1, 600)).toThrow(RangeError);
  });
});

describe('recording', () => {
  it('records method, path, Range and status of every request in order', async () => {
    const url = host.put('rec.ndjson', LINES);
    await get(url);
    await get(url, { range: 'bytes=0-9' });
    await get(url, { method: 'HEAD' });
    host.failNext(1);
    await get(url, { range: 'bytes=10-' });
    await get(`${url}?token=abc`, { range: `bytes=${BYTES.length}-` });
    await get(`${host.url}/missing.ndjson`);
    expect(host.requests).toEqual([
      { method: 'GET', path: '/rec.ndjson', status: 200 },
      { method: 'GET', path: '/rec.ndjson', range: 'bytes=0-9', status: 206 },
      { method: 'HEAD', path: '/rec.ndjson', status: 200 },
      { method: 'GET', path: '/rec.ndjson', range: 'bytes=10-', status: 503 },
      { method: 'GET', path: '/rec.ndjson', range: `bytes=${BYTES.length}-`, status: 416 },
      { method: 'GET', path: '/missing.ndjson', status: 404 },
    ]);
  });
});

describe('lifecycle', () => {
  it('closes promptly with a keep-alive connection and a download in progress', async () => {
    const file = join(dir, 'slow.ndjson');
    await writeFile(file, Buffer.alloc(32 * 1024 * 1024, 0x31));
    const url = host.putFile('slow.ndjson', file);
    expect((await get(url, { method: 'HEAD' })).status).toBe(200);
    const res = await request(url); // headers arrived; the body is not read
    expect(res.statusCode).toBe(200);
    const reading = res.body.arrayBuffer();
    reading.catch(() => undefined);
    const started = performance.now();
    await host.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(reading).rejects.toThrow();
    await host.close(); // idempotent, and afterEach closes again
  });
});
