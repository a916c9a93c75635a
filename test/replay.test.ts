/**
 * Replays the histories in test/histories/ (recorded by `npm run record-histories` from real
 * syncs) against the current workflow code: a change that would break running syncs fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { projectRoot } from '../scripts/temporal-bin.ts';

const dir = path.join(projectRoot(), 'test', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.binpb'));
const workflowIds = JSON.parse(readFileSync(path.join(dir, 'workflow-ids.json'), 'utf8')) as Record<string, string>;

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)('replays %s without nondeterminism', async (file) => {
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file)));
    const workflowId = workflowIds[file];
    expect(workflowId, `${file} in workflow-ids.json`).toBeDefined();
    await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history, workflowId);
  });
});
