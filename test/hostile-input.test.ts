/**
 * The hostile-input suite: every class of bad input, and every documented limit of both seeds,
 * driven through the library (startSync, resubmit), the HTTP front and the CLI against the real
 * server. For every case the answer is a 4xx or one clear line naming the field (and the limit),
 * never a 5xx or a crash, and no sync starts: the refusal cases run on a task queue of their own,
 * which must list no workflow at the end. A size suite drives each entry point at 1x, 10x and 100x
 * its documented limit; large HTTP bodies are announced by Content-Length and cut short, so 100x
 * stays cheap.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHttpFront, type RunningHttpFront } from '../http/http-front.ts';
import {
  SyncRequestError,
  awaitFirstPass,
  finish,
  awaitReport,
  getStatus,
  resubmit,
  startSync,
  syncWorkflowId,
} from '../client/index.ts';
import { checkSyncRequest } from '../client/request-check.ts';
import { MAX_ITEMS_PER_RESUBMISSION, MAX_RESUBMISSION_BYTES } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, makeWorker, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const TOKEN = 'hostile-token';
const KEY = 'hostile-octogen-key';
const products = makeOctogenProducts('alpha', 20);
const UUID = products[0]!.uuid;
const item = (id: string, extra: Record<string, unknown> = { in_stock: 1 }) => ({
  item_id: id,
  locale: 'en_US',
  ...extra,
});

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let front: RunningHttpFront;
let dir: string;
/** Refusal cases only: no worker polls it, and no workflow may ever be listed on it. */
const refuseQueue = uniqueTaskQueue('hostile-refused');
/** The one open sync the re-submission cases aim at. */
const workQueue = uniqueTaskQueue('hostile-work');
let stopWorker: () => Promise<void>;
let openSync: string;
/** Keys of refusal cases: none may name a workflow afterwards. */
const refusedKeys: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-hostile-'));
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  front = await startHttpFront({ client: t.client, taskQueue: refuseQueue, tokens: [TOKEN], port: 0 });
  const worker = await makeWorker(t, {
    taskQueue: workQueue,
    env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY },
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
  };
  // One rejected target keeps this sync open for the re-submission cases.
  ({ workflowId: openSync } = await startSync(
    t.client,
    {
      provider: 'octogen',
      targets: [{ url: 'https://alpha.com/products/missing-1' }, { uuid: UUID }],
      options: { resubmissionWindow: '10m' },
    },
    workQueue,
  ));
  await awaitFirstPass(t.client, openSync);
}, 60_000);

afterAll(async () => {
  if (openSync) await finish(t.client, openSync).catch(() => undefined);
  await stopWorker?.();
  await front?.close();
  await sim?.close();
  await t?.close();
});

// ---- Helpers ----

/** One line, no line break anywhere: what a user or a log reads. */
const expectOneLine = (text: string) => expect(text).not.toMatch(/[\n\r]/);

async function libraryRefuses(req: Record<string, unknown>): Promise<string> {
  const err = await startSync(t.client, req as never, refuseQueue).then(
    (started) => new Error(`started ${started.workflowId}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SyncRequestError);
  const message = (err as Error).message;
  expectOneLine(message);
  return message;
}

interface HttpAnswer {
  status: number;
  body: unknown;
}

async function post(pathname: string, body: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await request(`${front.url}${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // kept as text: the assertion below names it
  }
  return { status: res.statusCode, body: parsed };
}

/** The messages of an HTTP refusal: an error's, or the rejected targets' of a 400 answer. */
function refusalText(answer: HttpAnswer): string {
  const body = answer.body as {
    error?: { message?: string };
    workflowId?: string | null;
    rejected?: { message: string }[];
  };
  if (body.error?.message !== undefined) return body.error.message;
  expect(body.workflowId ?? null).toBeNull();
  return (body.rejected ?? []).map((r) => r.message).join(' | ');
}

async function httpRefuses(req: Record<string, unknown>, raw?: string): Promise<string> {
  const answer = await post('/v1/syncs', raw ?? JSON.stringify(req));
  expect(answer.status, JSON.stringify(answer.body).slice(0, 300)).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  const text = refusalText(answer);
  expectOneLine(text);
  return text;
}

/**
 * Announces `bytes` of body by Content-Length, sends only the first chunk and returns the answer:
 * a server that reads the header refuses at once, and nothing large is ever built or sent.
 */
function announce(pathname: string, bytes: number, head: string): Promise<HttpAnswer> {
  const url = new URL(`${front.url}${pathname}`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'content-length': String(bytes),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        });
      },
    );
    req.on('error', reject);
    req.write(head);
  });
}

