/** What every CLI command shares: one-line errors, and a Temporal client for the command's run. */
import { Client, Connection } from '@temporalio/client';
import { dataConverterFromEnv } from './codec.ts';
import { temporalSettings, type TemporalSettings } from './connection.ts';

/** An error the CLI explains in one line; anything else is reported by its message too. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

async function connect(settings: TemporalSettings): Promise<Client> {
  // Read before connecting, so a malformed key list is its own clear error.
  const dataConverter = dataConverterFromEnv();
  try {
    const connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: '5s' });
    return new Client({ connection, namespace: settings.namespace, ...(dataConverter ? { dataConverter } : {}) });
  } catch (err) {
    throw new CliError(
      `cannot reach the Temporal server at ${settings.address} (${(err as Error).message.split('\n')[0]}): ` +
        'start one with `npm run dev-server`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) to your cluster',
    );
  }
}

/**
 * Runs `fn` with a client from the standard settings and closes it after. `explain` turns the
 * command's known errors into one-line CliErrors (it returns undefined for the others).
 */
export async function withClient<T>(
  fn: (client: Client, settings: TemporalSettings) => Promise<T>,
  explain: (err: unknown, settings: TemporalSettings) => CliError | undefined = () => undefined,
): Promise<T> {
  const settings = temporalSettings();
  const client = await connect(settings);
  try {
    return await fn(client, settings);
  } catch (err) {
    throw explain(err, settings) ?? err;
  } finally {
    await client.connection.close();
  }
}
