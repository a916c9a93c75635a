/**
 * The spool: where targets too large to carry in history wait as NDJSON until their sync has read
 * them (a large inline request, a change feed's batch). Private and temporary:
 *
 * - a per-user folder, mode 0700, that must be the user's own (CATALOG_SYNC_SPOOL_DIR overrides
 *   `<tmpdir>/catalog-sync-<uid>`; a shared folder for many workers must be the same user's);
 * - files mode 0600, each line sealed with the codec key when CATALOG_SYNC_CODEC_KEYS is set (line
 *   by line, so activities still read a slice by byte range and count lines as before);
 * - deleted by the sync itself when it closes or aborts (releaseSource), and by an age-based sweep
 *   the worker runs (CATALOG_SYNC_SPOOL_RETENTION, default 7d) for syncs that never got to close
 *   (terminated, or a client that died before the start).
 *
 * How the sweep knows a file is still read: each file is named `<readable id>.<hash>.<uuid>.ndjson`
 * where the hash is of the workflow ID that reads it (a sync, or the scheduled run whose child sync
 * reads a feed's batch). A file older than the retention is deleted only when Temporal lists no
 * running workflow with that ID; when Temporal cannot be asked, nothing is deleted.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TargetsRef } from '../contracts/index.ts';
import { codecKeysFromEnv, seal, unseal } from './codec-keys.ts';

export const SPOOL_DIR_VAR = 'CATALOG_SYNC_SPOOL_DIR';
export const SPOOL_RETENTION_VAR = 'CATALOG_SYNC_SPOOL_RETENTION';
export const DEFAULT_SPOOL_RETENTION = '7d';

export class SpoolError extends Error {
  override readonly name = 'SpoolError';
}

const userTag = (): string => {
  const uid = process.getuid?.();
  return uid !== undefined ? String(uid) : os.userInfo().username.replace(/[^\w.-]+/g, '_');
};

/** Where spooled targets are written and read. */
export const spoolDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env[SPOOL_DIR_VAR] || path.join(os.tmpdir(), `catalog-sync-${userTag()}`);

/**
 * Creates the spool folder (0700), or checks the one there: a real folder (not a link), owned by
 * this user. One this user owns with a looser mode is tightened to 0700; anyone else's is refused.
 */
export async function ensureSpoolDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = spoolDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  const fix = `remove it or set ${SPOOL_DIR_VAR} to a folder of your own`;
  if (!info.isDirectory()) throw new SpoolError(`the spool folder ${dir} is not a folder (a link?): ${fix}`);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new SpoolError(`the spool folder ${dir} belongs to another user (uid ${info.uid}): ${fix}`);
  }
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
  return dir;
}

const idHash = (workflowId: string): string => createHash('sha256').update(workflowId).digest('hex').slice(0, 20);
const SPOOL_NAME = /^[\w-]{0,60}\.([0-9a-f]{20})\.[0-9a-f-]{36}\.ndjson$/;

/** The file name for targets `workflowId` reads: readable, and traceable to the workflow by hash. */
export const spoolFileName = (workflowId: string): string =>
  `${workflowId.replace(/[^\w-]+/g, '_').slice(0, 60)}.${idHash(workflowId)}.${randomUUID()}.ndjson`;

/** A line as written: sealed with the current key (`<key id>:<base64>`) when there is one. */
function sealer(env: NodeJS.ProcessEnv): ((line: string) => string) | undefined {
  const keys = codecKeysFromEnv(env);
  if (!keys) return undefined;
  const key = keys.keys.get(keys.currentKeyId) as Buffer;
  return (line) => `${keys.currentKeyId}:${seal(key, Buffer.from(line, 'utf8')).toString('base64')}`;
}

/** Opens a sealed line with the key it names; throws a line that says which key is missing. */
export function opener(env: NodeJS.ProcessEnv): (line: string) => string {
  let keys: ReturnType<typeof codecKeysFromEnv>;
  return (line) => {
    keys ??= codecKeysFromEnv(env);
    const text = line.trim();
    const at = text.indexOf(':');
    const keyId = text.slice(0, at);
    const key = keys?.keys.get(keyId);
    if (at <= 0 || !key) {
      throw new SpoolError(
        `the spooled targets are sealed with codec key "${keyId.slice(0, 40)}", which this worker does not have: add it to CATALOG_SYNC_CODEC_KEYS`,
      );
    }
    return unseal(key, Buffer.from(text.slice(at + 1), 'base64')).toString('utf8');
  };
}

/**
 * The one line for a spool that cannot take a request's targets (a full disk, a read-only folder):
 * the folder and the cause, and that nothing was started; the partial file is already gone.
 */
