/**
 * What the SQLite and PostgreSQL stores share: the schema's migrations, the idempotent upsert, the
 * page cursor and the row mapping. Both speak the same SQL (row values, ON CONFLICT, IS NOT
 * DISTINCT FROM); only placeholders and the way a batch is passed differ.
 */
import { createHash } from 'node:crypto';
import {
  MAX_CARRIED_TARGET_BYTES,
  TargetCursorError,
  type CarryPage,
  type CarryQuery,
  type CarryRow,
  type TargetOutcomeRecord,
  type TargetRow,
  type TargetState,
} from '../../contracts/target-state.ts';

/**
 * Each migration runs once, in order, in one transaction with its version's row. `key` is the type
 * of the key columns: byte order in both stores (PostgreSQL's COLLATE "C"), so pages cut the same.
 * `clustered` is what makes the table its own key index (SQLite's WITHOUT ROWID; nothing in
 * PostgreSQL).
 *
 * Version 2 keys rows by (identity, account) in one B-tree, with an index of the open items only
 * (state other than accepted): a write touches one tree for an accepted item, not three, which is
 * most of what recording costs (docs/state.md, "What it costs").
 *
 * Version 3 keeps, for rejected and failed items, the target as sent (`carry_target`, JSON, while at
 * most MAX_CARRIED_TARGET_BYTES; `target_bytes` its size either way) and whether its last answer was
 * transient (`retryable`): what a schedule's next run carries forward. An acceptance clears them.
 */
export const migrations = (key: string, clustered = ''): readonly string[] => [
  `CREATE TABLE target_state (
     account ${key} NOT NULL,
     identity ${key} NOT NULL,
     provider TEXT NOT NULL,
     state TEXT NOT NULL,
     code TEXT,
     message TEXT,
     accepted_hash TEXT,
     accepted_at BIGINT,
     sync_id TEXT NOT NULL,
     batch TEXT NOT NULL,
     caller TEXT,
     at BIGINT NOT NULL,
     writes INTEGER NOT NULL DEFAULT 1,
     PRIMARY KEY (account, identity)
   );
   CREATE INDEX target_state_by_identity ON target_state (provider, identity);
   CREATE INDEX target_state_by_state ON target_state (provider, state, account, identity);`,
  `CREATE TABLE target_state_v2 (
     identity ${key} NOT NULL,
     account ${key} NOT NULL,
     provider TEXT NOT NULL,
     state TEXT NOT NULL,
     code TEXT,
     message TEXT,
     accepted_hash TEXT,
     accepted_at BIGINT,
     sync_id TEXT NOT NULL,
     batch TEXT NOT NULL,
     caller TEXT,
     at BIGINT NOT NULL,
     writes INTEGER NOT NULL DEFAULT 1,
     PRIMARY KEY (identity, account)
   ) ${clustered};
   INSERT INTO target_state_v2 (${ALL_COLUMNS}) SELECT ${ALL_COLUMNS} FROM target_state;
   DROP TABLE target_state;
   ALTER TABLE target_state_v2 RENAME TO target_state;
   CREATE INDEX target_state_open ON target_state (provider, state, identity, account) WHERE state <> 'accepted';`,
  `ALTER TABLE target_state ADD COLUMN retryable INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE target_state ADD COLUMN carry_target TEXT;
   ALTER TABLE target_state ADD COLUMN target_bytes BIGINT;`,
];

const ALL_COLUMNS =
  'identity, account, provider, state, code, message, accepted_hash, accepted_at, sync_id, batch, caller, at, writes';

export const COLUMNS = [
  'account',
  'identity',
  'provider',
  'state',
  'code',
  'message',
  'accepted_hash',
  'accepted_at',
  'sync_id',
  'batch',
  'caller',
  'at',
  'retryable',
  'carry_target',
  'target_bytes',
] as const;

