/**
 * Target-state stores for tests: a fresh SQLite file, or a fresh database on the run's PostgreSQL
 * server (started by test/global-setup.ts), each named after the test that asked for it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: StoreKind[] = ['sqlite', 'postgres'];

/** A CATALOG_SYNC_STATE_URL for a store no other test uses. */
export async function freshStateUrl(kind: StoreKind, name = 'state'): Promise<string> {
  const tag = `${name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30)}_${randomUUID().slice(0, 8)}`;
  if (kind === 'sqlite') {
    return `sqlite:${path.join(mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-state-')), `${tag}.sqlite`)}`;
  }
  const server = inject('postgresUrl');
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${tag}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${tag}`;
  return url.toString();
}
