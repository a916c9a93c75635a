/**
 * The worker's telemetry: structured JSON logs (one object a line on stderr, with the workflow ID
 * the SDK attaches to every workflow and activity line) and Prometheus metrics (the SDK's runtime
 * metrics plus the product's own counters) when CATALOG_SYNC_METRICS_PORT is set.
 */
import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogEntry } from '@temporalio/worker';

/** One log entry as a JSON line. BigInt-free and flat, for log shippers. */
export function jsonLine(entry: LogEntry): string {
  const { timestampNanos, level, message, meta } = entry;
  return JSON.stringify({
    time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(),
    level: level.toLowerCase(),
    message,
    ...meta,
  });
}

export interface TelemetrySettings {
  /** Where Prometheus scrapes the worker's metrics ("127.0.0.1:9464"), or undefined for none. */
  metricsAddress?: string;
  logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}

export function telemetrySettings(env: NodeJS.ProcessEnv): TelemetrySettings {
  const port = env.CATALOG_SYNC_METRICS_PORT;
  if (port !== undefined && port !== '' && !/^\d+$/.test(port)) {
    throw new Error(`CATALOG_SYNC_METRICS_PORT="${port}" must be a port number, e.g. 9464`);
  }
  const level = (env.CATALOG_SYNC_LOG_LEVEL ?? 'INFO').toUpperCase();
  if (!['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'].includes(level)) {
    throw new Error(`CATALOG_SYNC_LOG_LEVEL="${env.CATALOG_SYNC_LOG_LEVEL}" must be one of debug, info, warn, error`);
  }
  return {
    ...(port ? { metricsAddress: `${env.CATALOG_SYNC_METRICS_HOST || '127.0.0.1'}:${port}` } : {}),
    logLevel: level as TelemetrySettings['logLevel'],
  };
}

/**
 * SDK lines that describe what the design intends, not a problem: each provider worker polls
 * activities only (its task queue has no workflows), and the SDK warns about it once per worker.
 */
const EXPECTED_LINES = new Set(['No workflows registered, not polling for workflow tasks']);

/** A log sink that drops EXPECTED_LINES, so a normal run prints no warning a user would chase. */
export const withoutExpectedLines =
  (write: (entry: LogEntry) => void) =>
  (entry: LogEntry): void => {
    if (!EXPECTED_LINES.has(entry.message)) write(entry);
  };

/** The demo's and scripts' console logger: the SDK's own format, without EXPECTED_LINES. */
export const consoleLogger = (level: TelemetrySettings['logLevel']): DefaultLogger =>
  new DefaultLogger(
    level,
    withoutExpectedLines((e) => process.stderr.write(`${e.level} ${e.message} ${JSON.stringify(e.meta ?? {})}\n`)),
  );

/** Installs the runtime once per process, before any connection or worker is made. */
export function installTelemetry(settings: TelemetrySettings, write: (line: string) => void): void {
  Runtime.install({
    logger: new DefaultLogger(
      settings.logLevel,
      withoutExpectedLines((entry) => write(`${jsonLine(entry)}\n`)),
    ),
    telemetryOptions: {
      // Core's own logs join the same JSON stream.
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      ...(settings.metricsAddress ? { metrics: { prometheus: { bindAddress: settings.metricsAddress } } } : {}),
    },
  });
}
