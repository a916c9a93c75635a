/**
 * The target-state store behind one interface (contracts/target-state.ts), chosen by
 * CATALOG_SYNC_STATE_URL:
 *
 * - unset (or `sqlite`): the embedded SQLite file `<project>/.data/target-state.sqlite`;
 * - `off`: no store: nothing recorded, lookups and changed-only syncs refused in one line;
 * - `sqlite:<path>` (or a path): that SQLite file;
 * - `postgres://...` or `postgresql://...`: a PostgreSQL database shared by workers on many hosts.
 *
 * The URL may hold a password: no message ever shows more than the store's kind, host and database
 * (`store.where`). Activities record outcomes; the CLI and the HTTP front read (client/targets.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TargetStateStore } from '../../contracts/target-state.ts';
import { openPostgresStore, postgresWhere } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import { openThreadedSqliteStore } from './threaded.ts';

export { contentHash } from './common.ts';
export type { TargetStateStore } from '../../contracts/target-state.ts';

export const STATE_URL_VAR = 'CATALOG_SYNC_STATE_URL';

/** The project's data folder, where the embedded store lives by default. */
export const defaultStateFile = (): string =>
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '.data', 'target-state.sqlite');

export type StateLocation = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/**
 * The store is on unless CATALOG_SYNC_STATE_URL is `off`: unset, workers record every answer in
 * the embedded SQLite file. `off` is for a deployment that wants none of the store's features
 * (docs/state.md, "What it costs").
 */
export const stateStoreConfigured = (env: NodeJS.ProcessEnv = process.env): boolean =>
  !/^off$/i.test(env[STATE_URL_VAR]?.trim() ?? '');

/** The one line for a lookup (or a changed-only sync) with the store turned off. */
export const NO_STATE_STORE =
  `the target-state store is off (${STATE_URL_VAR}=off): unset it for the embedded default (.data/target-state.sqlite) ` +
  'or set postgres://user:password@host/db, the same on the workers that record it';

/** Where the store is, from the environment; a value it cannot use throws one line naming the variable. */
export function stateLocation(env: NodeJS.ProcessEnv = process.env): StateLocation {
  const raw = env[STATE_URL_VAR]?.trim();
  if (!raw || /^sqlite:?$/i.test(raw)) return { kind: 'sqlite', file: defaultStateFile() };
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new Error(`${STATE_URL_VAR} is not a valid postgres:// URL: write postgres://user:password@host:5432/db`);
    }
    return { kind: 'postgres', url: raw };
  }
  if (/^sqlite:/i.test(raw)) {
    const file = raw.replace(/^sqlite:(\/\/)?/i, '');
    if (!file) throw new Error(`${STATE_URL_VAR} names no file: write sqlite:/path/to/target-state.sqlite`);
    return { kind: 'sqlite', file: path.resolve(file) };
  }
  const scheme = /^([a-z][\w+.-]*):\/\//i.exec(raw)?.[1];
  if (scheme !== undefined) {
    throw new Error(
      `${STATE_URL_VAR} has the scheme "${scheme}:": use postgres://user:password@host/db, sqlite:/path/file, or leave it unset for ${path.relative(process.cwd(), defaultStateFile()) || defaultStateFile()}`,
    );
  }
  return { kind: 'sqlite', file: path.resolve(raw) };
}

/** The store's kind and place for messages: never the password. */
export const stateWhere = (loc: StateLocation): string =>
  loc.kind === 'sqlite' ? `sqlite ${loc.file}` : `postgres ${postgresWhere(loc.url)}`;

/**
 * Opens (and creates and migrates, on first use) the store the environment names. `threaded`: a
 * SQLite store does its work on a thread of its own (the worker's, so writes never hold up sends).
 */
export function openStateStore(
  env: NodeJS.ProcessEnv = process.env,
  opts: { threaded?: boolean } = {},
): TargetStateStore {
  const loc = stateLocation(env);
  if (loc.kind === 'postgres') return openPostgresStore(loc.url);
  return opts.threaded ? openThreadedSqliteStore(loc.file) : openSqliteStore(loc.file);
}