/**
 * The upsert's conflict clause. A row changes only for a newer-or-equal answer that says something
 * new: the same call's same outcome again (a retried activity) changes nothing, and an older answer
 * (a slow worker) never overwrites a newer one. A rejection keeps the last accepted hash.
 */
export const ON_CONFLICT = `ON CONFLICT (identity, account) DO UPDATE SET
  provider = excluded.provider,
  state = excluded.state,
  code = excluded.code,
  message = excluded.message,
  accepted_hash = CASE WHEN excluded.state = 'accepted' THEN excluded.accepted_hash ELSE target_state.accepted_hash END,
  accepted_at = CASE WHEN excluded.state = 'accepted' THEN excluded.accepted_at ELSE target_state.accepted_at END,
  sync_id = excluded.sync_id,
  batch = excluded.batch,
  caller = excluded.caller,
  at = excluded.at,
  retryable = excluded.retryable,
  carry_target = excluded.carry_target,
  target_bytes = excluded.target_bytes,
  writes = target_state.writes + 1
WHERE excluded.at >= target_state.at
  AND NOT (target_state.sync_id = excluded.sync_id
    AND target_state.batch = excluded.batch
    AND target_state.state = excluded.state
    AND target_state.code IS NOT DISTINCT FROM excluded.code
    AND (excluded.state <> 'accepted' OR target_state.accepted_hash IS NOT DISTINCT FROM excluded.accepted_hash))`;

/** A record as the upsert's values, in COLUMNS order. */
export function recordValues(r: TargetOutcomeRecord): (string | number | null)[] {
  const accepted = r.state === 'accepted';
  return [
    r.account,
    r.identity,
    r.provider,
    r.state,
    r.code ?? null,
    r.message ?? null,
    accepted ? (r.contentHash ?? null) : null,
    accepted ? r.at : null,
    r.syncId,
    r.batch,
    r.caller ?? null,
    r.at,
    !accepted && r.retryable === true ? 1 : 0,
    accepted ? null : (r.target ?? null),
    accepted ? null : (r.targetBytes ?? null),
  ];
}

/** One record per (account, identity), the last one written winning: a statement touches a row once. */
export function lastPerItem(records: readonly TargetOutcomeRecord[]): TargetOutcomeRecord[] {
  const byKey = new Map<string, TargetOutcomeRecord>();
  for (const r of records) byKey.set(`${r.account}\u0000${r.identity}`, r);
  return [...byKey.values()];
}

/** A nullable column as text or a number (PostgreSQL's BIGINTs come back as strings). */
const text = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

