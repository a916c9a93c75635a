/**
 * Local Temporal development server (`temporal server start-dev`) with this project's search
 * attributes registered.
 *
 * As a library (tests, benches):
 *   const server = await startDevServer({ headless: true });   // free port, in-memory, quiet
 *   ... Connection.connect({ address: server.address }) ...
 *   await server.stop();
 *
 * As a script (`npx tsx scripts/dev-server.ts`): installs the CLI if missing, persists state in
 * `<project>/.data/temporal.sqlite`, gRPC on 7233 and UI on 8233 (env TEMPORAL_DEV_PORT,
 * TEMPORAL_DEV_UI_PORT, TEMPORAL_DEV_NAMESPACE override), logs inherited, runs until Ctrl-C.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, realpathSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../contracts/search-attributes.ts';
import { projectRoot, temporalCliPath } from './temporal-bin.ts';

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 40;

export interface DevServerOptions {
  /** gRPC port; 0 or omitted picks a free one. */
  port?: number;
  /** Web UI port; 0 or omitted picks a free one. Ignored when headless. */
  uiPort?: number;
  /** SQLite file for persistent state (parent dirs are created); undefined or '' keeps everything in memory. */
  dbFile?: string | undefined;
  /** Disable the Web UI. Default false. */
  headless?: boolean;
  /** Namespace to create and wait for. Default "default". */
  namespace?: string;
  /** 'quiet' (default) keeps only the last lines for error messages; 'inherit' forwards the server's output. */
  log?: 'quiet' | 'inherit';
  /** Search attributes to register. Default: SEARCH_ATTRIBUTES from contracts/search-attributes.ts. */
  searchAttributes?: readonly { name: string; cliType: string }[];
  /** How long to wait for the server to become ready. Default 60 000 ms. */
  readyTimeoutMs?: number;
  /** A remote payload codec the UI decodes payloads with (--ui-codec-endpoint). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  /** gRPC address, host:port. */
  address: string;
  /** Web UI URL, unless headless. */
  uiUrl?: string;
  namespace: string;
  /** PID of the `temporal` process. */
  pid: number;
  /** Settles when the server process exits (on its own or after stop()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, wait for exit, SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Child-process hygiene: every live server is terminated when this process goes away.
// ---------------------------------------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
let hooksInstalled = false;
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function terminateAllSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGTERM'); // the watchdog escalates to SIGKILL if it lingers
    } catch {
      /* already gone */
    }
  }
}

function onFatalSignal(signal: NodeJS.Signals): void {
  // Another listener (e.g. the script's own Ctrl-C handler) owns the shutdown: leave it alone.
  if (process.listenerCount(signal) > 1) return;
  terminateAllSync();
  for (const sig of FORWARDED_SIGNALS) process.removeListener(sig, onFatalSignal);
  process.kill(process.pid, signal); // default action: die with the same signal
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', terminateAllSync);
  for (const sig of FORWARDED_SIGNALS) process.on(sig, onFatalSignal);
}

function uninstallExitHooksIfIdle(): void {
  if (!hooksInstalled || liveChildren.size > 0) return;
  hooksInstalled = false;
  process.removeListener('exit', terminateAllSync);
  for (const sig of FORWARDED_SIGNALS) process.removeListener(sig, onFatalSignal);
}

/**
 * A tiny detached `sh` that holds the read end of a pipe from this process: when this process dies
 * in any way (even SIGKILL) the pipe hits EOF and the watchdog terminates the server
 * (SIGTERM, then SIGKILL after the grace period).
 */
