/**
 * `npm run chaos` and `npm run bench` run under plain Node (tsx), not vitest's module runner: an
 * import Node cannot link (a named import from a CommonJS package) stops them before they start,
 * and nothing else in `npm test` would see it. Each is started with a bad setting, which it
 * refuses in one line only after its whole module graph has loaded.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../scripts/temporal-bin.ts';

function run(script: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot(), script), ...args], {
      cwd: projectRoot(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the tools run under Node', () => {
  it('npm run chaos loads and refuses a bad --soak duration, naming it', async () => {
    const { code, stderr } = await run('chaos/run.ts', ['--soak', 'soon'], {});
    expect(stderr).toContain('--soak takes a duration such as 10m or 90s, got "soon"');
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export/);
    expect(code).toBe(2);
  });

  it('npm run bench loads and refuses a bad BENCH_SIZES, naming it', async () => {
    const { code, stderr } = await run('bench/run.ts', [], { BENCH_SIZES: 'many' });
    expect(stderr).toContain('BENCH_SIZES must be a comma-separated list of whole numbers, got "many"');
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export/);
    expect(code).not.toBe(0);
  });
});
