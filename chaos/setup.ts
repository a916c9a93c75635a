/**
 * One chaos environment: a Temporal dev server on a SQLite file (so a restart loses nothing), the
 * workflow bundle written once for every worker process, clients, and a scratch folder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startDevServer } from '../scripts/dev-server.ts';
import { workflowBundleOptions } from '../worker/worker.ts';
import type { Ctx } from './context.ts';

export async function startChaosEnv(): Promise<{ ctx: Ctx; close(): Promise<void> }> {
  Runtime.install({
    logger: new DefaultLogger('ERROR', () => undefined),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-chaos-'));
  const dbFile = path.join(dir, 'temporal.sqlite');
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const [server, bundle] = await Promise.all([
    startDevServer({ headless: true, dbFile, log: 'quiet' }),
    bundleWorkflowCode({ ...workflowBundleOptions(), logger: quiet }),
  ]);
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  const connection = await Connection.connect({ address: server.address });
  const native = await NativeConnection.connect({ address: server.address });
  const ctx: Ctx = {
    server,
    dbFile,
    port: Number(server.address.split(':').pop()),
    client: new Client({ connection, namespace: server.namespace }),
    native,
    bundlePath,
    dir,
    deadline: 0,
  };
  return {
    ctx,
    async close() {
      await connection.close().catch(() => undefined);
      await native.close().catch(() => undefined);
      await ctx.server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
