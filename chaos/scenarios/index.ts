/** The scenarios on every sync shape (issue 14), rows of chaos/run.ts's table. */
import type { Scenario } from '../context.ts';
import { fanOutRun } from './fanout.ts';

const row = (
  name: string,
  run: Scenario['run'] extends (c: infer C, s: number) => infer R ? (c: C, s: number, n: string) => R : never,
): Scenario => ({
  name,
  run: (ctx, seed) => run(ctx, seed, name),
});

export const NEW_SCENARIOS: Scenario[] = [row('fan-out + continue-as-new, 3 kills', fanOutRun)];
