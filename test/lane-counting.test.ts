/**
 * A lane's targets are counted once, however often a lane reports them. Found by `npm run chaos`
 * (insider, seed 1414, run seed 1022958491: 3,000 submitted, 3,322 accepted): a lane run heartbeated
 * its page with none of it done before its first batch, so a run killed before its next heartbeat
 * reached the server was retried from the start of its page, sent the batches earlier runs had
 * answered again, and reported them accepted again; the workflow added them a second time.
 *
 * The activity (MockActivityEnvironment, a fake kit): its first heartbeat keeps its place, and a
 * retry from any heartbeat sends nothing already answered. The workflow (time-skipping server,
 * mocked sendLane and sendBatch): a lane result that names targets an earlier result settled (as
 * the retried run above did, hand-offs to the sender included) counts each of them once.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BatchAnswer, ScanInput, SendBatchInput } from '../activities/index.ts';
import { createLaneActivity, type LaneKit } from '../activities/lane.ts';
import { insider } from '../activities/providers/insider.ts';
import {
  countsAddUp,
  packPages,
  providerTaskQueue,
  type LaneInput,
  type LaneProgress,
  type LaneResult,
  type SliceRef,
  type SyncReport,
} from '../contracts/index.ts';
import { temporalTestServerPath } from '../scripts/temporal-bin.ts';
import type { syncWorkflow } from '../workflows/index.ts';

const page = (index: number, firstSeq: number, count: number): SliceRef => ({
  index,
  firstSeq,
  count,
  start: firstSeq * 100,
  end: (firstSeq + count) * 100,
  firstLine: firstSeq + 1,
});

describe('the lane activity keeps its place', () => {
  const PAGE = page(0, 0, 12);
  const config = { baseUrl: 'http://unused', partnerName: 'p', token: 't', maxRecords: 4, requestsPerMinute: 60 };

  /** A fake kit over one page of 12 Insider updates, 4 a call (3 batches); every call accepted. */
  function kit(sent: number[][]): LaneKit {
    return {
      adapter: () => insider,
      config: () => config,
      readPage: async (_ref, p) =>
        Array.from({ length: p.count }, (_, i) => ({
          seq: p.firstSeq + i,
          line: p.firstLine + i,
          target: { item_id: `item-${p.firstSeq + i}`, locale: 'en_US', in_stock: 1 },
        })),
      limits: async () => insider.limits(config),
      send: async (_adapter, _config, targets, _batch, _beat, cap) => {
        cap.onCall?.();
        sent.push(targets.map((t) => Number((t as { item_id: string }).item_id.slice(5))));
        return { httpStatus: 200, outcomes: targets.map(() => ({ state: 'accepted' as const })) };
      },
      mark: () => undefined,
      echo: (_adapter, target) => target,
      clip: (m) => m,
      record: async () => undefined,
      unchanged: async () => [],
    };
  }

  const input = (cursor?: LaneInput['cursor']): LaneInput => ({
    provider: 'insider',
    ref: { file: '/unused.ndjson' },
    pages: [PAGE],
    ...(cursor ? { cursor } : {}),
    lane: 0,
    callAttempts: 3,
    callInitialMs: 10,
    callMaximumMs: 100,
  });

  it('names what its page has done in its first heartbeat, so a retry from it sends nothing twice', async () => {
    // An earlier run answered the page's first batch (targets 0-3); this run goes on from there.
    const sent: number[][] = [];
    const beats: LaneProgress[] = [];
    const first = new MockActivityEnvironment({ attempt: 1 });
    first.on('heartbeat', (d: LaneProgress) => beats.push(structuredClone(d)));
    const r1: LaneResult = await first.run(createLaneActivity(kit(sent)), input({ page: 0, done: [[0, 4]] }));
    expect(sent).toEqual([[4, 5, 6, 7]]);
    expect(beats.length).toBeGreaterThan(0);
    for (const beat of beats) expect(beat.cursor.done[0]).toEqual([0, expect.any(Number)]);

    // The worker died once the run's first heartbeat reached the server: the retry resumes from it.
    const resent: number[][] = [];
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: beats[0] });
    const r2: LaneResult = await retry.run(createLaneActivity(kit(resent)), input({ page: 0, done: [[0, 4]] }));
    expect(resent).toEqual([[4, 5, 6, 7]]);
    expect(r2.accepted).toBe(4);
    expect(r1.acceptedSeqs).toEqual([[4, 8]]);
    expect(r2.acceptedSeqs).toEqual([[4, 8]]);
    expect(r2.cursor).toEqual({ page: 0, done: [[0, 8]] });
  });

  it('resumes a retried run from its last heartbeat with the same accepted ranges', async () => {
    const sent: number[][] = [];
    const beats: LaneProgress[] = [];
    const first = new MockActivityEnvironment({ attempt: 1 });
    first.on('heartbeat', (d: LaneProgress) => beats.push(structuredClone(d)));
    await first.run(createLaneActivity(kit(sent)), input({ page: 0, done: [[0, 8]] }));
    const last = beats[beats.length - 1] as LaneProgress;
    expect(last.cursor.done).toEqual([[0, 12]]);
    // A retry from the last heartbeat (the answer reached the server, the result did not): nothing goes again.
    const resent: number[][] = [];
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const r: LaneResult = await retry.run(createLaneActivity(kit(resent)), input({ page: 0, done: [[0, 8]] }));
    expect(resent).toEqual([]);
    expect(r.done).toBe(true);
    expect(r.accepted).toBe(4);
    expect(r.acceptedSeqs).toEqual([[8, 12]]);
  });
});

