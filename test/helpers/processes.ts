/** Child processes for tests: the real CLI and real worker processes, as a user runs them. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { projectRoot } from '../../scripts/temporal-bin.ts';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const root = projectRoot();

const childEnv = (env: Record<string, string>): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  ...env,
});
const tsxScript = (script: string, args: string[]): string[] => ['--import', 'tsx', path.join(root, script), ...args];

/** Runs `node NODE_ARGS` to the end with the given environment, no stdin; killed after `timeoutMs`. */
function runNode(nodeArgs: string[], env: Record<string, string>, timeoutMs: number, what: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, {
      cwd: root,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `catalog-sync ARGS` (bin/catalog-sync.js) with the given environment, no stdin. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<RunResult> {
  return runNode(
    [path.join(root, 'bin', 'catalog-sync.js'), ...args],
    env,
    timeoutMs,
    `catalog-sync ${args.join(' ')}`,
  );
}

/** Runs a TypeScript entry point of the project (`chaos/run.ts`, ...) under Node with tsx, no stdin. */
export function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<RunResult> {
  return runNode(tsxScript(script, args), env, timeoutMs, `${script} ${args.join(' ')}`);
}

/** Starts a TypeScript entry point of the project as its own process; the caller kills it. */
export function spawnScript(
  script: string,
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, tsxScript(script, args), {
    cwd: root,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

/** Starts `npm run worker`'s entry point as its own process; the caller kills it. */
export function spawnWorker(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  return spawnScript(path.join('worker', 'run.ts'), [], env);
}

export async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  what: string,
  refresh?: () => Promise<void>,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    await refresh?.().catch(() => undefined);
    if (check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A port nothing listens on right now, for a process the test starts. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
