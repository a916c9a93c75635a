/** Human-readable reports for the CLI (the --json form prints the report as it is). */
import type { ResubmissionAnswer, SyncReport } from '../contracts/index.ts';

const short = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
};

export function formatReport(workflowId: string, report: SyncReport, uiLink: string, abortReason?: string): string {
  const c = report.counts;
  const lines = [
    `sync ${workflowId} (${report.provider}): ${report.phase}${report.closedReason ? ` (${report.closedReason})` : ''}`,
    `  submitted ${c.submitted} = accepted ${c.accepted} + rejected ${c.rejected} + failed ${c.failed} + superseded ${c.superseded}` +
      (c.pending > 0 ? ` + pending ${c.pending}` : ''),
  ];
  if (abortReason) lines.push(`  ABORTED: ${abortReason}`);
  if (report.rejected.length > 0) {
    lines.push('  rejected:');
    for (const r of report.rejected) lines.push(`    ${r.id}  ${r.code}  ${short(r.target)}  ${r.message}`);
  }
  if (report.failed.length > 0) {
    lines.push('  failed:');
    for (const f of report.failed) lines.push(`    ${f.id}  ${f.code}  ${short(f.target)}  ${f.message}`);
  }
  const elsewhere = report.rejectedElsewhere ?? [];
  if (elsewhere.length > 0) {
    const n = elsewhere.reduce((sum, x) => sum + x.count, 0);
    lines.push(
      `  ${n} more rejected or failed targets are listed in ${elsewhere.length} slice workflows (listRejected() pages them in)`,
    );
  }
  if (report.superseded.length > 0) {
    lines.push(`  superseded: ${report.superseded.map((s) => `${s.id} by ${s.by}`).join(', ')}`);
  }
  if (report.warnings.length > 0) {
    lines.push('  warnings:');
    for (const w of report.warnings) lines.push(`    ${w.id}  ${w.message}`);
  }
  if (report.refused.length > 0) {
    lines.push('  refused re-submissions:');
    for (const r of report.refused)
      lines.push(`    item ${r.index}${r.fixes ? ` (fixes ${r.fixes})` : ''}  ${r.code}  ${r.message}`);
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
  for (const t of answer.taken) lines.push(`  item ${t.index} -> ${t.id} supersedes ${t.supersedes}`);
  for (const r of answer.refused) lines.push(`  item ${r.index} refused: ${r.code}: ${r.message}`);
  return lines.join('\n');
}
