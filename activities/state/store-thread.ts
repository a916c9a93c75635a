/**
 * The SQLite store's own thread: the worker's recordings and lookups run here, off the thread that
 * sends batches, so a write (a B-tree update a target) never holds up the next provider call.
 * Spoken to by activities/state/threaded.ts, one request at a time in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { TargetStateStore } from '../../contracts/target-state.ts';
import { openSqliteStore } from './sqlite.ts';

export interface StoreRequest {
  id: number;
  op: 'record' | 'find' | 'list' | 'acceptedHashes' | 'carryable' | 'close';
  args: unknown[];
}

export type StoreReply = { id: number; value: unknown } | { id: number; error: string };

const port = parentPort;
if (port) {
  let store: TargetStateStore | undefined;
  let openError: string | undefined;
  try {
    store = openSqliteStore((workerData as { file: string }).file);
  } catch (err) {
    openError = (err as Error).message;
  }
  port.on('message', (req: StoreRequest) => {
    void answer(store, openError, req).then((reply) => port.postMessage(reply));
  });
}

async function answer(store: TargetStateStore | undefined, openError: string | undefined, req: StoreRequest) {
  if (!store) return { id: req.id, error: openError ?? 'the store did not open' };
  try {
    const a = req.args;
    switch (req.op) {
      case 'record':
        return { id: req.id, value: await store.record(a[0] as Parameters<TargetStateStore['record']>[0]) };
      case 'find':
        return { id: req.id, value: await store.find(a[0] as string, a[1] as string) };
      case 'list':
        return { id: req.id, value: await store.list(a[0] as Parameters<TargetStateStore['list']>[0]) };
      case 'acceptedHashes':
        return {
          id: req.id,
          value: [
            ...(await store.acceptedHashes(a[0] as string, a[1] as string[], a[2] as string | undefined)).entries(),
          ],
        };
      case 'carryable':
        return { id: req.id, value: await store.carryable(a[0] as Parameters<TargetStateStore['carryable']>[0]) };
      case 'close':
        await store.close();
        return { id: req.id, value: undefined };
    }
  } catch (err) {
    return { id: req.id, error: (err as Error).message ?? String(err) };
  }
}
