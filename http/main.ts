/**
 * Runs the HTTP front from the environment (`npm run http-front`): the standard Temporal client
 * settings, CATALOG_SYNC_HTTP_TOKENS (comma-separated bearer tokens, required),
 * CATALOG_SYNC_HTTP_PORT (8080) and CATALOG_SYNC_HTTP_HOST (127.0.0.1). Problems are one line on
 * stderr with a non-zero exit.
 */
import { Client, Connection } from '@temporalio/client';
import { dataConverterFromEnv } from '../temporal/codec.ts';
import { temporalSettings } from '../temporal/connection.ts';
import { startHttpFront } from './http-front.ts';

class ConfigError extends Error {}

interface HttpFrontEnv {
  tokens: string[];
  port: number;
  host: string;
}

function httpFrontEnv(env: NodeJS.ProcessEnv = process.env): HttpFrontEnv {
  const tokens = (env.CATALOG_SYNC_HTTP_TOKENS ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0) {
    throw new ConfigError(
      'CATALOG_SYNC_HTTP_TOKENS is not set (or names no token): give it the bearer tokens callers may use, comma-separated',
    );
  }
  const rawPort = env.CATALOG_SYNC_HTTP_PORT?.trim() || '8080';
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65535) {
    throw new ConfigError(`CATALOG_SYNC_HTTP_PORT must be a port number (0-65535), not "${rawPort}"`);
  }
  return { tokens, port, host: env.CATALOG_SYNC_HTTP_HOST?.trim() || '127.0.0.1' };
}

async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = httpFrontEnv(env);
  const settings = temporalSettings(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: '5s' });
  } catch (err) {
    throw new ConfigError(
      `cannot reach the Temporal server at ${settings.address} (${(err as Error).message.split('\n')[0]}): ` +
        'start one with `npm run dev-server`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) to your cluster',
    );
  }
  const dataConverter = dataConverterFromEnv();
  const client = new Client({ connection, namespace: settings.namespace, ...(dataConverter ? { dataConverter } : {}) });
  const front = await startHttpFront({
    client,
    taskQueue: settings.taskQueue,
    tokens: config.tokens,
    logger: true,
    port: config.port,
    host: config.host,
  }).catch(async (err: unknown) => {
    await connection.close();
    throw err;
  });
  process.stderr.write(
    `catalog-sync http front on ${front.url} (task queue ${settings.taskQueue}, namespace ${settings.namespace}, ` +
      `Temporal at ${settings.address}); OpenAPI at ${front.url}/openapi.json\n`,
  );

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void front
      .close()
      .finally(() => connection.close())
      .catch((err: unknown) => {
        process.stderr.write(`catalog-sync http front: ${(err as Error).message.split('\n')[0]}\n`);
        process.exitCode = 1;
      });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const e = err as Error;
  const known = e instanceof ConfigError;
  process.stderr.write(`catalog-sync http front: ${known ? e.message : `${e.name}: ${e.message.split('\n')[0]}`}\n`);
  process.exitCode = 1;
});
