/**
 * KNOWN BUG, reproduced (found by `npm run chaos`, "state store: sqlite disk full mid-sync",
 * CHAOS_SEED=20261207, run seed 297855605: 156 changed targets, all taken by the provider, but
 * `accepted 154, unchanged 2846`). A lane records its answers behind its sends; when one write
 * fails, a later write of the same run, already issued, can still succeed (the disk had room
 * again, the server was back). The run fails and is retried from what the store had before the
 * failed write, and the retry's changed-only lookup finds the later batches' new content already
 * recorded: it counts those targets `unchanged` (not sent), though this sync sent them and the
 * provider accepted them.
 *
 * The test pins today's behaviour so the fix (activities/lane.ts; the lookup telling "accepted by
 * this sync" from "unchanged", e.g. by the row's sync) shows up here: it must then expect
 * `unchanged 0` and every target accepted.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createLaneActivity, type LaneKit } from '../activities/lane.ts';
import { octogen } from '../activities/providers/octogen.ts';
import { deterministicUuid } from '../simulators/octogen.ts';
import type { LaneInput, LaneProgress, LaneResult, SliceRef } from '../contracts/index.ts';

const PAGE: SliceRef = { index: 0, firstSeq: 0, count: 12, start: 0, end: 1200, firstLine: 1 };
// No account budget: a run sends batch after batch (a budgeted one sends one call a run).
const config = { baseUrl: 'http://unused', apiKey: 'k' };
const uuids = Array.from({ length: 12 }, (_, i) => deterministicUuid(`changed-only-retry:${i}`));
const target = (i: number, version: string) => ({ uuid: uuids[i], version });
const seqOf = (t: unknown) => uuids.indexOf((t as { uuid: string }).uuid);
const identity = (t: unknown) => `uuid:${(t as { uuid: string }).uuid}`;

/** 12 Octogen targets (version v2), 4 a call; `store` maps an item to its last accepted content. */
function kit(store: Map<string, string>, sent: number[][], failFirstWrite: boolean): LaneKit {
  let writes = 0;
  return {
    adapter: () => octogen,
    config: () => config,
    readPage: async (_ref, p) =>
      Array.from({ length: p.count }, (_, i) => ({
        seq: p.firstSeq + i,
        line: p.firstLine + i,
        target: target(p.firstSeq + i, 'v2'),
      })),
    limits: async () => octogen.limits(config),
    send: async (_adapter, _config, targets, _batch, _beat, cap) => {
      cap.onCall?.();
      sent.push(targets.map(seqOf));
      return { httpStatus: 200, outcomes: targets.map(() => ({ state: 'accepted' as const })) };
    },
    mark: () => undefined,
    echo: (_adapter, target) => target,
    clip: (m) => m,
    // The first write fails a little later (a full disk); the ones issued behind it succeed.
    record: async (_adapter, _config, _call, items) => {
      writes += 1;
      if (failFirstWrite && writes === 1) {
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('database or disk is full');
      }
      for (const i of items) if (i.state === 'accepted') store.set(identity(i.target), JSON.stringify(i.target));
    },
    unchanged: async (_adapter, _config, items) =>
      items.filter((i) => store.get(i.identity) === JSON.stringify(i.target)).map((i) => i.seq),
  };
}

const input: LaneInput = {
  provider: 'octogen',
  batchSize: 4,
  ref: { file: '/unused.ndjson' },
  pages: [PAGE],
  lane: 0,
  callAttempts: 3,
  callInitialMs: 10,
  callMaximumMs: 100,
  changedOnly: true,
};

describe('changed-only lane retried after a failed write (KNOWN BUG)', () => {
  it('counts targets this sync sent and recorded as unchanged on the retry', async () => {
    // Every item's accepted content is older (v1): all 12 targets have changed.
    const store = new Map(
      Array.from({ length: 12 }, (_, i) => [identity(target(i, 'v1')), JSON.stringify(target(i, 'v1'))]),
    );
    const sent: number[][] = [];
    const beats: LaneProgress[] = [];
    const first = new MockActivityEnvironment({ attempt: 1 });
    first.on('heartbeat', (d: LaneProgress) => beats.push(structuredClone(d)));
    await expect(first.run(createLaneActivity(kit(store, sent, true)), input)).rejects.toThrow(/disk is full/);
    // All three batches went out; the first one's answer was not recorded, the other two were.
    expect(sent).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10, 11],
    ]);
    const last = beats[beats.length - 1];
    expect(last?.cursor.done ?? []).toEqual([]);

    // The retry resumes from the last heartbeat: nothing done.
    const resent: number[][] = [];
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const r: LaneResult = await retry.run(createLaneActivity(kit(store, resent, false)), input);
    expect(resent).toEqual([[0, 1, 2, 3]]);
    // The bug: 8 targets this sync sent and the provider accepted are reported "unchanged (not sent)".
    // Correct would be accepted 12, unchanged 0.
    expect(r.accepted).toBe(4);
    expect(r.unchanged).toBe(8);
  });
});
