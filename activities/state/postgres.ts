/**
 * The shared target-state store: PostgreSQL (pg), for workers on many hosts. Created and migrated
 * on first use, under an advisory lock so workers starting together migrate once. A batch of
 * outcomes is one statement (arrays unnested), so it is written whole or not at all.
 */
import pg from 'pg';
import type { TargetListQuery, TargetPage, TargetStateStore } from '../../contracts/target-state.ts';
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

/** The columns' types, in COLUMNS order, for unnest. */
const TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'text',
  'text',
  'text',
  'bigint',
  'integer',
  'text',
  'bigint',
];
/** Any number: the advisory lock the migrations take. */
const MIGRATION_LOCK = 7_310_013;

/** Where a PostgreSQL URL points, without user or password: "host:port/db". */
export function postgresWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname || '/'}`;
  } catch {
    return '(an unreadable URL)';
  }
}

export function openPostgresStore(url: string): TargetStateStore {
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'catalog-sync',
    // An idle pool never keeps a finished process alive.
    allowExitOnIdle: true,
  });
  // An idle client's error (the server restarted) must not crash the process: the next query fails instead.
  pool.on('error', () => undefined);
  let ready: Promise<void> | undefined;
  const migrated = (): Promise<void> => {
    ready ??= migrate(pool).catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
  const query = async (text: string, values: unknown[]): Promise<Record<string, unknown>[]> => {
    await migrated();
    return (await pool.query(text, values)).rows as Record<string, unknown>[];
  };
  return {
    where: `postgres ${postgresWhere(url)}`,
    async record(records) {
      if (records.length === 0) return 0;
      await migrated();
      const rows = lastPerItem(records).map(recordValues);
      const columns = COLUMNS.map((_, i) => rows.map((r) => r[i] ?? null));
      const result = await pool.query(
        `INSERT INTO target_state (${COLUMNS.join(', ')})
         SELECT * FROM unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ${ON_CONFLICT}`,
        columns,
      );
      return result.rowCount ?? 0;
    },
    async find(provider, identity) {
      const rows = await query('SELECT * FROM target_state WHERE identity = $1 AND provider = $2 ORDER BY account', [
        identity,
        provider,
      ]);
      return rows.map(toRow);
    },
    async list(q: TargetListQuery): Promise<TargetPage> {
      const args: unknown[] = [q.provider];
      const where = ['provider = $1'];
      if (q.state !== undefined) {
        args.push(q.state);
        where.push(`state = $${args.length}`);
      }
      if (q.caller !== undefined) {
        args.push(q.caller);
        where.push(`caller = $${args.length}`);
      }
      if (q.after !== undefined) {
        const [account, identity] = decodeCursor(q.after);
        args.push(identity, account);
        where.push(`(identity, account) > ($${args.length - 1}, $${args.length})`);
      }
      args.push(q.limit + 1);
      const rows = (
        await query(
          `SELECT * FROM target_state WHERE ${where.join(' AND ')} ORDER BY identity, account LIMIT $${args.length}`,
          args,
        )
      ).map(toRow);
      const items = rows.slice(0, q.limit);
      const last = items[items.length - 1];
      return { items, ...(rows.length > q.limit && last ? { next: encodeCursor(last) } : {}) };
    },
    async acceptedHashes(account, identities, exceptSync) {
      const out = new Map<string, string>();
      if (identities.length === 0) return out;
      const rows = await query(
        "SELECT identity, accepted_hash FROM target_state WHERE identity = ANY($2::text[]) AND account = $1 AND accepted_hash IS NOT NULL AND NOT (sync_id = $3 AND state = 'accepted')",
        [account, identities, exceptSync ?? ''],
      );
      for (const r of rows) out.set(String(r.identity), String(r.accepted_hash));
      return out;
    },
    async carryable(q) {
      const { page, count } = carrySql(q, (n) => `$${n}`);
      const rows = await query(page.text, page.args);
      const counted = count ? (await query(count.text, count.args))[0] : undefined;
      return carryPage(rows, q, counted ? { n: counted.n, big: counted.big } : undefined);
    },
    async close() {
      await pool.end();
    },
  };
}

const MIGRATIONS = migrations('TEXT COLLATE "C"');

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS target_state_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
    );
    const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM target_state_schema');
    for (let v = (rows[0]?.v ?? 0) + 1; v <= MIGRATIONS.length; v += 1) {
      await client.query(MIGRATIONS[v - 1] as string);
      await client.query('INSERT INTO target_state_schema (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
