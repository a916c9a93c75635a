/**
 * The operator's interface through Temporal's own CLI: every `temporal` command of docs/operate.md
 * run verbatim through the real binary against a real sync (so the page cannot rot), a scheduled
 * sync found by the documented queries as the sync and never its wrapper, wrong input answered
 * clearly, and `catalog-sync setup` on a namespace that lacks the search attributes.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitFirstPass, awaitReport, createSyncSchedule, deleteSyncSchedule, startSync } from '../client/index.ts';
import { HANDLER_DESCRIPTIONS } from '../contracts/index.ts';
import { projectRoot, temporalCliPath } from '../scripts/temporal-bin.ts';
import {
  demoOctogenIndex,
  DEMO_OCTOGEN_KEY,
  startOctogenSimulator,
  type OctogenSimulator,
} from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, makeWorker, type TemporalTestEnv } from './helpers/temporal.ts';
import type { SyncWorker } from '../worker/worker.ts';

const root = projectRoot();
const DOC = path.join(root, 'docs', 'operate.md');
let t: TemporalTestEnv;
let sim: OctogenSimulator;
let worker: SyncWorker;
let running: Promise<void>;
let taskQueue: string;
const scheduleId = `ops-${randomUUID().slice(0, 8)}`;
const tmp = path.join(os.tmpdir(), `operate-cli-${randomUUID()}`);

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator(demoOctogenIndex());
  taskQueue = uniqueTaskQueue('operate');
  worker = await makeWorker(t, {
    taskQueue,
    env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: DEMO_OCTOGEN_KEY },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await deleteSyncSchedule(t.client, scheduleId).catch(() => undefined);
  await sim?.close();
  await t?.close();
});

interface Ran {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one documented command as a shell runs it, with the page's variables set. */
function sh(command: string, vars: Record<string, string>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], {
      cwd: root,
      env: {
        PATH: `${path.dirname(temporalCliPath())}:${process.env.PATH ?? ''}`,
        HOME: process.env.HOME ?? '',
        TEMPORAL_ADDRESS: t.address,
        TEMPORAL_NAMESPACE: t.namespace,
        ...vars,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish in 30 s: ${stderr}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ command, code, stdout, stderr });
    });
  });
}

/** The page's `temporal ...` commands, in order (one a line inside its sh blocks). */
function documentedCommands(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return blocks.flatMap((b) => b.split('\n').filter((l) => l.startsWith('temporal ')));
}

