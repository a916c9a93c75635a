/**
 * Bounded by construction, through the real server and the Octogen simulator: syncs whose every
 * target is rejected (10,000 in one slice, 100,000 fanned out) close with reports under their byte
 * budget and complete paged lists; re-submissions over their limits are refused naming the limit
 * and the sync stays open and correct; and no history of any of these syncs holds a payload over
 * 256 KB.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  SyncRequestError,
  awaitFirstPass,
  awaitReport,
  finish,
  getStatus,
  listRejected,
  resubmit,
  startSync,
} from '../client/index.ts';
import { formatReport, formatResubmission } from '../cli/format.ts';
import { buildHttpFront } from '../http/http-front.ts';
import {
  ANSWER_BYTES,
  MAX_ITEMS_PER_RESUBMISSION,
  REPORT_BYTES,
  countsAddUp,
  jsonBytes,
  resubmitSignal,
  resubmitUpdate,
  type SliceRef,
  type SyncReport,
} from '../contracts/index.ts';
import { packPages, unpackPages } from '../contracts/pages.ts';
import { makeInsiderItems, startInsiderSimulator } from '../simulators/insider.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { scanHistories } from './helpers/histories.ts';
import { connectTestEnv, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'bounds-test-key';
const products = makeOctogenProducts('alpha', 10);

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let dir: string;
/** Every task queue these tests ran syncs on: their histories are scanned at the end. */
const taskQueues: string[] = [];
const workerEnv = () => ({ OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY });
const run = <T>(fn: (taskQueue: string) => Promise<T>, env: Record<string, string> = workerEnv()): Promise<T> => {
  const taskQueue = uniqueTaskQueue('bounds');
  taskQueues.push(taskQueue);
  return withWorker(t, { env, taskQueue }, fn);
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-bounds-'));
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => sim.reset());

const writeNdjson = (name: string, lines: unknown[]): string => {
  const file = path.join(dir, name);
  writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return file;
};

