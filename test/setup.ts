/**
 * Per test file: Temporal's runtime logs go to a buffer (shown only when a test fails), and any
 * stray console output fails the test that printed it.
 */
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import { afterEach, beforeEach, expect, vi } from 'vitest';

export const runtimeLog: LogEntry[] = [];
try {
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => runtimeLog.push(entry)),
    // Core's own logs go through the same logger instead of straight to stderr.
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} } },
  });
} catch {
  // Already installed in this process by an earlier file.
}

const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
let printed: string[] = [];

beforeEach(() => {
  printed = [];
  for (const m of methods) {
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      printed.push(`console.${m}: ${args.map(String).join(' ')}`);
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
  expect(printed, 'stray console output').toEqual([]);
});
