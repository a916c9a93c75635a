/**
 * Reports name their items: the provider's identity and the source line of every warning, rejection
 * and failure survive every place a report is cut down (report, query pages, carried state) and
 * show in the CLI text. Pure functions: no server.
 */
import { describe, expect, it } from 'vitest';
import { item } from '../cli/format.ts';
import { nameReportItems } from '../client/item-names.ts';
import { REPORT_BYTES, jsonBytes, type SyncReport } from '../contracts/index.ts';
import { newLedger, receive, settle } from '../workflows/ledger.ts';
import { buildReport, compactForCarry, pageEntries, pageWarnings } from '../workflows/report.ts';

const head = {
  workflowId: 'catalog-sync-insider-x',
  provider: 'insider',
  phase: 'closed' as const,
  counts: { submitted: 0, pending: 0, accepted: 0, rejected: 0, failed: 0, superseded: 0, unchanged: 0 },
  firstPassSettled: true,
};

function ledgerWith(n: number) {
  const ledger = newLedger();
  ledger.submitted = n * 3;
  receive(ledger, 0, n * 3);
  for (let i = 0; i < n; i += 1) {
    const w = `SKU-${i}:en_US`;
    settle(ledger, i * 3, 'accepted', { warning: `attribute (x${i}) ignored `.repeat(20), identity: w, line: i + 1 });
    settle(ledger, i * 3 + 1, 'rejected', {
      code: 'item_not_found',
      message: 'no such item',
      origin: 'provider',
      identity: `R-${i}:en_US`,
      line: i + 2,
    });
    settle(ledger, i * 3 + 2, 'failed', {
      code: 'ProviderUnavailable',
      message: 'x'.repeat(400),
      identity: `F-${i}:en_US`,
    });
  }
  return ledger;
}

describe('items in reports', () => {
  it('keeps identity and line on warnings, rejections and failures, in the report and in every page', () => {
    const ledger = ledgerWith(3);
    const report = buildReport(head, ledger);
    expect(report.warnings[0]).toEqual({ id: 't0', identity: 'SKU-0:en_US', line: 1, message: expect.any(String) });
    expect(report.rejected[0]).toMatchObject({ id: 't1', identity: 'R-0:en_US', line: 2 });
    expect(report.failed[0]).toMatchObject({ id: 't2', identity: 'F-0:en_US' });
    expect(pageWarnings(ledger.warnings, { offset: 0, limit: 10 }).warnings[2]).toMatchObject({
      identity: 'SKU-2:en_US',
      line: 3,
    });
    expect(pageEntries(ledger, { offset: 0, limit: 10 }).entries.map((e) => e.identity)).toEqual([
      'R-0:en_US',
      'F-0:en_US',
      'R-1:en_US',
      'F-1:en_US',
      'R-2:en_US',
      'F-2:en_US',
    ]);
    compactForCarry(ledger, head.workflowId);
    expect(ledger.warnings[1]).toMatchObject({ identity: 'SKU-1:en_US', line: 2 });
    expect(ledger.entries[4]).toMatchObject({ identity: 'R-1:en_US', line: 3 });
  });

  it('counts identities in the report budget: a report of many named items stays under REPORT_BYTES', () => {
    const ledger = ledgerWith(5000);
    const report = buildReport(head, ledger);
    expect(jsonBytes(report)).toBeLessThanOrEqual(REPORT_BYTES);
    expect(report.omitted?.warnings).toBeGreaterThan(0);
    expect(report.warnings.every((w) => w.identity !== undefined)).toBe(true);
    expect(report.rejected.every((r) => r.identity !== undefined)).toBe(true);
  });

  it('prints the id, the identity and the line in the CLI text', () => {
    expect(item({ id: 't7', identity: 'SKU-1:en_US', line: 8 })).toBe('t7 SKU-1:en_US (line 8)');
    expect(item({ id: 't7' })).toBe('t7');
  });

  it('names an echoed inline target the sync could not name, and leaves a malformed one unnamed', () => {
    const report = {
      ...head,
      provider: 'octogen',
      rejected: [
        { id: 't0', target: { uuid: 'x', url: 'y' }, code: 'invalid_target', message: '', origin: 'validation' },
      ],
      failed: [{ id: 't1', target: { url: 'https://a.example/p/1' }, code: 'ProviderUnavailable', message: '' }],
      warnings: [],
      superseded: [],
      refused: [],
      calls: [],
    } as SyncReport;
    nameReportItems(report);
    expect(report.failed[0]?.identity).toBe('url:https://a.example/p/1');
    expect(report.rejected[0]?.identity).toBeUndefined();
  });
});
