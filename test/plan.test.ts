/** Validation, batching, answer mapping and error classification, without a server. */
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { errorBody, networkFailure, parseRetryAfter, statusFailure } from '../activities/failures.ts';
import { planTargets } from '../activities/plan.ts';
import { octogen } from '../activities/providers/octogen.ts';
import { createProgress } from '../cli/progress.ts';
import { FailureType, MAX_RESUBMITTED_PER_SYNC, type SyncReport } from '../contracts/index.ts';
import { counts, newLedger, receive, settle } from '../workflows/ledger.ts';
import { takeResubmission } from '../workflows/resubmission.ts';

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const seqd = (targets: unknown[]) => targets.map((target, seq) => ({ seq, target }));

describe('planTargets (Octogen)', () => {
  it('cuts batches of at most the limit, never mixing pinned catalogs, in caller order', () => {
    const targets = [
      ...Array.from({ length: 3 }, (_, i) => ({ uuid: uuid(i) })),
      { catalog: 'a', url: 'https://a.com/1' },
      { uuid: uuid(9) },
      { catalog: 'a', url: 'https://a.com/2' },
    ];
    const plan = planTargets(octogen, { maxTargets: 500 }, seqd(targets), 2);
    expect(plan.batches).toEqual([
      [0, 1],
      [2, 4],
      [3, 5],
    ]);
    expect(plan.rejections).toEqual([]);
    expect(plan.valid.map((v) => v.identity)).toContain('url:https://a.com/1');
  });

  it('caps a batch size above the provider limit at 500', () => {
    const plan = planTargets(
      octogen,
      { maxTargets: 500 },
      seqd(Array.from({ length: 1001 }, (_, i) => ({ uuid: uuid(i) }))),
      10_000,
    );
    expect(plan.batches.map((b) => b.length)).toEqual([500, 500, 1]);
  });

  it('rejects malformed targets with messages that name the field and the fix', () => {
    const plan = planTargets(
      octogen,
      { maxTargets: 500 },
      seqd([
        { uuid: 'nope' },
        { url: 'ftp://x.com/a' },
        { uuid: uuid(1), extra: 1 },
        'just a string',
        { catalog: '', uuid: uuid(2) },
      ]),
    );
    const messages = plan.rejections.map((r) => r.message);
    expect(plan.rejections.every((r) => r.code === 'invalid_target')).toBe(true);
    expect(messages[0]).toMatch(/uuid must be a UUID/);
    expect(messages[1]).toMatch(/url must be an absolute http\(s\)/);
    expect(messages[2]).toMatch(/unknown field extra/);
    expect(messages[3]).toMatch(/must be an object/);
    expect(messages[4]).toMatch(/catalog must not be empty/);
    expect(plan.batches).toEqual([]);
  });
});

