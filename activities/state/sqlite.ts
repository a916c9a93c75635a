/**
 * The embedded target-state store: one SQLite file (better-sqlite3), in WAL mode so the workers,
 * the CLI and the HTTP front of one host read and write it at once. Created and migrated on open.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type {
  TargetListQuery,
  TargetOutcomeRecord,
  TargetPage,
  TargetStateStore,
} from '../../contracts/target-state.ts';
import {
  COLUMNS,
  carryPage,
  carrySql,
  migrations,
  ON_CONFLICT,
  decodeCursor,
  encodeCursor,
  lastPerItem,
  recordValues,
  toRow,
} from './common.ts';

export function openSqliteStore(file: string): TargetStateStore {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  db.pragma('synchronous = NORMAL');
  // Checkpoints every 10,000 pages (40 MB of WAL), not 1,000: a page updated by many transactions
  // is copied back once; the WAL file is cut back to 64 MB after each.
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('journal_size_limit = 67108864');
  // A 16 MB page cache (the default is 2 MB): a changed-only sync's lookups of a unit mostly hit it.
  // No memory map: its pages would count in the worker's RSS, which the bench holds under 500 MB.
  db.pragma('cache_size = -16384');
  migrate(db);
  const insert = db.prepare(
    `INSERT INTO target_state (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')}) ${ON_CONFLICT}`,
  );
  const recordAll = db.transaction((records: TargetOutcomeRecord[]) => {
    let changed = 0;
    for (const r of records) changed += insert.run(...recordValues(r)).changes;
    return changed;
  });
  const find = db.prepare('SELECT * FROM target_state WHERE identity = ? AND provider = ? ORDER BY account');
  const accepted = db.prepare(
    "SELECT identity, accepted_hash FROM target_state WHERE identity = ? AND account = ? AND accepted_hash IS NOT NULL AND NOT (sync_id = ? AND state = 'accepted')",
  );
  return {
    where: `sqlite ${file}`,
    async record(records) {
      if (records.length === 0) return 0;
      return recordAll.immediate(lastPerItem(records));
    },
    async find(provider, identity) {
      return find.all(identity, provider).map((r) => toRow(r as Record<string, unknown>));
    },
    async list(q: TargetListQuery): Promise<TargetPage> {
      const where = ['provider = ?'];
      const args: (string | number)[] = [q.provider];
      if (q.state !== undefined) {
        where.push('state = ?');
        args.push(q.state);
      }
      if (q.caller !== undefined) {
        where.push('caller = ?');
        args.push(q.caller);
      }
      if (q.after !== undefined) {
        const [account, identity] = decodeCursor(q.after);
        where.push('(identity, account) > (?, ?)');
        args.push(identity, account);
      }
      const rows = db
        .prepare(`SELECT * FROM target_state WHERE ${where.join(' AND ')} ORDER BY identity, account LIMIT ?`)
        .all(...args, q.limit + 1)
        .map((r) => toRow(r as Record<string, unknown>));
      const items = rows.slice(0, q.limit);
      const last = items[items.length - 1];
      return { items, ...(rows.length > q.limit && last ? { next: encodeCursor(last) } : {}) };
    },
    async acceptedHashes(account, identities, exceptSync) {
      const out = new Map<string, string>();
      for (const identity of identities) {
        const row = accepted.get(identity, account, exceptSync ?? '') as
          { identity: string; accepted_hash: string } | undefined;
        if (row) out.set(row.identity, row.accepted_hash);
      }
      return out;
    },
    async carryable(q) {
      const { page, count } = carrySql(q, () => '?');
      const rows = db.prepare(page.text).all(...(page.args as (string | number)[])) as Record<string, unknown>[];
      const counted = count
        ? (db.prepare(count.text).get(...(count.args as (string | number)[])) as { n: number; big: number })
        : undefined;
      return carryPage(rows, q, counted);
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

const MIGRATIONS = migrations('TEXT', 'WITHOUT ROWID');

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS target_state_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  db.transaction(() => {
    const row = db.prepare('SELECT MAX(version) AS v FROM target_state_schema').get() as { v: number | null };
    for (let v = (row.v ?? 0) + 1; v <= MIGRATIONS.length; v += 1) {
      db.exec(MIGRATIONS[v - 1] as string);
      db.prepare('INSERT INTO target_state_schema (version, applied_at) VALUES (?, ?)').run(v, Date.now());
    }
  }).immediate();
}
