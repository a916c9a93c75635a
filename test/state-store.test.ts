/**
 * The target-state store, the same suite against the embedded SQLite file and a real PostgreSQL
 * server: migrations, idempotent writes, the last accepted hash kept across a rejection, pages,
 * caller scoping, and messages that never show the URL's password.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrations } from '../activities/state/common.ts';
import { openStateStore, stateLocation, stateWhere, contentHash } from '../activities/state/index.ts';
import { MAX_CARRIED_TARGET_BYTES, type CarryQuery, type TargetOutcomeRecord } from '../contracts/target-state.ts';
import { STORE_KINDS, freshStateUrl } from './helpers/state.ts';
import { openThreadedSqliteStore } from '../activities/state/threaded.ts';
import { openSqliteStore } from '../activities/state/sqlite.ts';

const base = (over: Partial<TargetOutcomeRecord> = {}): TargetOutcomeRecord => ({
  provider: 'insider',
  account: 'acct1',
  identity: 'SKU-1/en_US',
  state: 'accepted',
  contentHash: 'h1',
  syncId: 'sync-1',
  batch: 'sync-1#1',
  at: 1_000,
  ...over,
});

describe.each(STORE_KINDS)('target-state store on %s', (kind) => {
  it('creates and migrates itself, and opening it again keeps what it holds', async () => {
    const env = { CATALOG_SYNC_STATE_URL: await freshStateUrl(kind, 'migrates') };
    const first = openStateStore(env);
    expect(await first.record([base()])).toBe(1);
    await first.close();
    const again = openStateStore(env);
    const [row] = await again.find('insider', 'SKU-1/en_US');
    expect(row).toMatchObject({ state: 'accepted', acceptedHash: 'h1', syncId: 'sync-1', at: 1_000, writes: 1 });
    await again.close();
  });

  it('records the same answer of the same call once, and never lets an older answer win', async () => {
    const store = openStateStore({ CATALOG_SYNC_STATE_URL: await freshStateUrl(kind, 'idempotent') });
    try {
      await store.record([base()]);
      // The activity retried after a crash: the same outcome again, later.
      expect(await store.record([base({ at: 2_000 })])).toBe(0);
      expect((await store.find('insider', 'SKU-1/en_US'))[0]).toMatchObject({ at: 1_000, writes: 1 });
      // A newer sync rejects it: the last accepted hash stays.
      expect(
        await store.record([
          base({ state: 'rejected', code: 'invalid', message: 'price: bad', syncId: 's2', batch: 's2#1', at: 3_000 }),
        ]),
      ).toBe(1);
      // A slow worker's older answer comes in after it: ignored.
      expect(await store.record([base({ contentHash: 'h0', syncId: 's0', batch: 's0#1', at: 500 })])).toBe(0);
      const [row] = await store.find('insider', 'SKU-1/en_US');
      expect(row).toMatchObject({
        state: 'rejected',
        code: 'invalid',
        message: 'price: bad',
        acceptedHash: 'h1',
        acceptedAt: 1_000,
        syncId: 's2',
        writes: 2,
      });
      expect(await store.acceptedHashes('acct1', ['SKU-1/en_US', 'nope'])).toEqual(new Map([['SKU-1/en_US', 'h1']]));
      // Asked by the sync whose rejection is the last answer: the earlier acceptance still counts.
      expect(await store.acceptedHashes('acct1', ['SKU-1/en_US'], 's2')).toEqual(new Map([['SKU-1/en_US', 'h1']]));
      // A sync's own acceptance is not "unchanged" to that sync (a retried run sends it again).
      await store.record([base({ identity: 'own', contentHash: 'ho', syncId: 's9', batch: 's9#1', at: 9_000 })]);
      expect(await store.acceptedHashes('acct1', ['own'], 's9')).toEqual(new Map());
      expect(await store.acceptedHashes('acct1', ['own'], 's10')).toEqual(new Map([['own', 'ho']]));
      // The same item twice in one batch: the last one counts, once.
      expect(
        await store.record([
          base({ identity: 'x', state: 'failed', code: 'ProviderUnavailable', syncId: 's3', batch: 's3#1', at: 4_000 }),
          base({ identity: 'x', contentHash: 'hx', syncId: 's3', batch: 's3#1', at: 4_000 }),
        ]),
      ).toBe(1);
      expect((await store.find('insider', 'x'))[0]).toMatchObject({ state: 'accepted', acceptedHash: 'hx' });
    } finally {
      await store.close();
    }
  });

  it('keeps what a schedule carries forward: rejected and failed targets (capped), cleared by an acceptance', async () => {
    const store = openStateStore({ CATALOG_SYNC_STATE_URL: await freshStateUrl(kind, 'carry') });
    const run1 = 'catalog-sync-insider-schedule-nightly-2026-12-07T02:00:00Z/sync';
    const other = 'catalog-sync-insider-schedule-nightly-b-2026-12-07T02:00:00Z/sync';
    const target = (identity: string) => JSON.stringify({ item_id: identity, locale: 'en_US', in_stock: 1 });
    const open = (identity: string, over: Partial<TargetOutcomeRecord>) => {
      const t = target(identity);
      return base({
        identity,
        state: 'rejected',
        code: 'temporarily_unavailable',
        retryable: true,
        target: t,
        targetBytes: Buffer.byteLength(t),
        syncId: run1,
        batch: `${run1}#1`,
        at: 1_000,
        ...over,
      });
    };
    const query = (over: Partial<CarryQuery> = {}): CarryQuery => ({
      provider: 'insider',
      account: 'acct1',
      includeRejected: false,
      runsPrefix: 'catalog-sync-insider-schedule-nightly-',
      excludeSyncs: [],
      before: 10_000,
      limit: 2,
      count: true,
      ...over,
    });
    try {
      await store.record([
        open('a', { at: 1_003 }),
        open('b', { state: 'failed', code: 'ProviderUnavailable', at: 1_001 }),
        open('c', { code: 'item_not_found', retryable: false, at: 1_002 }),
        open('d', { at: 1_004, target: undefined, targetBytes: MAX_CARRIED_TARGET_BYTES + 1 }),
        // Another schedule's run (its ID merely starts like this one's), another account, a later run.
        open('e', { syncId: other, batch: `${other}#1` }),
        open('f', { account: 'acct2' }),
        open('g', { at: 20_000 }),
        open('h', { syncId: 'run2/sync', batch: 'run2/sync#1' }),
      ]);
      expect((await store.find('insider', 'a'))[0]).toMatchObject({ state: 'rejected', retryable: true });
      expect((await store.find('insider', 'c'))[0]?.retryable).toBeUndefined();
      expect((await store.find('insider', 'd'))[0]).toMatchObject({ tooLargeToCarry: MAX_CARRIED_TARGET_BYTES + 1 });

      // Oldest answer first, a page at a time; the too-large one counted apart, never carried.
      const first = await store.carryable(query());
      expect(first.items.map((r) => [r.identity, r.state, r.retryable])).toEqual([
        ['b', 'failed', true],
        ['a', 'rejected', true],
      ]);
      expect(first.items[1]?.target).toBe(target('a'));
      expect(first).toMatchObject({ total: 2, tooLarge: 1 });
      expect(first.next).toBeUndefined();
      const one = await store.carryable(query({ limit: 1, count: false }));
      expect(one.items.map((r) => r.identity)).toEqual(['b']);
      expect(one.total).toBeUndefined();
      const next = await store.carryable(query({ limit: 1, after: one.next }));
      expect(next.items.map((r) => r.identity)).toEqual(['a']);
      // Every rejection, with carryRejected; a sync of this run left out.
      const all = await store.carryable(query({ includeRejected: true, limit: 10, excludeSyncs: ['nope', run1] }));
      expect(all.items).toEqual([]);
      const rejected = await store.carryable(query({ includeRejected: true, limit: 10 }));
      expect(rejected.items.map((r) => r.identity)).toEqual(['b', 'c', 'a']);

      // An acceptance clears it: nothing left to carry.
      await store.record([base({ identity: 'a', syncId: 'later', batch: 'later#1', at: 5_000 })]);
      const [a] = await store.find('insider', 'a');
      expect(a?.retryable).toBeUndefined();
      expect((await store.carryable(query({ limit: 10 }))).items.map((r) => r.identity)).toEqual(['b']);
    } finally {
      await store.close();
    }
  });

  it('pages through one state, scoped by caller when asked', async () => {
    const store = openStateStore({ CATALOG_SYNC_STATE_URL: await freshStateUrl(kind, 'pages') });
    try {
      const rows = Array.from({ length: 25 }, (_, i) =>
        base({
          identity: `SKU-${String(i).padStart(2, '0')}/en_US`,
          state: i % 2 === 0 ? 'rejected' : 'accepted',
          code: i % 2 === 0 ? 'invalid' : undefined,
          caller: i < 10 ? 'alpha' : 'beta',
          batch: `b${i}`,
        }),
      );
      await store.record(rows);
      await store.record([base({ provider: 'octogen', identity: 'uuid:1', state: 'rejected', batch: 'o' })]);
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.list({ provider: 'insider', state: 'rejected', limit: 4, after });
        expect(page.items.length).toBeLessThanOrEqual(4);
        seen.push(...page.items.map((r) => r.identity));
        after = page.next;
      } while (after !== undefined);
      expect(seen).toEqual(rows.filter((r) => r.state === 'rejected').map((r) => r.identity));
      const alpha = await store.list({ provider: 'insider', state: 'rejected', caller: 'alpha', limit: 100 });
      expect(alpha.items.map((r) => r.caller)).toEqual(['alpha', 'alpha', 'alpha', 'alpha', 'alpha']);
      expect(alpha.next).toBeUndefined();
      await expect(store.list({ provider: 'insider', limit: 1, after: 'bm90LWEtY3Vyc29y' })).rejects.toThrow(
        /after must be the `next` cursor/,
      );
    } finally {
      await store.close();
    }
  });
});

describe('where the store is', () => {
  describe('a SQLite file from before carrying forward', () => {
    it('migrates a version-2 file in place: its rows stay, with nothing to carry', async () => {
      const url = await freshStateUrl('sqlite', 'v2');
      const db = new Database(url.replace(/^sqlite:/, ''));
      db.exec('CREATE TABLE target_state_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      migrations('TEXT', 'WITHOUT ROWID')
        .slice(0, 2)
        .forEach((m, i) => {
          db.exec(m);
          db.prepare('INSERT INTO target_state_schema VALUES (?, 0)').run(i + 1);
        });
      db.prepare(
        `INSERT INTO target_state (identity, account, provider, state, code, sync_id, batch, at)
         VALUES ('old', 'acct1', 'insider', 'rejected', 'temporarily_unavailable', 's', 's#1', 1)`,
      ).run();
      db.close();
      const store = openStateStore({ CATALOG_SYNC_STATE_URL: url });
      try {
        const [row] = await store.find('insider', 'old');
        expect(row).toMatchObject({ state: 'rejected', code: 'temporarily_unavailable', writes: 1 });
        expect(row?.retryable).toBeUndefined();
      } finally {
        await store.close();
      }
    });
  });

  it('names PostgreSQL by host and database only, never the password', () => {
    const loc = stateLocation({ CATALOG_SYNC_STATE_URL: 'postgres://sync:s3cret-pw@db.internal:5433/catalog' });
    expect(stateWhere(loc)).toBe('postgres db.internal:5433/catalog');
    expect(stateWhere(loc)).not.toContain('s3cret');
  });

  it('refuses a scheme it cannot use in one line naming the variable, without the value', () => {
    expect(() => stateLocation({ CATALOG_SYNC_STATE_URL: 'mysql://u:s3cret@h/db' })).toThrow(
      /^CATALOG_SYNC_STATE_URL has the scheme "mysql:": use postgres:/,
    );
    expect(() => stateLocation({ CATALOG_SYNC_STATE_URL: 'mysql://u:s3cret@h/db' })).not.toThrow(/s3cret/);
  });

  it('defaults to a SQLite file in the project data folder', () => {
    expect(stateLocation({})).toMatchObject({
      kind: 'sqlite',
      file: expect.stringMatching(/\.data\/target-state\.sqlite$/),
    });
  });

  it('hashes the same content the same, whatever the key order', () => {
    expect(contentHash({ a: 1, b: { c: 2, d: [1, 2] } })).toBe(contentHash({ b: { d: [1, 2], c: 2 }, a: 1 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: 2 }));
  });
});

describe('the embedded SQLite store', () => {
  const fileOf = async (name: string) => (await freshStateUrl('sqlite', name)).replace(/^sqlite:/, '');

  it('migrates a version 1 file to the latest version and keeps every row', async () => {
    const file = await fileOf('v1');
    const v1 = new Database(file);
    v1.exec('CREATE TABLE target_state_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    v1.exec(migrations('TEXT')[0] as string);
    v1.prepare('INSERT INTO target_state_schema VALUES (1, 0)').run();
    v1.prepare(
      "INSERT INTO target_state (account, identity, provider, state, accepted_hash, accepted_at, sync_id, batch, at, writes) VALUES ('acct1', 'SKU-1/en_US', 'insider', 'accepted', 'h1', 1000, 'sync-1', 'sync-1#1', 1000, 3)",
    ).run();
    v1.close();
    const store = openSqliteStore(file);
    try {
      expect((await store.find('insider', 'SKU-1/en_US'))[0]).toMatchObject({ acceptedHash: 'h1', writes: 3 });
      expect(await store.acceptedHashes('acct1', ['SKU-1/en_US'])).toEqual(new Map([['SKU-1/en_US', 'h1']]));
    } finally {
      await store.close();
    }
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT MAX(version) AS v FROM target_state_schema').get()).toEqual({
      v: migrations('TEXT').length,
    });
    check.close();
  });

  it("the worker's store works on its own thread; another process's reader sees what it wrote", async () => {
    const file = await fileOf('threaded');
    const worker = openThreadedSqliteStore(file);
    const reader = openSqliteStore(file);
    try {
      await worker.record([base()]);
      await worker.record([base({ at: 2_000 })]); // a retried activity: nothing new
      expect((await reader.find('insider', 'SKU-1/en_US'))[0]).toMatchObject({ acceptedHash: 'h1', writes: 1 });
      expect(await worker.acceptedHashes('acct1', ['SKU-1/en_US'])).toEqual(new Map([['SKU-1/en_US', 'h1']]));
    } finally {
      await worker.close();
      await reader.close();
    }
  });
});