describe('the workflow counts a lane target once', () => {
  let env: TestWorkflowEnvironment;

  beforeAll(async () => {
    const path = temporalTestServerPath();
    if (!path) throw new Error('the time-skipping test server is not installed: run `npm run install-temporal`');
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
  });
  afterAll(async () => {
    await env?.teardown();
  });

  const PAGES = [page(0, 0, 500), page(1, 500, 500)];
  const base = (r: Partial<LaneResult>): LaneResult => ({
    cursor: { page: 0, done: [] },
    accepted: 0,
    outcomes: [],
    failures: [],
    transient: [],
    tooLarge: [],
    calls: [],
    callCount: 0,
    done: false,
    ...r,
  });
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('counts targets a retried lane run reports again (answers and hand-offs) once', async () => {
    const laneInputs: LaneInput[] = [];
    // Run 1: targets 0-199 answered (5 with a warning, 10 rejected), 200-299 too large: handed to the workflow.
    // Run 2 was retried from a heartbeat behind its place: it reports run 1's targets again, then 300-399.
    // Run 3: the rest of the share.
    const results: LaneResult[] = [
      base({
        cursor: { page: 0, done: [[0, 300]] },
        accepted: 199,
        acceptedSeqs: [
          [0, 10],
          [11, 200],
        ],
        outcomes: [
          { seq: 5, state: 'warning', message: 'attribute chaos_attr is not defined' },
          { seq: 10, state: 'rejected', code: 'item_not_found', message: 'no such item', origin: 'provider' },
        ],
        tooLarge: [range(200, 300)],
        callCount: 2,
      }),
      base({
        cursor: { page: 0, done: [[0, 400]] },
        accepted: 299,
        acceptedSeqs: [
          [0, 10],
          [11, 200],
          [300, 400],
        ],
        outcomes: [
          { seq: 5, state: 'warning', message: 'attribute chaos_attr is not defined' },
          { seq: 10, state: 'rejected', code: 'item_not_found', message: 'no such item', origin: 'provider' },
        ],
        tooLarge: [range(200, 300)],
        callCount: 4,
      }),
      base({ cursor: { page: 2, done: [] }, accepted: 600, acceptedSeqs: [[400, 1000]], callCount: 2, done: true }),
    ];
    const sentBySender: number[] = [];
    const activities = {
      async scanSource(_input: ScanInput): Promise<{ total: number; pages: ReturnType<typeof packPages> }> {
        return { total: 1000, pages: packPages(PAGES, 500) };
      },
      async sendLane(input: LaneInput): Promise<LaneResult> {
        laneInputs.push(input);
        const r = results[laneInputs.length - 1];
        if (!r) throw new Error(`lane run ${laneInputs.length} was not expected`);
        return r;
      },
      async sendBatch(input: SendBatchInput): Promise<BatchAnswer> {
        if (input.targets.kind !== 'ref') throw new Error('lane hand-offs go by reference');
        const seqs = input.targets.seqs.flatMap(([a, b]) => range(a, b));
        sentBySender.push(...seqs);
        return { httpStatus: 200, outcomes: seqs.map(() => ({ state: 'accepted' as const })) };
      },
    };
    const taskQueue = `lane-count-${randomUUID()}`;
    const workers = [
      await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: { codePath: inject('workflowBundlePath') },
        activities: { scanSource: activities.scanSource },
      }),
      await Worker.create({
        connection: env.nativeConnection,
        taskQueue: providerTaskQueue(taskQueue, 'mock'),
        activities: { sendLane: activities.sendLane, sendBatch: activities.sendBatch },
      }),
    ];
    const execution = env.client.workflow.execute<typeof syncWorkflow>('syncWorkflow', {
      taskQueue,
      workflowId: `lane-count-${randomUUID()}`,
      args: [
        {
          provider: 'mock',
          source: { kind: 'ref', ref: { file: '/unused.ndjson' } },
          options: { concurrency: 1, resubmissionWindow: '0s' },
        },
      ],
    });
    await Promise.all(workers.map((w) => w.runUntil(execution.catch(() => undefined))));
    const report: SyncReport = await execution;

    expect(report.counts).toMatchObject({ submitted: 1000, accepted: 999, rejected: 1, failed: 0, pending: 0 });
    expect(countsAddUp(report.counts)).toBe(true);
    expect(report.warnings).toHaveLength(1);
    // The hand-off went to the sender once; the third run went on from the furthest place.
    expect(sentBySender.sort((a, b) => a - b)).toEqual(range(200, 300));
    expect(laneInputs[2]?.cursor).toEqual({ page: 0, done: [[0, 400]] });
  });
});
