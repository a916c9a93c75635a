/**
 * The embedded SQLite store as the worker uses it: the same interface, its work done on a thread of
 * its own (store-thread.ts). The thread loads TypeScript the way the worker does (tsx). A thread
 * that dies fails every call waiting on it, and the next call opens a new one.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TargetStateStore } from '../../contracts/target-state.ts';
import type { StoreReply, StoreRequest } from './store-thread.ts';

/** tsx's ESM `register` (its package's `./esm/api` import entry), which the thread loads first. */
function tsxRegisterUrl(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
    exports: Record<string, { import?: { default?: string } } | string>;
  };
  const entry = pkg.exports['./esm/api'];
  const relative = typeof entry === 'object' ? entry.import?.default : undefined;
  if (relative === undefined) throw new Error('tsx has no ./esm/api import entry: reinstall the project (npm ci)');
  return pathToFileURL(path.join(path.dirname(manifest), relative)).href;
}

export function openThreadedSqliteStore(file: string): TargetStateStore {
  const tsx = tsxRegisterUrl();
  const entry = new URL('./store-thread.ts', import.meta.url).href;
  let thread: Worker | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const failAll = (err: Error) => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
    thread = undefined;
  };
  const start = (): Worker => {
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    const t = new Worker(code, { eval: true, workerData: { file } });
    t.on('message', (reply: StoreReply) => {
      const w = waiting.get(reply.id);
      if (!w) return;
      waiting.delete(reply.id);
      if (waiting.size === 0) t.unref();
      if ('error' in reply) w.reject(new Error(reply.error));
      else w.resolve(reply.value);
    });
    t.on('error', (err) => failAll(err));
    t.on('exit', (code) => failAll(new Error(`the store's thread ended (exit code ${code})`)));
    // Keeps the process alive only while a call waits on it.
    t.unref();
    return t;
  };
  const call = (op: StoreRequest['op'], ...args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      thread ??= start();
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      thread.ref();
      thread.postMessage({ id, op, args } satisfies StoreRequest);
    });
  return {
    where: `sqlite ${file}`,
    record: async (records) => (await call('record', records)) as number,
    find: async (provider, identity) =>
      (await call('find', provider, identity)) as Awaited<ReturnType<TargetStateStore['find']>>,
    list: async (q) => (await call('list', q)) as Awaited<ReturnType<TargetStateStore['list']>>,
    acceptedHashes: async (account, identities, exceptSync) =>
      new Map((await call('acceptedHashes', account, identities, exceptSync)) as [string, string][]),
    carryable: async (q) => (await call('carryable', q)) as Awaited<ReturnType<TargetStateStore['carryable']>>,
    async close() {
      const t = thread;
      if (!t) return;
      await call('close');
      thread = undefined;
      await t.terminate();
    },
  };
}