describe('failure classification', () => {
  const s = (status: number, headers = {}) =>
    statusFailure('octogen', 'Octogen', status, headers, {}, { auth: 'fix the key' });
  it('names each failure by type; 429 carries Retry-After as the next retry delay', () => {
    expect([503, 502, 504, 500].map((x) => s(x).type)).toEqual(Array(4).fill(FailureType.ProviderUnavailable));
    expect(s(401).type).toBe(FailureType.ProviderAuthError);
    expect(s(422).type).toBe(FailureType.ProviderCallerError);
    expect(s(400).type).toBe(FailureType.ProviderCallerError);
    expect(s(413).type).toBe(FailureType.ProviderBatchTooLarge);
    const limited = s(429, { 'retry-after': '2' });
    expect(limited.type).toBe(FailureType.ProviderRateLimited);
    expect(limited.nextRetryDelay).toBe(2000);
  });
  it('reads Retry-After as seconds or a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
  it('keeps the cause of a network failure and its stable code', () => {
    const err = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const f = networkFailure('octogen', 'Octogen', err);
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect(f.type).toBe(FailureType.ProviderNetworkError);
    expect(f.cause).toBe(err);
    expect(f.message).toMatch(/UND_ERR_SOCKET/);
  });
  it('reads error bodies in both shapes', () => {
    expect(errorBody({ error: { code: 'x', message: 'y' } })).toEqual({ code: 'x', message: 'y' });
    expect(errorBody({ status: false, message: 'z' })).toEqual({ message: 'z' });
  });
});

describe('takeResubmission', () => {
  const ledger = () => {
    const l = newLedger();
    l.submitted = 3;
    receive(l, 0, [{ url: 'https://s/1' }, { uuid: uuid(1) }, { url: 'bad' }]);
    settle(l, 0, 'rejected', { code: 'ambiguous_url', message: 'm', origin: 'provider', identity: 'url:https://s/1' });
    settle(l, 1, 'accepted');
    settle(l, 2, 'rejected', { code: 'invalid_target', message: 'm', origin: 'validation' });
    return l;
  };

  it('matches by id or identity, supersedes, and refuses what it cannot take', () => {
    const l = ledger();
    const items = [
      { target: { catalog: 'c', url: 'https://s/1' } },
      { fixes: 't2', target: { uuid: uuid(2) } },
      { fixes: 't1', target: { uuid: uuid(1) } },
      { fixes: 't99', target: { uuid: uuid(3) } },
      { target: { uuid: uuid(4) } },
    ];
    const plan = planTargets(octogen, { maxTargets: 500 }, seqd(items.map((i) => i.target)));
    const { answer, batches } = takeResubmission(l, { items }, plan, 3);
    expect(answer.taken).toEqual([
      { index: 0, id: 't3', supersedes: 't0' },
      { index: 1, id: 't4', supersedes: 't2' },
    ]);
    expect(answer.refused.map((r) => [r.index, r.code])).toEqual([
      [2, 'not_fixable'],
      [3, 'unknown_target'],
      [4, 'nothing_to_fix'],
    ]);
    expect(Object.values(l.entries).map((e) => e.state)).toEqual(['superseded', 'superseded', 'pending', 'pending']);
    expect(counts(l)).toMatchObject({ submitted: 5, accepted: 1, superseded: 2, pending: 2 });
    expect(batches.flat().sort()).toEqual([3, 4]);
  });

  it('refuses a second fix of the same rejection in one re-submission', () => {
    const l = ledger();
    const items = [
      { fixes: 't0', target: { catalog: 'c', url: 'https://s/1' } },
      { fixes: 't0', target: { catalog: 'd', url: 'https://s/1' } },
    ];
    const { answer } = takeResubmission(
      l,
      { items },
      planTargets(octogen, { maxTargets: 500 }, seqd(items.map((i) => i.target))),
      3,
    );
    expect(answer.refused.map((r) => r.code)).toEqual(['duplicate_fix']);
  });

  it('refuses re-submissions past the per-sync limit, naming it', () => {
    const l = ledger();
    l.submitted = 3 + MAX_RESUBMITTED_PER_SYNC;
    const items = [{ fixes: 't0', target: { catalog: 'c', url: 'https://s/1' } }];
    const plan = planTargets(octogen, { maxTargets: 500 }, seqd(items.map((i) => i.target)));
    const { answer } = takeResubmission(l, { items }, plan, 3);
    expect(answer.refused).toEqual([expect.objectContaining({ code: 'too_many_resubmissions' })]);
    expect(answer.refused[0]?.message).toMatch(/start a new sync/);
  });
});

describe('CLI progress', () => {
  const report = (pending: number, accepted: number) =>
    ({
      counts: {
        submitted: 10,
        pending,
        accepted,
        rejected: 10 - pending - accepted,
        failed: 0,
        superseded: 0,
        unchanged: 0,
      },
    }) as SyncReport;

  it('redraws a bar with counts on a terminal', () => {
    const out: string[] = [];
    const p = createProgress({ isTTY: true, write: (s) => out.push(s) > 0 });
    p.update(report(5, 4));
    p.end();
    expect(out[0]).toMatch(/^\r\[#{15}-{15}\] 50% 5\/10 settled: accepted 4, rejected 1, failed 0/);
    expect(out[1]).toBe('\n');
  });

  it('writes plain lines only when the counts change, at most once a second', () => {
    const out: string[] = [];
    let now = 0;
    const p = createProgress({ isTTY: false, write: (s) => out.push(s) > 0 }, () => now);
    now = 1000;
    p.update(report(5, 4));
    p.update(report(5, 4));
    now = 1500;
    p.update(report(2, 7));
    now = 2600;
    p.update(report(0, 9));
    now = 2700;
    p.update(report(0, 10), true); // the settled counts are drawn at the end, whatever the clock
    expect(out).toEqual([
      'progress: 5/10 settled: accepted 4, rejected 1, failed 0, superseded 0\n',
      'progress: 10/10 settled: accepted 9, rejected 1, failed 0, superseded 0\n',
      'progress: 10/10 settled: accepted 10, rejected 0, failed 0, superseded 0\n',
    ]);
  });
});
