/**
 * The layer check (.dependency-cruiser.cjs, run by `npm run lint`): the project passes it, and it
 * fails on an import up a layer, on a workflow importing an activity's code, on production code
 * importing the test side, and on a circle.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { projectRoot } from '../scripts/temporal-bin.ts';

const run = promisify(execFile);
const root = projectRoot();
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');
const config = path.join(root, '.dependency-cruiser.cjs');
const fixture = mkdtempSync(path.join(os.tmpdir(), 'layers-'));
afterAll(() => rmSync(fixture, { recursive: true, force: true }));

async function cruise(cwd: string, dirs: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(depcruise, ['--config', config, ...dirs], { cwd });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? 1, out: e.stdout ?? '' };
  }
}

function write(file: string, text: string): void {
  mkdirSync(path.dirname(path.join(fixture, file)), { recursive: true });
  writeFileSync(path.join(fixture, file), text);
}

it('passes on the project as it is', async () => {
  const dirs = ['cli', 'http', 'client', 'temporal', 'worker', 'workflows', 'activities', 'contracts'];
  const r = await cruise(root, [...dirs, 'simulators', 'scripts', 'bench', 'chaos', 'test']);
  expect(r.code, r.out).toBe(0);
});

it('fails on an import up a layer, a workflow importing activity code, production importing tests, and a circle', async () => {
  copyFileSync(path.join(root, 'tsconfig.json'), path.join(fixture, 'tsconfig.json'));
  write('client/library.ts', 'export const library = 1;\n');
  write('activities/up.ts', "import { library } from '../client/library.ts';\nexport const up = library;\n");
  write('activities/work.ts', 'export const work = (): number => 1;\n');
  write('workflows/flow.ts', "import { work } from '../activities/work.ts';\nexport const flow = work;\n");
  write('test/helper.ts', 'export const helper = 1;\n');
  write('worker/leans.ts', "import { helper } from '../test/helper.ts';\nexport const leans = helper;\n");
  write('contracts/a.ts', "import type { B } from './b.ts';\nexport type A = { b?: B };\n");
  write('contracts/b.ts', "import type { A } from './a.ts';\nexport type B = { a?: A };\n");
  const r = await cruise(fixture, ['client', 'activities', 'workflows', 'test', 'worker', 'contracts']);
  expect(r.code).not.toBe(0);
  expect(r.out).toContain('activities-imports-down-only: activities/up.ts → client/library.ts');
  expect(r.out).toContain('workflows-import-activities-as-types: workflows/flow.ts → activities/work.ts');
  expect(r.out).toContain('product-never-imports-tools: worker/leans.ts → test/helper.ts');
  expect(r.out).toMatch(/no-circular: contracts\/(a|b)\.ts/);
});