/** Visibility is eventually consistent: run until `ok` holds or 20 s pass. */
async function until(command: string, vars: Record<string, string>, ok: (r: Ran) => boolean): Promise<Ran> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await sh(command, vars);
    if (ok(r) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Whitespace-separated words of an output: a wrapper's id is a prefix of its sync's, never a word of it. */
const words = (s: string) => s.split(/\s+/);

async function scheduledSyncWithRejections(): Promise<{ wrapper: string; sync: string }> {
  const file = path.join(tmp, 'scheduled.ndjson');
  const lines = [
    { catalog: 'warrenlotas', url: 'https://warrenlotas.com/products/p-010' },
    { url: 'https://warrenlotas.com/products/retired-1' },
    { url: 'https://warrenlotas.com/products/retired-2' },
    { url: 'https://warrenlotas.com/products/retired-3' },
  ];
  mkdirSync(tmp, { recursive: true });
  writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
  await createSyncSchedule(t.client, {
    id: scheduleId,
    provider: 'octogen',
    every: '1h',
    source: { file },
    taskQueue,
    paused: true,
  });
  await t.client.schedule.getHandle(scheduleId).trigger();
  const query = `CatalogSyncKind = 'scheduled-run' AND CatalogSyncSchedule = '${scheduleId}'`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    for await (const w of t.client.workflow.list({ query })) {
      await t.client.workflow.getHandle(w.workflowId).result();
      return { wrapper: w.workflowId, sync: `${w.workflowId}/sync` };
    }
    if (Date.now() > deadline) throw new Error(`no scheduled run of ${scheduleId} listed`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

it('runs every temporal command of docs/operate.md verbatim against a real sync, with the documented answers', async () => {
  const scheduled = await scheduledSyncWithRejections();
  const examples = readFileSync(path.join(root, 'examples', 'octogen-targets.ndjson'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);
  // The demo's sample and one rejection the page's corrections leave alone (t8): the sync stays open to the end.
  const targets = [...examples, { url: 'https://warrenlotas.com/products/retired-8' }];
  const { workflowId } = await startSync(
    t.client,
    { provider: 'octogen', key: uniqueKey('operate'), targets, options: { resubmissionWindow: '10m' } },
    taskQueue,
  );
  const first = await awaitFirstPass(t.client, workflowId);
  expect(first.report.rejected.map((r) => r.id).sort()).toEqual(['t5', 't6', 't7', 't8']);

  const vars = { SYNC: workflowId, SCHEDULE: scheduleId };
  const commands = documentedCommands();
  expect(commands.length).toBeGreaterThanOrEqual(20);
  const seen: string[] = [];
  for (const command of commands) {
    seen.push(command);
    if (command.startsWith('temporal workflow list')) {
      const expectSync =
        /CatalogSyncRejected > 0|CatalogSyncProvider = 'octogen'|'Running'|CatalogSyncPhase = 'open'/.test(command);
      const expectScheduled = /CatalogSyncSchedule/.test(command);
      const r = await until(
        command,
        vars,
        (x) =>
          x.code === 0 &&
          (!expectSync || words(x.stdout).includes(workflowId)) &&
          (!expectScheduled || words(x.stdout).includes(scheduled.sync)),
      );
      expect(r.code, `${command}: ${r.stderr}`).toBe(0);
      if (expectSync) expect(words(r.stdout), command).toContain(workflowId);
      if (expectScheduled) expect(words(r.stdout), command).toContain(scheduled.sync);
      // Wrappers never show where syncs are asked for.
      expect(words(r.stdout), command).not.toContain(scheduled.wrapper);
      continue;
    }
    const r = await sh(command, vars);
    if (command.includes('"targets"')) {
      // The documented wrong shape: fails at once, not retryable, naming the expected shape.
      expect(r.code, command).not.toBe(0);
      const said = r.stdout + r.stderr;
      expect(said).toContain('InvalidResubmission');
      expect(said).toContain('{"items":[{"target":');
      expect(said).not.toMatch(/retryable: ?true|"retryable":true/i);
      continue;
    }
    expect(r.code, `${command}: ${r.stderr}`).toBe(0);
    const said = r.stdout;
    if (command.includes('workflow describe')) expect(said).toContain(workflowId);
    if (command.includes('workflow metadata')) {
      for (const [name, description] of Object.entries(HANDLER_DESCRIPTIONS)) {
        expect(said, name).toContain(name);
        expect(said.replace(/\s+/g, ' '), name).toContain(description.slice(0, 40));
      }
      expect(said).toContain('open for re-submission');
    }
    if (command.includes('--name status')) {
      expect(said).toContain('"firstPassSettled"');
      expect(said).toContain('"t6"');
    }
    if (command.includes('--name sliceEntries')) {
      expect(said).toContain('"total"');
      expect(said).toContain('"t5"');
    }
    if (command.includes('--name sliceWarnings')) expect(said).toContain('"total"');
    if (command.includes('--name rejectedElsewhere')) expect(said).toContain('"slices"');
    if (command.includes('--name resubmitWithAnswer')) {
      expect(said).toContain('"taken":');
      expect(said).toContain('"t5"');
    }
    if (command.includes('schedule list')) {
      expect(said).toContain(scheduleId);
      expect(said).toContain('catalog-sync: octogen sync of file'); // the note names provider and source
    }
    if (command.includes('schedule describe')) expect(said).toContain('catalog-sync: octogen sync of file');
  }
  expect(seen.some((c) => c.includes('--name finish'))).toBe(true);
  // The signalled correction was taken, `finish` closed the sync, and the counts add up.
  const final = await awaitReport(t.client, workflowId);
  const c = final.report.counts;
  expect(final.report.phase).toBe('closed');
  expect(final.report.superseded.map((s) => s.id).sort()).toEqual(['t5', 't6', 't7']);
  expect(c.submitted).toBe(c.accepted + c.rejected + c.failed + c.superseded + c.pending);
});

it('lists a scheduled sync with 3 rejections once, as the sync and not its wrapper', async () => {
  // The schedule of the first test ran once more: a second sync with the same 3 rejections.
  await t.client.schedule.getHandle(scheduleId).trigger();
  const runs = async () => {
    const out: string[] = [];
    const q = `CatalogSyncKind = 'scheduled-run' AND CatalogSyncSchedule = '${scheduleId}'`;
    for await (const w of t.client.workflow.list({ query: q })) out.push(w.workflowId);
    return out;
  };
  let wrappers = await runs();
  for (let i = 0; i < 100 && wrappers.length < 2; i += 1) {
    await new Promise((res) => setTimeout(res, 300));
    wrappers = await runs();
  }
  expect(wrappers.length).toBe(2);
  for (const w of wrappers) await t.client.workflow.getHandle(w).result();
  const syncs = wrappers.map((w) => `${w}/sync`);
  for (const query of ['CatalogSyncRejected > 0', "CatalogSyncKind = 'sync' AND CatalogSyncProvider = 'octogen'"]) {
    const r = await until(`temporal workflow list --query "${query}"`, {}, (x) =>
      syncs.every((s) => words(x.stdout).includes(s)),
    );
    for (const s of syncs)
      expect(
        words(r.stdout).filter((w) => w === s),
        query,
      ).toHaveLength(1);
    for (const w of wrappers) expect(words(r.stdout), query).not.toContain(w);
  }
  const described = await t.client.workflow.getHandle(syncs[0] as string).describe();
  expect(described.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value])).toEqual(
    expect.arrayContaining([
      ['CatalogSyncRejected', 3],
      ['CatalogSyncSchedule', scheduleId],
      ['CatalogSyncKind', 'sync'],
      ['CatalogSyncProvider', 'octogen'],
    ]),
  );
  const shown = await sh(`temporal workflow describe --workflow-id "$SYNC"`, { SYNC: syncs[0] as string });
  expect(shown.stdout).toContain(`scheduled by ${scheduleId}`);
});

it('refuses a wrong-shaped signal with a reason that status and the current details show', async () => {
  const { workflowId } = await startSync(
    t.client,
    {
      provider: 'octogen',
      key: uniqueKey('signal'),
      targets: [{ url: 'https://warrenlotas.com/products/retired-x' }],
      options: { resubmissionWindow: '10m' },
    },
    taskQueue,
  );
  await awaitFirstPass(t.client, workflowId);
  const r = await sh(
    `temporal workflow signal --workflow-id "$SYNC" --name resubmit --input '{"targets":[{"uuid":"11111111-1111-4111-8111-111111111111"}]}'`,
    { SYNC: workflowId },
  );
  expect(r.code).toBe(0);
  const status = await until(`temporal workflow query --workflow-id "$SYNC" --name status`, { SYNC: workflowId }, (x) =>
    x.stdout.includes('invalid_resubmission'),
  );
  expect(status.stdout).toContain('invalid_resubmission');
  expect(status.stdout).toContain('{\\"items\\":[{\\"target\\"');
  const meta = await sh(`temporal workflow metadata --workflow-id "$SYNC"`, { SYNC: workflowId });
  expect(meta.stdout.replace(/\s+/g, ' ')).toContain('last re-submission signal refused: items');
  await sh(`temporal workflow signal --workflow-id "$SYNC" --name finish`, { SYNC: workflowId });
  await awaitReport(t.client, workflowId);
});

it('names `catalog-sync setup` when the namespace lacks the search attributes; after setup the same submit works', async () => {
  const namespace = `bare-${randomUUID().slice(0, 8)}`;
  const created = await sh(`temporal operator namespace create --namespace ${namespace}`, {});
  expect(created.code, created.stderr).toBe(0);
  const file = path.join(tmp, 'one.json');
  mkdirSync(tmp, { recursive: true });
  writeFileSync(file, JSON.stringify([{ uuid: '11111111-1111-4111-8111-111111111111' }]));
  const env = { TEMPORAL_ADDRESS: t.address, TEMPORAL_NAMESPACE: namespace, CATALOG_SYNC_TASK_QUEUE: taskQueue };
  const submit = () => runCli(['submit', '--provider', 'octogen', '--targets', file], env);
  // A namespace just registered may take a moment to be served.
  let refused = await submit();
  for (let i = 0; i < 20 && /not found|namespace/i.test(refused.stderr) && !/setup/.test(refused.stderr); i += 1) {
    await new Promise((res) => setTimeout(res, 500));
    refused = await submit();
  }
  expect(refused.code).not.toBe(0);
  expect(refused.stderr.trim().split('\n'), refused.stderr).toHaveLength(1);
  expect(refused.stderr).toContain(`TEMPORAL_NAMESPACE=${namespace} catalog-sync setup`);

  const setup = await runCli(['setup'], env);
  expect(setup.code, setup.stderr).toBe(0);
  expect(setup.stdout).toContain('registered CatalogSyncProvider');
  const again = await runCli(['setup'], env);
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toContain('nothing to do');

  let started = await submit();
  for (let i = 0; i < 20 && started.code !== 0; i += 1) {
    await new Promise((res) => setTimeout(res, 500)); // the attributes reach the namespace's cache
    started = await submit();
  }
  expect(started.code, started.stderr).toBe(0);
  expect(started.stdout).toContain('catalog-sync-octogen-');
});