/** A report is under its budget, adds up, and says where the rest of its lists are. */
function expectBounded(report: SyncReport) {
  expect(jsonBytes(report)).toBeLessThanOrEqual(REPORT_BYTES);
  expect(countsAddUp(report.counts)).toBe(true);
  const listed = report.rejected.length + report.failed.length;
  const elsewhere = (report.rejectedElsewhere ?? []).reduce((n, x) => n + x.count, 0);
  if (report.counts.pending === 0) {
    expect(listed + elsewhere).toBe(report.counts.rejected + report.counts.failed);
  }
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

describe('a sync whose every target is rejected', () => {
  it('10,000 provider rejections in one slice: status, re-submission, finish, result and a complete paged list', async () => {
    const targets = Array.from({ length: 10_000 }, (_, i) => ({
      url: `https://alpha.com/products/missing-${i}?${'x'.repeat(100)}`,
    }));
    const file = writeNdjson('missing.ndjson', targets);
    const out = await run(async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targetsRef: { file }, options: { resubmissionWindow: '10m' } },
        taskQueue,
      );
      const during: SyncReport[] = [];
      const first = await awaitFirstPass(t.client, workflowId, { pollMs: 100, onProgress: (r) => during.push(r) });
      // The HTTP front answers GET on it while it is open and after it closes (its report is bounded).
      const api = await buildHttpFront({ client: t.client, taskQueue, tokens: ['operator-token'] });
      const httpGet = () =>
        api.inject({
          method: 'GET',
          url: `/v1/syncs/${workflowId}`,
          headers: { authorization: 'Bearer operator-token' },
        });
      const httpOpen = await httpGet();
      // A rejection the report had no room for is still the sync's own: it can be fixed by id.
      const fixed = await resubmit(t.client, workflowId, [{ fixes: 't9999', target: { uuid: products[2]!.uuid } }]);
      await finish(t.client, workflowId);
      const outcome = await awaitReport(t.client, workflowId);
      const after = await getStatus(t.client, workflowId);
      const all = await listRejected(t.client, workflowId);
      const httpClosed = await httpGet();
      await api.close();
      return { workflowId, during, first: first.report, fixed, outcome, after, all, httpOpen, httpClosed };
    });
    for (const answer of [out.httpOpen, out.httpClosed]) expect(answer.statusCode).toBe(200);
    expect((out.httpOpen.json() as SyncReport).counts).toMatchObject({ submitted: 10_000, rejected: 10_000 });
    expect((out.httpClosed.json() as SyncReport).phase).toBe('closed');
    expect(out.outcome.abortReason).toBeUndefined();
    expect(out.first.counts).toMatchObject({ submitted: 10_000, rejected: 10_000, pending: 0 });
    expect(out.first.rejected.some((r) => r.id === 't9999')).toBe(false);
    expect(out.fixed).toEqual({ taken: [{ index: 0, id: 't10000', supersedes: 't9999' }], refused: [] });
    const { report } = out.outcome;
    expect(report.phase).toBe('closed');
    expect(report.closedReason).toBe('finished');
    expect(report.counts).toMatchObject({ submitted: 10_001, accepted: 1, superseded: 1, rejected: 9_999, pending: 0 });
    expect(out.during.length).toBeGreaterThan(0);
    for (const r of [...out.during, out.first, report, out.after]) expectBounded(r);
    // The sync keeps what its report had no room for, and names itself as where it is.
    expect(report.omitted?.rejected).toBeGreaterThan(0);
    expect(report.rejectedElsewhere).toEqual([
      { workflowId: out.workflowId, count: report.omitted?.rejected, warnings: 0 },
    ]);
    expect(out.after.counts).toEqual(report.counts);
    // The complete list: every id exactly once, each with its echo and the provider's code.
    expect(out.all.rejected.map((r) => r.id)).toEqual(ids(9_999));
    expect(out.all.rejected.every((r) => r.code === 'product_not_found')).toBe(true);
    // Every one names its line; echoes are what a lane's result drops first, from each batch's end.
    expect(out.all.rejected.every((r, i) => r.line === i + 1)).toBe(true);
    expect(out.all.rejected[0]?.target).toEqual(targets[0]);
    const echoed = out.all.rejected.filter((r, i) => JSON.stringify(r.target) === JSON.stringify(targets[i]));
    expect(echoed.length).toBeGreaterThan(5_000);
    // The text report prints, names what it left out and how to list everything.
    const text = formatReport(out.workflowId, report, 'http://ui');
    expect(text).toMatch(/left out of this report/);
    expect(text).toMatch(/listRejected/);
  });

  it('100,000 validation rejections fanned out: closes with a complete paged list', async () => {
    const file = writeNdjson(
      'invalid.ndjson',
      Array.from({ length: 100_000 }, (_, i) => ({ uuid: `not-a-uuid-${i}` })),
    );
    const out = await run(async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        // 12 slices, 4 a run: the sync continues as new twice, carrying its state.
        {
          provider: 'octogen',
          targetsRef: { file },
          options: { resubmissionWindow: '0s', sliceSize: 10_000, slicesPerRun: 4 },
        },
        taskQueue,
      );
      const outcome = await awaitReport(t.client, workflowId);
      const after = await getStatus(t.client, workflowId);
      const all = await listRejected(t.client, workflowId);
      return { outcome, after, all };
    });
    const { report } = out.outcome;
    expect(report.phase).toBe('closed');
    expect(report.counts).toMatchObject({ submitted: 100_000, rejected: 100_000, pending: 0 });
    expectBounded(report);
    expectBounded(out.after);
    expect(report.rejectedElsewhere?.length).toBeGreaterThan(1);
    expect(out.all.rejected.map((r) => r.id)).toEqual(ids(100_000));
    expect(out.all.rejected.every((r) => r.code === 'invalid_target')).toBe(true);
    expect(sim.requests).toHaveLength(0);
  });

  it('carries its pages across continue-as-new in a few bytes each, exactly', () => {
    // By reference: blank lines between pages, a short last page; inline: back to back.
    const byRef: SliceRef[] = [
      { index: 0, firstSeq: 0, count: 1000, start: 0, end: 51_000, firstLine: 1 },
      { index: 1, firstSeq: 1000, count: 1000, start: 51_002, end: 103_000, firstLine: 1003 },
      { index: 2, firstSeq: 2000, count: 7, start: 103_000, end: 103_400, firstLine: 2003 },
    ];
    const inline: SliceRef[] = [0, 1, 2].map((i) => ({
      index: i,
      firstSeq: i * 10,
      count: i < 2 ? 10 : 3,
      start: i * 10,
      end: i * 10 + (i < 2 ? 10 : 3),
      firstLine: i * 10 + 1,
    }));
    for (const [pages, size] of [
      [byRef, 1000],
      [inline, 10],
      [[], 10],
    ] as const) {
      expect(unpackPages(packPages([...pages], size))).toEqual(pages);
    }
    const many = Array.from({ length: 10_000 }, (_, i) => ({
      index: i,
      firstSeq: i * 1000,
      count: 1000,
      start: i * 120_000,
      end: (i + 1) * 120_000,
      firstLine: i * 1000 + 1,
    }));
    expect(jsonBytes(packPages(many, 1000))).toBeLessThan(80 * 1024);
  });
});

