/**
 * The end of a sync: a source the sync owns (a spooled file) is deleted once the sync has closed
 * or aborted, so large requests never outlive their sync on disk. Workflow code: the deletion is
 * an activity. A source that is not spooled (the caller's own file or URL) costs no event at all,
 * so histories recorded before this existed replay unchanged.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/index.ts';
import { isSpooled, type TargetSource } from '../contracts/index.ts';

const { releaseSource } = proxyActivities<SyncActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, initialInterval: '1s' },
});

/** Deletes the spooled file the sync read; never fails the sync (the worker's sweep is the fallback). */
export async function releaseSpooledSource(source: TargetSource): Promise<void> {
  if (!isSpooled(source) || source.kind !== 'ref') return;
  try {
    await releaseSource({ ref: source.ref });
  } catch (err) {
    log.warn('the spooled source was not deleted; the spool sweep will', { error: (err as Error).message });
  }
}