/** A stored row (SQLite or PostgreSQL: BIGINTs may come back as strings) as a TargetRow. */
export function toRow(raw: Record<string, unknown>): TargetRow {
  const code = text(raw.code);
  const message = text(raw.message);
  const acceptedHash = text(raw.accepted_hash);
  const acceptedAt = num(raw.accepted_at);
  const caller = text(raw.caller);
  const open = String(raw.state) !== 'accepted';
  const bytes = num(raw.target_bytes);
  const tooLarge = open && raw.carry_target == null && bytes !== undefined && bytes > MAX_CARRIED_TARGET_BYTES;
  return {
    provider: String(raw.provider),
    account: String(raw.account),
    identity: String(raw.identity),
    state: String(raw.state) as TargetState,
    ...(code !== undefined ? { code } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(acceptedHash !== undefined ? { acceptedHash } : {}),
    ...(acceptedAt !== undefined ? { acceptedAt } : {}),
    syncId: String(raw.sync_id),
    ...(caller !== undefined ? { caller } : {}),
    at: Number(raw.at),
    writes: Number(raw.writes),
    ...(open && Number(raw.retryable) === 1 ? { retryable: true as const } : {}),
    ...(tooLarge ? { tooLargeToCarry: bytes } : {}),
  };
}

/**
 * The carry query of both stores (`ph(n)`: the n-th placeholder, 1-based): a page of the account's
 * carryable items, oldest answer first, and (with `count`) how many match in all. Served by the
 * index of open items (state other than accepted).
 */
export function carrySql(
  q: CarryQuery,
  ph: (n: number) => string,
): { page: { text: string; args: unknown[] }; count?: { text: string; args: unknown[] } } {
  const args: unknown[] = [];
  const p = (v: unknown): string => {
    args.push(v);
    return ph(args.length);
  };
  const where = [
    `provider = ${p(q.provider)}`,
    `state IN ('rejected', 'failed')`,
    `account = ${p(q.account)}`,
    q.includeRejected ? `(retryable = 1 OR state = 'rejected')` : 'retryable = 1',
    `at < ${p(q.before)}`,
    // A run of this schedule: the prefix, then the time Temporal appends (2026-12-07T02:52:46Z),
    // whose first ':' is its 14th character. A schedule ID has no ':', so another schedule whose ID
    // merely starts with this one's (its runs read `<prefix>X-<time>`) never matches.
    `substr(sync_id, 1, ${p(q.runsPrefix.length)}) = ${p(q.runsPrefix)}`,
    `substr(sync_id, ${p(q.runsPrefix.length + 14)}, 1) = ':'`,
    ...(q.excludeSyncs.length > 0 ? [`sync_id NOT IN (${q.excludeSyncs.map((id) => p(id)).join(', ')})`] : []),
  ];
  const countArgs = args.slice();
  const count = q.count
    ? {
        text: `SELECT COUNT(carry_target) AS n, COUNT(*) - COUNT(carry_target) AS big FROM target_state WHERE ${where.join(' AND ')}`,
        args: countArgs,
      }
    : undefined;
  const pageWhere = [...where, 'carry_target IS NOT NULL'];
  if (q.after !== undefined) pageWhere.push(`(at, identity) > (${p(q.after[0])}, ${p(q.after[1])})`);
  const text =
    'SELECT identity, state, code, retryable, sync_id, at, carry_target, target_bytes FROM target_state ' +
    `WHERE ${pageWhere.join(' AND ')} ORDER BY at, identity LIMIT ${p(q.limit + 1)}`;
  return { page: { text, args }, ...(count ? { count } : {}) };
}

/** A carry query's rows as a page. */
export function carryPage(
  raw: Record<string, unknown>[],
  q: CarryQuery,
  counted?: { n: unknown; big: unknown },
): CarryPage {
  const rows = raw.map((r): CarryRow => {
    const code = text(r.code);
    const target = text(r.carry_target);
    const bytes = num(r.target_bytes);
    return {
      identity: String(r.identity),
      state: String(r.state) as CarryRow['state'],
      ...(code !== undefined ? { code } : {}),
      retryable: Number(r.retryable) === 1,
      syncId: String(r.sync_id),
      at: Number(r.at),
      ...(target !== undefined ? { target } : {}),
      ...(bytes !== undefined ? { targetBytes: bytes } : {}),
    };
  });
  const items = rows.slice(0, q.limit);
  const last = items[items.length - 1];
  return {
    items,
    ...(rows.length > q.limit && last ? { next: [last.at, last.identity] as [number, string] } : {}),
    ...(counted !== undefined ? { total: Number(counted.n), tooLarge: Number(counted.big) } : {}),
  };
}

/** The cursor of a page: the last row's (account, identity), opaque to callers; pages go in (identity, account) order. */
export const encodeCursor = (row: Pick<TargetRow, 'account' | 'identity'>): string =>
  Buffer.from(JSON.stringify([row.account, row.identity]), 'utf8').toString('base64url');

export function decodeCursor(cursor: string): [string, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !parsed.every((p) => typeof p === 'string')) {
    throw new TargetCursorError('after must be the `next` cursor of the page before');
  }
  return [parsed[0] as string, parsed[1] as string];
}

/** JSON with object keys sorted at every level: the same content always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The content hash of a target as sent (its parsed, typed form): hex, 128 bits. */
export const contentHash = (target: unknown): string =>
  createHash('sha256').update(canonical(target)).digest('hex').slice(0, 32);