describe('a sync whose every target is accepted with a warning', () => {
  it('caps warnings in the report with a count and pages them all, in one slice and fanned out', async () => {
    const items = makeInsiderItems(3000);
    const insider = await startInsiderSimulator({
      partnerName: 'p',
      token: 't',
      items,
      productAttributes: ['material'],
      requestsPerMinute: Infinity,
    });
    try {
      const targets = items.map((key) => {
        const [item_id, locale] = key.split(':');
        return { item_id, locale, in_stock: 1, product_attributes: { [`undefined_attribute_${key}`]: 'x' } };
      });
      const env = {
        INSIDER_BASE_URL: insider.url,
        INSIDER_PARTNER_NAME: 'p',
        INSIDER_REQUEST_TOKEN: 't',
        INSIDER_REQUESTS_PER_MINUTE: '6000',
      };
      for (const options of [{ resubmissionWindow: '0s' }, { resubmissionWindow: '0s', sliceSize: 1000 }]) {
        const out = await run(async (taskQueue) => {
          const { workflowId } = await startSync(t.client, { provider: 'insider', targets, options }, taskQueue);
          const { report } = await awaitReport(t.client, workflowId);
          return { report, all: await listRejected(t.client, workflowId) };
        }, env);
        expect(out.report.counts).toMatchObject({ submitted: 3000, accepted: 3000 });
        expectBounded(out.report);
        expect(out.report.warnings.length).toBeLessThan(3000);
        const held = (out.report.rejectedElsewhere ?? []).reduce((n, x) => n + x.warnings, 0);
        expect(out.report.warnings.length + held).toBe(3000);
        expect(out.all.warnings.map((w) => w.id)).toEqual(ids(3000));
        expect(out.all.warnings[2999]?.message).toContain('undefined_attribute_');
      }
    } finally {
      await insider.close();
    }
  });
});

describe('an aborted sync', () => {
  it('carries a bounded report in its SyncAborted details, the rest paged from the sync', async () => {
    const lines = [
      { uuid: products[0]!.uuid },
      // One slice (10,000 targets): the sync runs it itself and keeps every entry.
      ...Array.from({ length: 9_999 }, (_, i) => ({ uuid: `not-a-uuid-${i}-${'z'.repeat(100)}` })),
    ];
    const file = writeNdjson('abort.ndjson', lines);
    const out = await run(
      async (taskQueue) => {
        const { workflowId } = await startSync(t.client, { provider: 'octogen', targetsRef: { file } }, taskQueue);
        const outcome = await awaitReport(t.client, workflowId);
        return { outcome, all: await listRejected(t.client, workflowId) };
      },
      { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: 'not-a-key' },
    );
    expect(out.outcome.abortReason).toBeDefined();
    const { report } = out.outcome;
    // t0 failed on the 401; lanes that had not reached a page yet count its targets failed, not sent.
    expect(report.counts).toMatchObject({ submitted: 10_000, pending: 0 });
    expect(report.counts.rejected + report.counts.failed).toBe(10_000);
    expect(report.counts.rejected).toBeGreaterThan(1_000);
    expectBounded(report);
    expect(report.omitted?.rejected).toBeGreaterThan(0);
    expect(out.all.failed.map((f) => f.id)).toContain('t0');
    expect(out.all.failed.filter((f) => f.id !== 't0').every((f) => f.message.startsWith('not sent'))).toBe(true);
    const listed = [...out.all.rejected, ...out.all.failed].map((r) => r.id);
    expect(listed.sort()).toEqual(ids(10_000).sort());
    expect(out.all.rejected).toHaveLength(report.counts.rejected);
  });
});

