/**
 * The target-state store, the same suite against the embedded SQLite file and a real PostgreSQL
 * server: migrations, idempotent writes, the last accepted hash kept across a rejection, pages,
 * caller scoping, and messages that never show the URL's password.
 */
import { describe, expect, it } from 'vitest';
import { openStateStore, stateLocation, stateWhere, contentHash } from '../activities/state/index.ts';
import type { TargetOutcomeRecord } from '../contracts/target-state.ts';
import { STORE_KINDS, freshStateUrl } from './helpers/state.ts';
import Database from 'better-sqlite3';
import { migrations } from '../activities/state/common.ts';
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

  it('migrates a version 1 file to version 2 and keeps every row', async () => {
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
    expect(check.prepare('SELECT MAX(version) AS v FROM target_state_schema').get()).toEqual({ v: 2 });
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