async function expectNothingStarted(): Promise<void> {
  for (const key of refusedKeys) {
    for (const provider of ['octogen', 'insider']) {
      await expect(t.client.workflow.getHandle(syncWorkflowId(provider, key)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
  }
  const listed: string[] = [];
  for await (const wf of t.client.workflow.list({ query: `TaskQueue = "${refuseQueue}"` })) listed.push(wf.workflowId);
  expect(listed).toEqual([]);
}

// ---- The table: one case per class, plus every documented limit of both seeds ----

interface Case {
  name: string;
  request: Record<string, unknown>;
  /** What every channel's answer must name (the field). */
  field: RegExp;
  /** What the library's line must also say (the limit, the fix). */
  says?: RegExp;
  /** The HTTP body as raw text, for a request even the test's own JSON.stringify cannot write. */
  raw?: (key: string) => string;
}

/** 10,000 levels of objects: JSON.parse reads it, recursive serializers overflow on it. */
const DEEP = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;

const octogen = (targets: unknown[], extra: Record<string, unknown> = {}) => ({
  provider: 'octogen',
  targets,
  ...extra,
});
const insider = (targets: unknown[], extra: Record<string, unknown> = {}) => ({
  provider: 'insider',
  targets,
  ...extra,
});
const ok = { uuid: UUID };

const CASES: Case[] = [
  // Durations: a window of years, retry intervals of days, and their order.
  {
    name: 'a window of 999999999h',
    request: octogen([ok], { options: { resubmissionWindow: '999999999h' } }),
    field: /resubmissionWindow/,
    says: /30d/,
  },
  {
    name: 'a window of 10^15 ms',
    request: octogen([ok], { options: { resubmissionWindow: 1e15 } }),
    field: /resubmissionWindow/,
    says: /30d/,
  },
  {
    name: 'a first retry interval of 2h',
    request: octogen([ok], { options: { callInitialInterval: '2h' } }),
    field: /callInitialInterval/,
    says: /10m/,
  },
  {
    name: 'a longest retry interval of 30d',
    request: octogen([ok], { options: { callMaximumInterval: '30d' } }),
    field: /callMaximumInterval/,
    says: /1h/,
  },
  {
    name: 'a longest retry interval shorter than the first',
    request: octogen([ok], { options: { callInitialInterval: '5m', callMaximumInterval: '1m' } }),
    field: /callMaximumInterval/,
    says: /at least as long/,
  },
  {
    name: 'a duration that is not one',
    request: octogen([ok], { options: { resubmissionWindow: 'soon' } }),
    field: /resubmissionWindow/,
  },
  // Batch sizes over the providers' documented maximums are refused, not lowered.
  {
    name: 'Octogen batch size 501',
    request: octogen([ok], { options: { batchSize: 501 } }),
    field: /batchSize/,
    says: /500/,
  },
  {
    name: 'Insider batch size 1001',
    request: insider([item('a')], { options: { batchSize: 1001 } }),
    field: /batchSize/,
    says: /1000/,
  },
  {
    name: 'concurrency 65',
    request: octogen([ok], { options: { concurrency: 65 } }),
    field: /concurrency/,
    says: /64/,
  },
  { name: 'an unknown option', request: octogen([ok], { options: { speed: 'max' } }), field: /speed/ },
  // Keys become workflow IDs.
  { name: 'a key with a lone surrogate', request: octogen([ok], { key: 'k\uD800' }), field: /key/, says: /Unicode/ },
  { name: 'a key with a line break', request: octogen([ok], { key: 'a\nb' }), field: /key/ },
  { name: 'a key of 201 characters', request: octogen([ok], { key: 'k'.repeat(201) }), field: /key/, says: /200/ },
  { name: 'an empty key', request: octogen([ok], { key: '' }), field: /key/ },
  // Octogen's targets (seed 000): exactly one of uuid or url, optional catalog.
  {
    name: 'a URL with a space',
    request: octogen([{ url: 'https://alpha.com/products/a b' }]),
    field: /url/,
    says: /space/,
  },
  { name: 'a URL with a control character', request: octogen([{ url: 'https://alpha.com/\u0007' }]), field: /url/ },
  { name: 'a URL with a lone surrogate', request: octogen([{ url: 'https://alpha.com/\uDC00' }]), field: /url/ },
  { name: 'a relative URL', request: octogen([{ url: '/products/a' }]), field: /url/ },
  { name: 'a non-http URL', request: octogen([{ url: 'ftp://alpha.com/a' }]), field: /url/ },
  {
    name: 'a URL over 2048 characters',
    request: octogen([{ url: `https://alpha.com/${'p'.repeat(2100)}` }]),
    field: /url/,
    says: /2048/,
  },
  {
    name: 'a catalog over 200 characters',
    request: octogen([{ uuid: UUID, catalog: 'c'.repeat(201) }]),
    field: /catalog/,
    says: /200/,
  },
  { name: 'both uuid and url', request: octogen([{ uuid: UUID, url: products[0]!.url }]), field: /url and uuid/ },
  { name: 'neither uuid nor url', request: octogen([{ catalog: 'alpha' }]), field: /neither url nor uuid/ },
  { name: 'a malformed uuid', request: octogen([{ uuid: 'nope' }]), field: /uuid/ },
  { name: 'an unknown Octogen field', request: octogen([{ uuid: UUID, sku: 1 }]), field: /sku/ },
  {
    name: 'the same Octogen product twice',
    request: octogen([ok, { uuid: products[1]!.uuid }, ok]),
    field: /targets\[2\]/,
    says: /targets\[0\]/,
  },
  // Insider's records (seed 003): item_id + locale, at least one typed update field, 512 KB a record.
  {
    name: 'an Insider record over 512 KB',
    request: insider([item('big', { product_attributes: { material: 'y'.repeat(600_000) } })]),
    field: /512000/,
    says: /shorten/,
  },
  { name: 'an item_id over 128 characters', request: insider([item('i'.repeat(129))]), field: /item_id/, says: /128/ },
  {
    name: 'a name over 512 characters',
    request: insider([item('a', { name: 'n'.repeat(513) })]),
    field: /name/,
    says: /512/,
  },
  {
    name: 'a description over 1024 characters',
    request: insider([item('a', { description: 'd'.repeat(1025) })]),
    field: /description/,
    says: /1024/,
  },
  {
    name: 'an image_url with a space',
    request: insider([item('a', { image_url: 'https://x.com/a b.jpg' })]),
    field: /image_url/,
  },
  { name: 'a price that is not a number', request: insider([item('a', { price: { USD: '40.9' } })]), field: /price/ },
  { name: 'in_stock that is not an integer', request: insider([item('a', { in_stock: 0.5 })]), field: /in_stock/ },
  { name: 'a category that is not strings', request: insider([item('a', { category: [1] })]), field: /category/ },
  { name: 'no update field', request: insider([item('a', {})]), field: /no update field/ },
  { name: 'a malformed locale', request: insider([{ item_id: 'a', locale: 'english', in_stock: 1 }]), field: /locale/ },
  {
    name: 'a lone surrogate deep in product_attributes',
    request: insider([item('a', { product_attributes: { notes: ['fine', 'x\uD83D'] } })]),
    field: /product_attributes/,
    says: /Unicode/,
  },
  {
    name: 'a lone surrogate in a product_attributes key',
    request: insider([item('a', { product_attributes: { ['k\uDFFF']: 1 } })]),
    field: /product_attributes/,
  },
  {
    name: '10,000-level nesting in product_attributes',
    request: insider([item('a', { product_attributes: JSON.parse(DEEP) as unknown })]),
    raw: (key) =>
      `{"provider":"insider","key":"${key}","targets":[{"item_id":"a","locale":"en_US","product_attributes":${DEEP}}]}`,
    field: /nest|deep/,
  },
  {
    name: 'the same item_id:locale twice',
    request: insider([item('a'), item('b'), item('a', { in_stock: 0 })]),
    field: /targets\[2\]/,
    says: /a:en_US.*targets\[0\]/,
  },
  // The request itself.
  { name: 'no targets', request: octogen([]), field: /targets/ },
  {
    name: 'an unknown provider',
    request: { provider: 'nope', targets: [ok] },
    field: /provider/,
    says: /octogen, insider/,
  },
  {
    name: 'targets and targetsRef both',
    request: octogen([ok], { targetsRef: { url: 'https://x.com/a' } }),
    field: /targets/,
  },
  { name: 'an unknown request field', request: octogen([ok], { priority: 1 }), field: /priority/ },
];

describe('every class of bad input is refused before anything starts', () => {
  it.each(CASES)('$name: the library refuses it in one line', async (c) => {
    const key = uniqueKey('lib');
    refusedKeys.push(key);
    const message = await libraryRefuses({ key, ...c.request });
    expect(message).toMatch(c.field);
    if (c.says) expect(message).toMatch(c.says);
  });

  it.each(CASES)('$name: the HTTP front answers 4xx naming it', async (c) => {
    const key = uniqueKey('http');
    refusedKeys.push(key);
    expect(await httpRefuses({ key, ...c.request }, c.raw?.(key))).toMatch(c.field);
  });

  it('gives the same line through checkSyncRequest, startSync and its own message: one function', () => {
    for (const c of CASES) {
      let line: string | undefined;
      try {
        const checked = checkSyncRequest(c.request);
        line = checked.problems[0]?.message;
      } catch (err) {
        line = (err as Error).message;
      }
      expect(line, c.name).toMatch(c.field);
    }
  });

  it('refuses any single corrupted field of a valid target (fast-check), in one line, through the library and HTTP', async () => {
    const corrupt = fc.constantFrom('\uD800', 'a\u0000b', 'with space', 'x'.repeat(3000), '', 12, null, [], {
      nested: true,
    });
    const base = fc.oneof(
      fc.record({
        provider: fc.constant('octogen'),
        field: fc.constantFrom('uuid', 'url', 'catalog'),
      }),
      fc.record({
        provider: fc.constant('insider'),
        field: fc.constantFrom('item_id', 'locale', 'name', 'url', 'image_url', 'description', 'brand', 'price'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(base, corrupt, fc.boolean(), async ({ provider, field }, value, viaHttp) => {
        const target: Record<string, unknown> =
          provider === 'octogen'
            ? { url: 'https://alpha.com/products/p1', catalog: 'alpha' }
            : item('p1', { name: 'Shirt', url: 'https://shop.example/p1' });
        if (provider === 'octogen' && field === 'uuid') {
          delete target.url;
        }
        target[field] = value;
        // A few corruptions are valid for some fields (an empty catalog is not, a space in a name is).
        const valid = (() => {
          try {
            return checkSyncRequest({ provider, targets: [target] }).problems.length === 0;
          } catch {
            return false;
          }
        })();
        fc.pre(!valid);
        const key = uniqueKey('prop');
        refusedKeys.push(key);
        const message = viaHttp
          ? await httpRefuses({ provider, key, targets: [target] })
          : await libraryRefuses({ provider, key, targets: [target] });
        expect(message.length).toBeGreaterThan(10);
      }),
      { numRuns: 60 },
    );
  });
});

describe('sizes: 1x, 10x and 100x of each documented limit', () => {
  const bigRecord = (bytes: number) => item('big', { product_attributes: { m: 'y'.repeat(bytes) } });

  it('an Insider record: at the limit it is taken; 10x and 100x are refused, naming 512000 bytes', async () => {
    const overhead = JSON.stringify(bigRecord(0)).length;
    expect(checkSyncRequest(insider([bigRecord(512_000 - overhead)])).problems).toEqual([]);
    expect(checkSyncRequest(insider([bigRecord(512_001 - overhead)])).problems[0]?.code).toBe('target_too_large');
    for (const times of [10, 100]) {
      const key = uniqueKey(`record-${times}x`);
      refusedKeys.push(key);
      expect(await libraryRefuses(insider([bigRecord(512_000 * times)], { key }))).toMatch(/512000/);
    }
    // Over HTTP: 10x fits the body limit and is answered target by target; 100x is cut at the door.
    const ten = await post('/v1/syncs', JSON.stringify(insider([bigRecord(5_120_000)])));
    expect(ten.status).toBe(400);
    expect(refusalText(ten)).toMatch(/512000/);
    const hundred = await announce('/v1/syncs', 51_300_000, '{"provider":"insider","targets":[');
    expect(hundred.status).toBe(413);
    expect(refusalText(hundred)).toMatch(/targetsRef/);
  });

  it('inline targets: 1x, 10x and 100x over 1,000,000 are refused by count, before any target is read', async () => {
    for (const count of [1_000_001, 10_000_001, 100_000_001]) {
      // Sparse: the refusal must come from the count alone, never from walking the targets.
      const targets = new Array<unknown>(count);
      const key = uniqueKey('count');
      refusedKeys.push(key);
      expect(await libraryRefuses(octogen(targets, { key }))).toMatch(/1000000/);
    }
  });

  it('the HTTP request body: 1x, 10x and 100x its limit answer 413 naming the limit and targetsRef', async () => {
    for (const times of [1, 10, 100]) {
      const answer = await announce('/v1/syncs', 16 * 1024 * 1024 * times + 1, '{"provider":"octogen","targets":[');
      expect(answer.status).toBe(413);
      const text = refusalText(answer);
      expectOneLine(text);
      expect(text).toMatch(/MiB|bytes/);
      expect(text).toMatch(/targetsRef/);
    }
  });

  it('re-submissions: 1x, 10x and 100x the item limit are refused naming it; the sync stays open and correct', async () => {
    const items = (n: number) => Array.from({ length: n }, () => ({ target: { uuid: UUID } }));
    for (const times of [1, 10, 100]) {
      const n = MAX_ITEMS_PER_RESUBMISSION * times + 1;
      const err = await resubmit(t.client, openSync, items(n)).then(
        () => new Error('taken'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SyncRequestError);
      expectOneLine((err as Error).message);
      expect((err as Error).message).toMatch(/2,000|2000/);
      const answer =
        times === 100
          ? await announce(
              `/v1/syncs/${encodeURIComponent(openSync)}/resubmit`,
              JSON.stringify({ items: items(n) }).length,
              '{"items":[',
            )
          : await post(`/v1/syncs/${encodeURIComponent(openSync)}/resubmit`, JSON.stringify({ items: items(n) }));
      expect([400, 413]).toContain(answer.status);
      expectOneLine(refusalText(answer));
    }
    // Bytes: one item over the re-submission's byte limit.
    const heavy = [{ target: { url: `https://alpha.com/${'p'.repeat(2000)}` } }];
    const bytesErr = await resubmit(
      t.client,
      openSync,
      Array.from({ length: Math.ceil(MAX_RESUBMISSION_BYTES / 2000) + 5 }, () => heavy[0]!),
    ).then(
      () => new Error('taken'),
      (e: unknown) => e,
    );
    expect(bytesErr).toBeInstanceOf(SyncRequestError);
    const report = await getStatus(t.client, openSync);
    expect(report.phase).toBe('open');
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1, pending: 0 });
  });

  it('a re-submission whose every item is refused is answered item by item, and the sync stays open', async () => {
    const answer = await resubmit(t.client, openSync, [
      { target: { url: 'https://alpha.com/a b' } },
      { fixes: 't1', target: { uuid: UUID } },
      { target: { uuid: UUID, url: 'https://alpha.com/x' } },
    ]);
    expect(answer.taken).toEqual([]);
    expect(answer.refused.map((r) => r.index)).toEqual([0, 1, 2]);
    for (const r of answer.refused) expectOneLine(r.message);
    const report = await getStatus(t.client, openSync);
    expect(report.phase).toBe('open');
  });
});

describe('partly bad inline requests', () => {
  it('start with the rest: the library lists the refused targets at once, and none of them is ever sent', async () => {
    sim.reset();
    const bad = { url: 'https://alpha.com/products/a b' };
    const started = await startSync(
      t.client,
      { provider: 'octogen', targets: [{ uuid: products[7]!.uuid }, bad], options: { resubmissionWindow: '0s' } },
      workQueue,
    );
    expect(started.rejected).toEqual([{ index: 1, code: 'invalid_target', message: expect.stringMatching(/url/) }]);
    const { report } = await awaitReport(t.client, started.workflowId);
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
    expect(report.rejected).toEqual([
      expect.objectContaining({ id: 't1', code: 'invalid_target', origin: 'validation' }),
    ]);
    expect(JSON.stringify(sim.requests.map((r) => r.body))).not.toContain('a b');
  });
});

describe('by reference', () => {
  it('rejects the later of two targets naming the same product as duplicate_target, naming the first line; sends it once', async () => {
    const file = path.join(dir, 'dup-ref.ndjson');
    const uuid = products[5]!.uuid;
    writeFileSync(
      file,
      `${[{ uuid }, { uuid: products[6]!.uuid }, { uuid }].map((x) => JSON.stringify(x)).join('\n')}\n`,
    );
    sim.reset();
    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targetsRef: { file }, options: { resubmissionWindow: '0s' } },
      workQueue,
    );
    const { report } = await awaitReport(t.client, workflowId);
    expect(report.counts).toMatchObject({ submitted: 3, accepted: 2, rejected: 1, pending: 0 });
    expect(report.rejected).toEqual([
      expect.objectContaining({
        id: 't2',
        line: 3,
        code: 'duplicate_target',
        message: expect.stringMatching(/line 1/),
      }),
    ]);
    const sent = sim.requests.flatMap((r) => (r.body as { targets: { uuid?: string }[] }).targets.map((x) => x.uuid));
    expect(sent.filter((u) => u === uuid)).toHaveLength(1);
  });
});

describe('the CLI: one catalog-sync: line with a fix, a non-zero exit, nothing started', () => {
  const env = () => ({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
    CATALOG_SYNC_TASK_QUEUE: refuseQueue,
  });
  const file = (name: string, lines: unknown[]) => {
    const p = path.join(dir, name);
    writeFileSync(p, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    return p;
  };
  const expectOneCliLine = (stderr: string, says: RegExp) => {
    const lines = stderr.trimEnd().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^catalog-sync: /);
    expect(lines[0]).toMatch(says);
  };

  it('refuses bad flags and bad files at once, each in one line', async () => {
    const good = file('good.ndjson', [ok]);
    const dup = file('dup.ndjson', [ok, { uuid: products[1]!.uuid }, ok]);
    const big = file('big.ndjson', [bigInsider()]);
    const cases: [string[], RegExp][] = [
      [['submit', '--provider', 'octogen', '--targets', good, '--window', '999999999h'], /--window .*30d/],
      [['submit', '--provider', 'octogen', '--targets', good, '--batch-size', '501'], /--batch-size 501 .*500/],
      [['submit', '--provider', 'octogen', '--targets', dup, '--allow-invalid'], /dup\.ndjson line 3: .*line 1/],
      [['submit', '--provider', 'insider', '--targets', big], /big\.ndjson line 1: .*512000/],
      [['resubmit', '', '--targets', good], /sync id is empty/],
      [['status', 'catalog-sync-octogen-x/slice-1'], /slice of sync/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, env())));
    results.forEach((r, i) => {
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stdout).toBe('');
      expectOneCliLine(r.stderr, cases[i]![1]);
    });
  });

  it('exits non-zero when a re-submission takes nothing, and says a closed sync is closed', async () => {
    const bad = file('bad-fix.ndjson', [{ url: 'https://alpha.com/a b' }]);
    const refused = await runCli(['resubmit', openSync, '--targets', bad], {
      ...env(),
      CATALOG_SYNC_TASK_QUEUE: workQueue,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toMatch(/taken 0, refused 1/);
    expectOneCliLine(refused.stderr, /nothing was taken/);

    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targets: [{ uuid: products[2]!.uuid }], options: { resubmissionWindow: '0s' } },
      workQueue,
    );
    await awaitReport(t.client, workflowId);
    const [again, finished] = await Promise.all([
      runCli(['resubmit', workflowId, '--targets', bad], env()),
      runCli(['finish', workflowId], env()),
    ]);
    for (const r of [again, finished]) {
      expect(r.code).not.toBe(0);
      expectOneCliLine(r.stderr, /is closed \(completed\)/);
    }
  });

  it('a worker that cannot reach Temporal says so in one line', async () => {
    const r = await runCli(['worker'], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      OCTOGEN_PLATFORM_API_KEY: 'k',
      INSIDER_PARTNER_NAME: 'p',
      INSIDER_REQUEST_TOKEN: 't',
    });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('catalog-sync: '))).toEqual([
      expect.stringMatching(/cannot reach the Temporal server at 127\.0\.0\.1:1: start one/),
    ]);
    expect(r.stderr).not.toMatch(/TransportError|tonic/);
  });
});

function bigInsider() {
  return item('big', { product_attributes: { m: 'y'.repeat(600_000) } });
}

describe('after every case', () => {
  it('no sync was started by any refused request', async () => {
    expect(refusedKeys.length).toBeGreaterThan(CASES.length);
    await expectNothingStarted();
  });
});
