/**
 * What every chaos scenario is handed (chaos/run.ts builds it once per `npm run chaos`): the dev
 * server (replaced when a scenario restarts it), clients on it, the workflow bundle and a scratch
 * folder. A scenario returns one RunRecord; nothing here writes to the console.
 */
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { startDevServer, type DevServer } from '../scripts/dev-server.ts';
import type { Evaluation } from './scenarios.ts';

export interface Ctx {
  server: DevServer;
  dbFile: string;
  port: number;
  client: Client;
  native: NativeConnection;
  bundlePath: string;
  /** Scratch folder of this chaos run (target files). */
  dir: string;
  /** Epoch ms by which the run must be done. */
  deadline: number;
}

export interface RunRecord {
  scenario: string;
  seed: number;
  wallMs: number;
  detail: string;
  evaluation?: Evaluation;
  error?: string;
  ok: boolean;
}

/** A row of the scenario table: a name and one seeded run. */
export interface Scenario {
  name: string;
  run(ctx: Ctx, seed: number): Promise<RunRecord>;
}

/** Stops the dev server and starts it again on its SQLite file (nothing is lost). */
export async function restartServer(ctx: Ctx, downMs: number): Promise<void> {
  await ctx.server.stop();
  await new Promise((r) => setTimeout(r, downMs));
  ctx.server = await startDevServer({ headless: true, dbFile: ctx.dbFile, port: ctx.port, log: 'quiet' });
}

export const errorText = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