describe('a re-submission over its limits', () => {
  it('is refused naming the limit, by library, update and signal; the sync stays open and takes a valid one', async () => {
    const targets = [
      { uuid: products[0]!.uuid },
      { url: 'https://alpha.com/products/gone-1' },
      { url: 'https://alpha.com/products/gone-2' },
    ];
    const out = await run(async (taskQueue) => {
      const { workflowId } = await startSync(
        t.client,
        { provider: 'octogen', targets, options: { resubmissionWindow: '10m' } },
        taskQueue,
      );
      await awaitFirstPass(t.client, workflowId);
      const h = t.client.workflow.getHandle(workflowId);
      // 10,000 refused items (1.8 MB): the library refuses at once, naming the limits and the fix.
      const big = Array.from({ length: 10_000 }, (_, i) => ({
        fixes: 't1',
        target: { url: `https://alpha.com/products/gone-1?${'y'.repeat(150)}&n=${i}` },
      }));
      const library = await resubmit(t.client, workflowId, big).catch((e: unknown) => e);
      // Past the library (a raw client): 10,000 small items, under the byte limit, over the item limit.
      const small = { items: Array.from({ length: 10_000 }, () => ({ target: 1 })) };
      const byUpdate = await h.executeUpdate(resubmitUpdate, { args: [small] }).catch((e: unknown) => e);
      await h.signal(resubmitSignal, small);
      // The most a re-submission may carry, every item refused: answered, every index and code kept.
      const most = Array.from({ length: MAX_ITEMS_PER_RESUBMISSION }, (_, i) => ({
        fixes: `t${1_000_000 + i}`,
        target: { uuid: `bad-${i}` },
      }));
      const answer = await resubmit(t.client, workflowId, most);
      const open = await getStatus(t.client, workflowId);
      const valid = await resubmit(t.client, workflowId, [{ fixes: 't1', target: { uuid: products[1]!.uuid } }]);
      await finish(t.client, workflowId);
      const final = await awaitReport(t.client, workflowId);
      return { library, byUpdate, answer, open, valid, final };
    });
    expect(out.library).toBeInstanceOf(SyncRequestError);
    expect((out.library as Error).message).toMatch(/10,000 items, over the limit of 2,000 per re-submission; split it/);
    expect(out.byUpdate).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((out.byUpdate as WorkflowUpdateFailedError).cause?.message)).toMatch(
      /over the limit of 2,000 per re-submission/,
    );
    expect(jsonBytes(out.answer)).toBeLessThanOrEqual(ANSWER_BYTES);
    expect(out.answer.taken).toEqual([]);
    expect(out.answer.refused.map((r) => r.index)).toEqual(
      Array.from({ length: MAX_ITEMS_PER_RESUBMISSION }, (_, i) => i),
    );
    expect(out.answer.refused.every((r) => r.code === 'invalid_target' || r.code === 'unknown_target')).toBe(true);
    expect(formatResubmission(out.answer)).toMatch(/^taken 0, refused 2000/);
    // Still open and correct: the signal's refusal is in the report, capped lists say what they left out.
    expect(out.open.phase).toBe('open');
    expectBounded(out.open);
    expect(out.open.refused[0]).toMatchObject({ index: -1, code: 'invalid_resubmission' });
    expect(out.open.refused[0]?.message).toMatch(/over the limit of 2,000 per re-submission/);
    expect(out.open.refused.length + (out.open.omitted?.refused ?? 0)).toBe(1 + MAX_ITEMS_PER_RESUBMISSION);
    expect(out.valid).toEqual({ taken: [{ index: 0, id: 't3', supersedes: 't1' }], refused: [] });
    const { report } = out.final;
    expect(report.closedReason).toBe('finished');
    expect(report.counts).toMatchObject({ submitted: 4, accepted: 2, rejected: 1, superseded: 1, pending: 0 });
    expectBounded(report);
  });
});

describe('a fanned-out sync in its first pass', () => {
  it('refuses a re-submission that would overflow the state it carries across runs, saying when to re-submit', async () => {
    // Slow answers and one slice at a time: the first pass still has slices to start.
    const slow = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products, latencyMs: 400 });
    try {
      const targets = Array.from({ length: 40 }, (_, i) => ({ url: `https://alpha.com/products/gone-${i}` }));
      const out = await run(
        async (taskQueue) => {
          const { workflowId } = await startSync(
            t.client,
            { provider: 'octogen', targets, options: { sliceSize: 10, concurrency: 1, resubmissionWindow: '0s' } },
            taskQueue,
          );
          let status = await getStatus(t.client, workflowId);
          while (status.phase !== 'sending') {
            await new Promise((r) => setTimeout(r, 20));
            status = await getStatus(t.client, workflowId);
          }
          const items = Array.from({ length: MAX_ITEMS_PER_RESUBMISSION }, () => ({
            fixes: 't0',
            target: { url: 'https://alpha.com/products/gone-0' },
          }));
          const answer = await resubmit(t.client, workflowId, items);
          return { answer, final: await awaitReport(t.client, workflowId) };
        },
        { OCTOGEN_BASE_URL: slow.url, OCTOGEN_PLATFORM_API_KEY: KEY },
      );
      expect(out.answer.taken).toEqual([]);
      expect(out.answer.refused).toHaveLength(MAX_ITEMS_PER_RESUBMISSION);
      expect(out.answer.refused.every((r) => r.code === 'sync_state_full')).toBe(true);
      expect(out.answer.refused[0]?.message).toMatch(/first pass.*re-submit after the first pass has settled/);
      const { report } = out.final;
      expect(report.counts).toMatchObject({ submitted: 40, rejected: 40, pending: 0 });
      expectBounded(report);
    } finally {
      await slow.close();
    }
  });
});

describe('histories', () => {
  it('no event of any of these syncs carries a payload over 256 KB', async () => {
    const scan = await scanHistories(t.client, taskQueues);
    expect(scan.runs).toBeGreaterThanOrEqual(1 + 3 + 12 + 1 + 3 + 1 + 1 + 4);
    expect(scan.over).toEqual([]);
    expect(scan.largest?.bytes ?? 0).toBeLessThanOrEqual(256 * 1024);
  });
});
