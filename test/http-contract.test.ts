/**
 * The HTTP front's contract, checked from outside: Schemathesis (installed by
 * scripts/install-schemathesis.sh) reads the served /openapi.json, generates valid and invalid
 * requests for every operation and runs all of its checks against the answers of a real front, on
 * a real worker, Temporal dev server and Octogen simulator. It must find nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHttpFront, type RunningHttpFront } from '../http/http-front.ts';
import { openStateStore } from '../activities/state/index.ts';
import { freshStateUrl } from './helpers/state.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, makeWorker, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'contract-octogen-key';
const TOKEN = 'contract-token';
const ST = path.join(projectRoot(), '.tools', 'venv', 'bin', 'st');

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let front: RunningHttpFront;
let stopWorker: () => Promise<void>;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products: makeOctogenProducts('alpha', 10) });
  const taskQueue = uniqueTaskQueue('contract');
  const worker = await makeWorker(t, { taskQueue, env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY } });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
  };
  // The target lookups read a real store (SQLite): without one they would answer 503 by design.
  const stateStore = openStateStore({ CATALOG_SYNC_STATE_URL: await freshStateUrl('sqlite', 'contract') });
  front = await startHttpFront({ client: t.client, taskQueue, tokens: [TOKEN], logger: false, port: 0, stateStore });
});

afterAll(async () => {
  await front?.close();
  await stopWorker?.();
  await sim?.close();
  await t?.close();
});

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NO_COLOR: '1',
        SCHEMATHESIS_TELEMETRY: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

it('finds nothing: every answer is documented, conforms to its schema and fits the request', async () => {
  expect(existsSync(ST), `${ST} is missing: run bash scripts/install-schemathesis.sh`).toBe(true);
  // Its cache and reports go to a folder of its own, never into the project.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'schemathesis-'));
  try {
    const { code, output } = await run(
      ST,
      [
        '--config-file',
        path.join(projectRoot(), 'test', 'schemathesis.toml'),
        'run',
        `${front.url}/openapi.json`,
        '--checks',
        'all',
        '--header',
        `Authorization: Bearer ${TOKEN}`,
        '--max-examples',
        '30',
        '--seed',
        '20260925',
        // One worker: Python 3.11's ast module keeps one recursion counter for all threads, and
        // Hypothesis parses sources from each, which two workers can trip ("AST constructor recursion
        // depth mismatch").
        '--workers',
        '1',
        '--no-shrink',
      ],
      dir,
    );
    expect(code, output).toBe(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 180_000);
