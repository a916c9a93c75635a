/**
 * A throwaway PostgreSQL server for tests and benches, started like the Temporal dev server:
 * Debian's `postgresql` binaries (scripts/install-postgres.sh installs them), a fresh cluster in a
 * temporary folder, on a free loopback port, with a password (so the store's URL carries a secret
 * as it does in production). Root cannot run postgres: as root the cluster belongs to the
 * `postgres` user and every command runs through `runuser`.
 *
 *   const pg = await startPostgres();   // pg.url = postgres://catalog_sync:<password>@127.0.0.1:<port>/postgres
 *   ...
 *   await pg.stop();                    // stops the server and deletes the cluster
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface PostgresServer {
  /** postgres://user:password@127.0.0.1:port/postgres */
  url: string;
  port: number;
  /**
   * Stops the server and keeps its cluster (chaos: the store restarted mid-sync): `fast` a clean
   * shutdown, `immediate` a crash (recovery on the next start).
   */
  halt(mode: 'fast' | 'immediate'): Promise<void>;
  /** Starts a halted (or crashed) server again, on the same cluster and port; a running one is left alone. */
  resume(): Promise<void>;
  /** Whether the server is running (`pg_ctl status`). */
  running(): boolean;
  stop(): Promise<void>;
}

const USER = 'catalog_sync';

/** The newest installed server's bin folder (Debian keeps it off PATH). */
export function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] !== undefined) return path.join(root, versions[0], 'bin');
  const onPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return path.dirname(onPath);
  throw new Error('PostgreSQL is not installed: run scripts/install-postgres.sh (apt-get install -y postgresql)');
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });

export interface PostgresOptions {
  /** The folder the cluster's temporary folder is made in (chaos: a small tmpfs); default the system's. */
  parent?: string;
  /**
   * Keep PostgreSQL's durability (fsync, synchronous_commit, full-page writes), as a production
   * store does. Off by default for speed: a server stopped `immediate` (a crash) then loses the
   * commits of its last moments, so a chaos run that crashes the server needs it on.
   */
  durable?: boolean;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
  const ownerGid = asRoot ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) : undefined;
  const dir = mkdtempSync(path.join(options.parent ?? os.tmpdir(), 'catalog-sync-pg-'));
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  const password = randomBytes(12).toString('hex');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner !== undefined && ownerGid !== undefined) {
    chownSync(dir, owner, ownerGid);
    chownSync(pwfile, owner, ownerGid);
  }
  chmodSync(dir, 0o700);
  /** A PostgreSQL program, as the cluster's owner when we are root. */
  const exec = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]]
      : [path.join(bin, cmd), args];
    return spawnSync(file, argv, { encoding: 'utf8', cwd: dir });
  };
  const run = (cmd: string, args: string[]): void => {
    const r = exec(cmd, args);
    if (r.status !== 0) {
      throw new Error(
        `${cmd} failed (${r.status ?? r.signal}): ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-8).join(' | ')}`,
      );
    }
  };
  run('initdb', ['-D', data, '-U', USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const fast = options.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
  const opts = `-p ${port} -k ${dir} -h 127.0.0.1${fast}`;
  const start = () => run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  start();
  let stopped = false;
  let halted = false;
  const isRunning = (): boolean => exec('pg_ctl', ['-D', data, 'status']).status === 0;
  return {
    url: `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`,
    port,
    async halt(mode) {
      if (stopped || halted) return;
      run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
      halted = true;
    },
    async resume() {
      // Also a server that stopped on its own (a PANIC it could not recover from, e.g. a full disk).
      if (stopped || isRunning()) return;
      start();
      halted = false;
    },
    running: isRunning,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        if (isRunning()) run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