function spawnWatchdog(serverPid: number): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined;
  const script = [
    'read -r _ 2>/dev/null',
    'kill -TERM "$1" 2>/dev/null || exit 0',
    'i=0',
    `while [ "$i" -lt ${STOP_GRACE_MS / 100} ] && kill -0 "$1" 2>/dev/null; do sleep 0.1; i=$((i+1)); done`,
    'kill -KILL "$1" 2>/dev/null',
    'exit 0',
  ].join('\n');
  try {
    const dog = spawn('/bin/sh', ['-c', script, 'temporal-dev-watchdog', String(serverPid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    dog.on('error', () => undefined);
    dog.unref();
    (dog.stdin as net.Socket | null)?.unref();
    dog.stdin?.on('error', () => undefined);
    return dog;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Picks `count` distinct free TCP ports on 127.0.0.1. */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, HOST, () => resolve());
      });
      ports.push((srv.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Throws when something already listens on HOST:port (e.g. another dev server). */
async function assertPortFree(port: number, what: string): Promise<void> {
  const srv = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, HOST, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `Cannot start Temporal dev server: ${what} port ${HOST}:${port} is not available (${code ?? String(err)}). ` +
        'Is another Temporal server running? Stop it or choose another port.',
      { cause: err },
    );
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

function canConnect(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Keeps the last N lines of a stream, optionally forwarding it. */
function tailCollector(lines: string[], forward?: NodeJS.WritableStream) {
  let partial = '';
  return (chunk: Buffer) => {
    forward?.write(chunk);
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (lines.length > TAIL_LINES) lines.shift();
    }
  };
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// startDevServer
// ---------------------------------------------------------------------------------------------

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = temporalCliPath();
  const namespace = opts.namespace ?? 'default';
  const headless = opts.headless ?? false;
  const searchAttributes = opts.searchAttributes ?? SEARCH_ATTRIBUTES;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;

  const wantPort = opts.port ?? 0;
  const wantUiPort = headless ? -1 : (opts.uiPort ?? 0);
  const picked = await freePorts((wantPort === 0 ? 1 : 0) + (wantUiPort === 0 ? 1 : 0));
  const port = wantPort === 0 ? picked.shift()! : wantPort;
  const uiPort = wantUiPort === 0 ? picked.shift()! : wantUiPort;
  if (wantPort !== 0) await assertPortFree(port, 'gRPC');
  if (!headless && wantUiPort !== 0) await assertPortFree(uiPort, 'UI');

  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(port)];
  if (headless) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (opts.dbFile !== undefined && opts.dbFile !== '') {
    const dbFile = path.resolve(opts.dbFile);
    mkdirSync(path.dirname(dbFile), { recursive: true });
    args.push('--db-filename', dbFile);
  }
  if (namespace !== 'default') args.push('--namespace', namespace); // "default" always exists
  for (const sa of searchAttributes) args.push('--search-attribute', `${sa.name}=${sa.cliType}`);
  // One partition per task queue: a provider budget declared as a task queue rate limit is then
  // enforced by one limiter instead of being split across partitions that pollers reach unevenly.
  // Fairness: a backlogged task queue dispatches tasks by priority key, then in turn by fairness key
  // (one per sync), so a small sync is not queued behind a whole catalog's backlog.
  for (const setting of [
    'matching.numTaskqueueReadPartitions=1',
    'matching.numTaskqueueWritePartitions=1',
    'matching.enableFairness=true',
  ]) {
    args.push('--dynamic-config-value', setting);
  }
  if (opts.uiCodecEndpoint && !headless) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);

  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const inherit = opts.log === 'inherit';
  child.stdout!.on('data', tailCollector(tail, inherit ? process.stdout : undefined));
  child.stderr!.on('data', tailCollector(tail, inherit ? process.stderr : undefined));

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      liveChildren.delete(child);
      uninstallExitHooksIfIdle();
      resolve(exitInfo);
    });
    child.once('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) {
        // never started: no 'exit' will follow
        exitInfo = { code: null, signal: null };
        resolve(exitInfo);
      }
    });
  });

  const watchdog = child.pid !== undefined ? spawnWatchdog(child.pid) : undefined;
  if (child.pid !== undefined) {
    liveChildren.add(child);
    installExitHooks();
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo === undefined) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)]);
        if (timedOut && exitInfo === undefined) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      watchdog?.kill('SIGKILL'); // only after the server is gone: no PID-reuse window
    })();
    return stopping;
  };

  const address = `${HOST}:${port}`;
  const describeFailure = (why: string) => {
    const cmd = [cli, ...args].join(' ');
    const lines = tail.length > 0 ? tail.map((l) => `  | ${l}`).join('\n') : '  | (no output)';
    return new Error(`Temporal dev server ${why}\n  command: ${cmd}\n  last output:\n${lines}`);
  };

  // ---- wait for readiness --------------------------------------------------------------------
  const deadline = Date.now() + readyTimeoutMs;
  let lastError = 'gRPC port not accepting connections yet';
  let connection: Connection | undefined;
  try {
    for (;;) {
      if (spawnError !== undefined && child.pid === undefined) {
        throw new Error(`Failed to spawn Temporal CLI ${cli}: ${spawnError.message}`);
      }
      if (exitInfo !== undefined) {
        const how = exitInfo.signal ? `signal ${exitInfo.signal}` : `code ${exitInfo.code}`;
        throw describeFailure(`exited (${how}) before becoming ready.`);
      }
      if (Date.now() > deadline) {
        throw describeFailure(
          `did not become ready within ${Math.round(readyTimeoutMs / 1000)}s at ${address} (namespace ${namespace}): ${lastError}`,
        );
      }
      if (await isReady()) break;
      await sleep(250);
    }
  } catch (err) {
    await connection?.close().catch(() => undefined);
    await stop();
    throw err;
  }
  await connection?.close().catch(() => undefined);

  async function isReady(): Promise<boolean> {
    if (!(await canConnect(port))) {
      lastError = `gRPC port ${address} not accepting connections yet`;
      return false;
    }
    try {
      connection ??= await Connection.connect({ address, connectTimeout: 2000 });
      const conn = connection;
      await conn.withDeadline(Date.now() + 3000, () => conn.workflowService.describeNamespace({ namespace }));
      const listed = await conn.withDeadline(Date.now() + 3000, () =>
        conn.operatorService.listSearchAttributes({ namespace }),
      );
      const registered = new Set(Object.keys(listed.customAttributes ?? {}));
      const missing = searchAttributes.filter((sa) => !registered.has(sa.name)).map((sa) => sa.name);
      if (missing.length > 0) {
        lastError = `search attributes not registered yet: ${missing.join(', ')}`;
        return false;
      }
    } catch (err) {
      lastError = `namespace ${namespace} not ready: ${errMessage(err)}`;
      return false;
    }
    if (!headless && !(await canConnect(uiPort))) {
      lastError = `UI port ${HOST}:${uiPort} not accepting connections yet`;
      return false;
    }
    return true;
  }

  const server: DevServer = { address, namespace, pid: child.pid!, exited, stop };
  if (!headless) server.uiUrl = `http://${HOST}:${uiPort}`;
  return server;
}

