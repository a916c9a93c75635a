/**
 * A changed-only lane retried after a failed store write (found by `npm run chaos`, "state store:
 * sqlite disk full mid-sync", CHAOS_SEED=20261207, run seed 297855605: 156 changed targets, all
 * taken by the provider, but `accepted 154, unchanged 2846`): a write failed while a later one,
 * already issued, landed. A lane now records each answer before its next call, but a run can
 * still be retried from behind what the store has (a crash before its heartbeat reached the
 * server). The run is retried from what the store had before the failed write, and its
 * changed-only lookup finds the later batches' content already recorded, by this sync. The store
 * answers a sync's lookup without that sync's own acceptances (acceptedHashes' exceptSync), so the
 * retry sends those targets again and counts them accepted, never "unchanged (not sent)".
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

/**
 * 12 Octogen targets (version v2), 4 a call; `store` maps an item to its last accepted content and
 * the sync that recorded it, and answers lookups as the real store does
 * (TargetStateStore.acceptedHashes with exceptSync: this sync's own acceptances are not unchanged;
 * test/state-store.test.ts checks that rule on SQLite and PostgreSQL).
 */
const SYNC = 'this-sync';
type Accepted = { content: string; sync: string };
function kit(store: Map<string, Accepted>, sent: number[][], failFirstWrite: boolean): LaneKit {
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
      for (const i of items) {
        if (i.state === 'accepted') store.set(identity(i.target), { content: JSON.stringify(i.target), sync: SYNC });
      }
    },
    unchanged: async (_adapter, _config, items) =>
      items
        .filter((i) => {
          const last = store.get(i.identity);
          return last !== undefined && last.sync !== SYNC && last.content === JSON.stringify(i.target);
        })
        .map((i) => i.seq),
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

describe('changed-only lane retried after a failed write', () => {
  it('counts the targets this sync sent and recorded as accepted on the retry, never unchanged', async () => {
    // Every item's accepted content is older (v1): all 12 targets have changed.
    const store = new Map<string, Accepted>(
      Array.from({ length: 12 }, (_, i) => [
        identity(target(i, 'v1')),
        { content: JSON.stringify(target(i, 'v1')), sync: 'an-earlier-sync' },
      ]),
    );
    const sent: number[][] = [];
    const beats: LaneProgress[] = [];
    const first = new MockActivityEnvironment({ attempt: 1 });
    first.on('heartbeat', (d: LaneProgress) => beats.push(structuredClone(d)));
    await expect(first.run(createLaneActivity(kit(store, sent, true)), input)).rejects.toThrow(/disk is full/);
    // Batch 1's write failed before batch 2 went: the run stopped at once, nothing else sent.
    expect(sent).toEqual([[0, 1, 2, 3]]);
    const last = beats[beats.length - 1];
    expect(last?.cursor.done ?? []).toEqual([]);

    // The retry resumes from the last heartbeat: nothing done.
    const resent: number[][] = [];
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const r: LaneResult = await retry.run(createLaneActivity(kit(store, resent, false)), input);
    // Every target goes again (the two recorded batches too: at least once per batch), and none is
    // reported "unchanged (not sent)": this sync sent them all, and the provider accepted them.
    expect(resent).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10, 11],
    ]);
    expect(r.accepted).toBe(12);
    expect(r.unchanged).toBe(0);
  });
});
