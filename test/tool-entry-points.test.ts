/**
 * `npm run chaos` and `npm run bench` run under plain Node (tsx), not vitest's module runner: an
 * import Node cannot link (a named import from a CommonJS package) stops them before they start,
 * and nothing else in `npm test` would see it. Each is started with a bad setting, which it
 * refuses in one line only after its whole module graph has loaded.
 */
import { describe, expect, it } from 'vitest';
import { runScript } from './helpers/processes.ts';

describe('the tools run under Node', () => {
  it('npm run chaos loads and refuses a bad --soak duration, naming it', async () => {
    const { code, stderr } = await runScript('chaos/run.ts', ['--soak', 'soon'], {});
    expect(stderr).toContain('--soak takes a duration such as 10m or 90s, got "soon"');
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export/);
    expect(code).toBe(2);
  });

  it('npm run bench loads and refuses a bad BENCH_SIZES, naming it', async () => {
    const { code, stderr } = await runScript('bench/run.ts', [], { BENCH_SIZES: 'many' });
    expect(stderr).toContain('BENCH_SIZES must be a comma-separated list of whole numbers, got "many"');
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export/);
    expect(code).not.toBe(0);
  });
});