// ---------------------------------------------------------------------------------------------
// Script entry point: `npx tsx scripts/dev-server.ts`
// ---------------------------------------------------------------------------------------------

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be a port number, got ${JSON.stringify(raw)}`);
  return n;
}

function ensureCli(): void {
  try {
    temporalCliPath();
    return;
  } catch {
    /* fall through to install */
  }
  const installer = path.join(projectRoot(), 'scripts', 'install-temporal.sh');
  console.log('Temporal CLI not found; running scripts/install-temporal.sh ...');
  const res = spawnSync('bash', [installer], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) throw new Error(`scripts/install-temporal.sh failed (exit ${res.status ?? res.signal})`);
  temporalCliPath(); // throws the clear "not found" error if still missing
}

async function main(): Promise<void> {
  ensureCli();
  const root = projectRoot();
  const dbFile = path.join(root, '.data', 'temporal.sqlite');
  mkdirSync(path.dirname(dbFile), { recursive: true });

  const server = await startDevServer({
    port: envPort('TEMPORAL_DEV_PORT', 7233),
    uiPort: envPort('TEMPORAL_DEV_UI_PORT', 8233),
    dbFile,
    namespace: process.env.TEMPORAL_DEV_NAMESPACE || 'default',
    log: 'inherit',
  });

  console.log(
    [
      '',
      `Temporal dev server ready`,
      `  address:   ${server.address}`,
      `  UI:        ${server.uiUrl ?? '(headless)'}`,
      `  namespace: ${server.namespace}`,
      `  state:     ${path.relative(process.cwd(), dbFile) || dbFile}`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  let shuttingDown = false;
  let firstSignalAt = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      // A terminal Ctrl-C reaches this process twice (directly and relayed by npm/tsx): only a
      // second, deliberate Ctrl-C forces the exit.
      if (Date.now() - firstSignalAt < 1500) return;
      console.error(`\n${signal} again: killing the Temporal dev server`);
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      process.exit(130);
    }
    shuttingDown = true;
    firstSignalAt = Date.now();
    console.log(`\n${signal}: stopping Temporal dev server (Ctrl-C again to force) ...`);
    server.stop().then(
      () => {
        console.log('Temporal dev server stopped.');
        process.exit(0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);

  const { code, signal } = await server.exited;
  if (!shuttingDown) {
    console.error(`Temporal dev server exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}).`);
    process.exit(code === 0 ? 1 : (code ?? 1));
  }
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(path.resolve(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
