/** What every CLI command shares: one-line errors, and a Temporal client for the command's run. */
import { Client, Connection } from '@temporalio/client';
import { providerAdapter } from '../activities/providers/index.ts';
import { PRIORITY_KEYS, SyncOptionsSchema, type SyncOptions } from '../contracts/index.ts';
import { dataConverterFromEnv } from '../temporal/codec.ts';
import { temporalSettings, type TemporalSettings } from '../temporal/connection.ts';
import { quote } from '../client/request-check.ts';

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

/** The sync options the flags ask for, each checked against its limit and named by its flag. */
export function optionsFromFlags(
  provider: string,
  o: { window?: string; batchSize?: string; priority?: string; changedOnly?: boolean },
): SyncOptions {
  const adapter = providerAdapter(provider);
  const options: SyncOptions = {};
  if (o.window !== undefined) {
    const parsed = SyncOptionsSchema.safeParse({ resubmissionWindow: o.window });
    if (!parsed.success) {
      const why = parsed.error.issues[0]?.message ?? 'not a duration';
      throw new CliError(
        /^a duration/.test(why)
          ? `--window ${quote(o.window)} is not a duration: use e.g. 90s, 30m or 1h (at most 30d)`
          : `--window ${quote(o.window)} ${why.replace(/^resubmissionWindow is \S+, /, 'is ')}`,
      );
    }
    options.resubmissionWindow = o.window;
  }
  if (o.batchSize !== undefined) {
    const n = Number(o.batchSize);
    const max = adapter?.documentedLimits.maxTargets;
    if (!/^\d+$/.test(o.batchSize.trim()) || !Number.isInteger(n) || n <= 0)
      throw new CliError(
        `--batch-size ${quote(o.batchSize)} must be a positive whole number${max ? ` up to ${max}` : ''}`,
      );
    if (max !== undefined && n > max)
      throw new CliError(
        `--batch-size ${n} is over ${adapter?.title}'s limit of ${max} targets a call: give at most ${max}`,
      );
    options.batchSize = n;
  }
  if (o.priority !== undefined) {
    const { min, max } = PRIORITY_KEYS;
    const n = Number(o.priority);
    if (!/^\d+$/.test(o.priority.trim()) || n < min || n > max)
      throw new CliError(
        `--priority ${quote(o.priority)} must be a whole number from ${min} (most urgent) to ${max} (least urgent); the default is ${PRIORITY_KEYS.default}`,
      );
    options.priorityKey = n;
  }
  if (o.changedOnly) options.changedOnly = true;
  return options;
}
