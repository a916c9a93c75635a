/** The scenarios on every sync shape (issue 14), rows of chaos/run.ts's table. */
import type { Ctx, RunRecord, Scenario } from '../context.ts';
import { budgetRun } from './budget.ts';
import { fanOutRun } from './fanout.ts';
import { insiderRun } from './insider.ts';
import { partitionRun } from './partition.ts';
import { resubmitRun } from './resubmit.ts';
import { spoolFullRun } from './spool-full.ts';
import { stateStoreRun } from './state-store.ts';

type Run = (ctx: Ctx, seed: number, name: string) => Promise<RunRecord>;
const row = (name: string, run: Run): Scenario => ({ name, run: (ctx, seed) => run(ctx, seed, name) });

export const NEW_SCENARIOS: Scenario[] = [
  row('fan-out + continue-as-new, 3 kills', fanOutRun),
  row('resubmit under storm, kills + server restart', resubmitRun),
  row('insider: hidden limit + budget, 500/429 storm, kills', insiderRun),
  row('shared budget: 3 syncs, worker killed', budgetRun),
  row('partition: worker <-> server', (ctx, seed, name) => partitionRun(ctx, seed, name, 'server')),
  row('partition: worker <-> provider', (ctx, seed, name) => partitionRun(ctx, seed, name, 'provider')),
  row('state store: postgres restarted mid-sync', (ctx, seed, name) =>
    stateStoreRun(ctx, seed, name, 'postgres restarted'),
  ),
  row('state store: postgres disk full mid-sync', (ctx, seed, name) =>
    stateStoreRun(ctx, seed, name, 'postgres disk full'),
  ),
  row('changed-only: worker killed mid-sync', (ctx, seed, name) => stateStoreRun(ctx, seed, name, 'worker killed')),
  row('spool disk full: start refused, then filled mid-sync', spoolFullRun),
  row('state store: sqlite disk full mid-sync', (ctx, seed, name) =>
    stateStoreRun(ctx, seed, name, 'sqlite disk full'),
  ),
];