function spoolWriteError(dir: string, count: number, err: unknown): SpoolError {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOSPC' ? 'no space left on its disk' : (e.message ?? String(err)).split('\n')[0];
  return new SpoolError(
    `cannot write ${count} targets to the spool folder ${dir} (${why}): nothing was started; free space there or set ${SPOOL_DIR_VAR} to another folder, then submit again`,
    { cause: err },
  );
}

/**
 * Writes targets as NDJSON into a new private file (0600) for `workflowId`, sealed line by line
 * when a codec key is set, and returns the reference the sync reads and later releases.
 */
export async function writeSpool(
  workflowId: string,
  targets: readonly unknown[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<TargetsRef> {
  const dir = await ensureSpoolDir(env);
  const file = path.join(dir, spoolFileName(workflowId));
  const sealLine = sealer(env);
  // O_EXCL: never write through a file (or link) someone placed under that name.
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600).catch(
    (err: unknown) => {
      throw spoolWriteError(dir, targets.length, err);
    },
  );
  try {
    const CHUNK = 1 << 20;
    let buffered: string[] = [];
    let size = 0;
    for (const t of targets) {
      const json = JSON.stringify(t) ?? 'null';
      const line = sealLine ? sealLine(json) : json;
      buffered.push(line);
      size += line.length + 1;
      if (size >= CHUNK) {
        await handle.write(`${buffered.join('\n')}\n`);
        buffered = [];
        size = 0;
      }
    }
    if (buffered.length > 0) await handle.write(`${buffered.join('\n')}\n`);
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw spoolWriteError(dir, targets.length, err);
  }
  return { file, spooled: true, ...(sealLine ? { sealed: true as const } : {}) };
}

/**
 * Deletes a spooled file once its sync is done with it. Only a spool file (by its name) directly in
 * a private folder of this user is ever deleted, so a workflow input naming another file as
 * "spooled" deletes nothing. Returns whether a file was deleted.
 */
export async function releaseSpool(ref: TargetsRef): Promise<boolean> {
  if (!('file' in ref) || ref.spooled !== true) return false;
  const file = path.resolve(ref.file);
  if (!SPOOL_NAME.test(path.basename(file))) return false;
  const dir = await lstat(path.dirname(file)).catch(() => undefined);
  const uid = process.getuid?.();
  if (!dir?.isDirectory() || (dir.mode & 0o077) !== 0 || (uid !== undefined && dir.uid !== uid)) return false;
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** CATALOG_SYNC_SPOOL_RETENTION as milliseconds ("7d", "12h", "90m"); throws one line when malformed. */
export function spoolRetentionMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SPOOL_RETENTION_VAR] || DEFAULT_SPOOL_RETENTION;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(raw);
  if (!m?.[1] || !m[2]) {
    throw new SpoolError(
      `${SPOOL_RETENTION_VAR}="${raw.slice(0, 40)}" must be a duration such as 7d, 12h or 90m (how long a spooled file of a closed sync may stay)`,
    );
  }
  return Number(m[1]) * (UNIT_MS[m[2]] ?? 0);
}

export interface SweepOptions {
  env: NodeJS.ProcessEnv;
  /**
   * The IDs of workflows still running, from Temporal; throws when Temporal cannot say (then the
   * sweep deletes nothing).
   */
  runningWorkflowIds: () => Promise<Iterable<string>>;
  now?: number;
}

export interface SweepResult {
  deleted: string[];
  /** Old enough, but a running workflow still reads them. */
  kept: string[];
}

/**
 * Deletes spooled files older than the retention whose workflow is no longer running. Files that
 * are not spool files, and every file when Temporal cannot be asked, are left alone.
 */
export async function sweepSpool(opts: SweepOptions): Promise<SweepResult> {
  const retention = spoolRetentionMs(opts.env);
  const dir = spoolDir(opts.env);
  const now = opts.now ?? Date.now();
  const names = await readdir(dir).catch(() => [] as string[]);
  const old: { file: string; hash: string }[] = [];
  for (const name of names) {
    const hash = SPOOL_NAME.exec(name)?.[1];
    if (!hash) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > retention) old.push({ file, hash });
  }
  const result: SweepResult = { deleted: [], kept: [] };
  if (old.length === 0) return result;
  const running = new Set<string>();
  for (const id of await opts.runningWorkflowIds()) running.add(idHash(id));
  for (const { file, hash } of old) {
    if (running.has(hash)) {
      result.kept.push(file);
      continue;
    }
    await unlink(file).then(
      () => result.deleted.push(file),
      () => undefined,
    );
  }
  return result;
}
