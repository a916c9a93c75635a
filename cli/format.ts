/** Human-readable reports for the CLI (the --json form prints the report as it is). */
import { formatCount, type ResubmissionAnswer, type SyncReport } from '../contracts/index.ts';
import type { DryRunPlan } from '../client/dry-run.ts';

/** A target's echo on one line; an echo the report dropped (to stay under its budget) shows as "-". */
const short = (v: unknown): string => {
  if (v === undefined) return '-';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
};

/** What the report left out, in one line, and how to list everything. */
function omissions(workflowId: string, report: SyncReport): string[] {
  const o = report.omitted;
  if (!o) return [];
  const parts = [
    o.rejected > 0 ? `${o.rejected} rejected` : '',
    o.failed > 0 ? `${o.failed} failed` : '',
    o.warnings > 0 ? `${o.warnings} warnings` : '',
    o.superseded > 0 ? `${o.superseded} superseded` : '',
    o.refused > 0 ? `${o.refused} refused items` : '',
    o.calls > 0 ? `${o.calls} provider calls` : '',
    o.rejectedElsewhere > 0 ? `${o.rejectedElsewhere} slice workflows` : '',
  ].filter(Boolean);
  const lines: string[] = [];
  if (parts.length > 0)
    lines.push(`  left out of this report to keep it small: ${parts.join(', ')} (counts above are complete)`);
  if (o.echoes > 0)
    lines.push(`  ${o.echoes} listed targets are shown without their echo or with their message cut short`);
  if (o.rejected + o.failed + o.warnings + o.rejectedElsewhere + o.echoes > 0) {
    lines.push(
      `  list everything: listRejected(client, '${workflowId}') in the library, or ` +
        `temporal workflow query --workflow-id ${workflowId} --name sliceEntries --input 0 --input 5000`,
    );
  }
  return lines;
}

/** How a line of the report names its target: "t7 SKU-1:en_US (line 8)", the parts it knows. */
export const item = (x: { id: string; identity?: string; line?: number }): string =>
  `${x.id}${x.identity !== undefined ? ` ${x.identity}` : ''}${x.line !== undefined ? ` (line ${x.line})` : ''}`;

export function formatReport(workflowId: string, report: SyncReport, uiLink: string, abortReason?: string): string {
  const c = report.counts;
  const lines = [
    `sync ${workflowId} (${report.provider}): ${report.phase}${report.closedReason ? ` (${report.closedReason})` : ''}`,
    `  submitted ${c.submitted} = accepted ${c.accepted} + rejected ${c.rejected} + failed ${c.failed} + superseded ${c.superseded}` +
      (c.pending > 0 ? ` + pending ${c.pending}` : '') +
      (c.unchanged > 0 ? `; unchanged ${c.unchanged} (not sent)` : ''),
  ];
  if (abortReason) lines.push(`  ABORTED: ${abortReason}`);
  if (report.rejected.length > 0) {
    lines.push('  rejected:');
    for (const r of report.rejected) lines.push(`    ${item(r)}  ${r.code}  ${short(r.target)}  ${r.message}`);
  }
  if (report.failed.length > 0) {
    lines.push('  failed:');
    for (const f of report.failed) lines.push(`    ${item(f)}  ${f.code}  ${short(f.target)}  ${f.message}`);
  }
  const elsewhere = report.rejectedElsewhere ?? [];
  if (elsewhere.length > 0) {
    const n = elsewhere.reduce((sum, x) => sum + x.count, 0);
    const own = elsewhere.some((x) => x.workflowId === report.workflowId);
    const slices = elsewhere.filter((x) => x.workflowId !== report.workflowId).length;
    const where = [own ? 'the sync itself' : '', slices > 0 ? `${slices} slice workflows` : ''].filter(Boolean);
    lines.push(
      `  ${n} more rejected or failed targets are listed in ${where.join(' and ')} (listRejected() pages them in)`,
    );
  }
  lines.push(...omissions(workflowId, report));
  if (report.superseded.length > 0) {
    lines.push(`  superseded: ${report.superseded.map((s) => `${s.id} by ${s.by}`).join(', ')}`);
  }
  if (report.warnings.length > 0) {
    lines.push('  warnings:');
    for (const w of report.warnings) lines.push(`    ${item(w)}  ${w.message}`);
  }
  if (report.refused.length > 0) {
    lines.push('  refused re-submissions:');
    for (const r of report.refused)
      lines.push(
        `    ${r.index < 0 ? 'a whole re-submission' : `item ${r.index}`}${r.fixes ? ` (fixes ${r.fixes})` : ''}  ${r.code}  ${r.message}`,
      );
  }
  const traced = report.calls.filter((k) => k.requestId).map((k) => k.requestId);
  lines.push(
    `  provider calls answered: ${report.calls.length}${traced.length ? ` (requestIds: ${traced.slice(0, 5).join(', ')}${traced.length > 5 ? ', ...' : ''})` : ''}`,
  );
  if (report.phase === 'open' && report.windowEndsAt && (c.rejected > 0 || c.failed > 0)) {
    lines.push(
      `  open for re-submission until ${report.windowEndsAt}: catalog-sync resubmit ${workflowId} --targets FILE`,
    );
  }
  lines.push(`  Temporal UI: ${uiLink}`);
  return lines.join('\n');
}

export function formatResubmission(answer: ResubmissionAnswer): string {
  const lines = [`taken ${answer.taken.length}, refused ${answer.refused.length}`];
  // Messages may be cut short (an answer stays under its byte budget); index and code never are.
  for (const t of answer.taken) lines.push(`  item ${t.index} -> ${t.id} supersedes ${t.supersedes}`);
  for (const r of answer.refused) lines.push(`  item ${r.index} refused: ${r.code}: ${r.message}`);
  return lines.join('\n');
}

/** A dry run's plan as the CLI prints it: what a real run would send, and what it would reject. */
export function formatDryRun(plan: DryRunPlan): string {
  const n = formatCount;
  const lines = [
    `dry run (${plan.provider}): nothing was started and no provider was called`,
    `  ${n(plan.targets)} targets: ${n(plan.wouldSend)} would be sent, ${n(plan.rejected)} rejected before sending` +
      (plan.unchanged !== undefined ? `, ${n(plan.unchanged)} unchanged (not sent)` : ''),
    ...(plan.unchangedUnknown !== undefined ? [`  changed-only: ${plan.unchangedUnknown}`] : []),
    `  ${n(plan.calls)} provider calls, ${n(plan.bytes)} bytes of targets (largest call ${n(plan.largestCallBytes)})`,
    `  limits: ${n(plan.limits.batchSize)} targets a call` +
      (plan.limits.maxBytes !== undefined ? `, ${n(plan.limits.maxBytes)} bytes a call` : '') +
      `; calls closed by the target limit ${n(plan.cutBy.targets)}, by the byte limit ${n(plan.cutBy.bytes)}, ` +
      `by a page or catalog end ${n(plan.cutBy.pageOrGroupEnd)}`,
  ];
  for (const r of plan.rejections.slice(0, 20)) {
    lines.push(`    ${r.id}${r.line !== undefined ? ` (line ${r.line})` : ''}  ${r.code}  ${r.message}`);
  }
  if (plan.rejected > 20) lines.push(`    ... and ${n(plan.rejected - 20)} more (--json lists the first 100)`);
  return lines.join('\n');
}
