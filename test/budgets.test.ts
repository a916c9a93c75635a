/** Byte budgets where activity results are built: a batch answer and long identities. */
import { describe, expect, it } from 'vitest';
import { answerWithinBudget, type BatchAnswer } from '../activities/index.ts';
import { IDENTITY_LIMIT, boundedIdentity, planTargets } from '../activities/plan.ts';
import { octogen } from '../activities/providers/octogen.ts';

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');
const longUrl = (n: number) => `https://shop.example.com/${'p'.repeat(2000)}/${n}`;

describe('answerWithinBudget', () => {
  it('keeps a 500-outcome answer with long messages, warnings and echoes under 240 KB, every code kept', () => {
    const answer: BatchAnswer = {
      httpStatus: 202,
      outcomes: Array.from({ length: 500 }, (_, i) =>
        i % 2 === 0
          ? { state: 'accepted' as const, warning: `w${i} ${'x'.repeat(5_000)}` }
          : {
              state: 'rejected' as const,
              code: `code_${i}`,
              message: 'm'.repeat(300),
              identity: `url:${longUrl(i)}`.slice(0, IDENTITY_LIMIT),
              target: { url: 'e'.repeat(1_000) },
            },
      ),
    };
    expect(bytes(answer)).toBeGreaterThan(1024 * 1024);
    const bounded = answerWithinBudget(answer);
    expect(bytes(bounded)).toBeLessThanOrEqual(240 * 1024);
    expect(bounded.outcomes).toHaveLength(500);
    bounded.outcomes.forEach((o, i) => {
      if (i % 2 === 0) expect(o.state).toBe('accepted');
      else expect(o).toMatchObject({ state: 'rejected', code: `code_${i}` });
    });
  });

  it('drops echoes from the last outcome back, keeping as many as fit', () => {
    const answer: BatchAnswer = {
      httpStatus: 400,
      outcomes: Array.from({ length: 500 }, (_, i) => ({
        state: 'rejected' as const,
        code: 'product_not_found',
        message: 'no such product',
        target: { url: `https://a.com/${i}/${'e'.repeat(600)}` },
      })),
    };
    const bounded = answerWithinBudget(answer);
    expect(bytes(bounded)).toBeLessThanOrEqual(240 * 1024);
    const kept = bounded.outcomes.filter((o) => o.state === 'rejected' && o.target !== undefined).length;
    expect(kept).toBeGreaterThan(300);
    expect(kept).toBeLessThan(500);
    expect(bounded.outcomes[0]).toHaveProperty('target');
    expect(bounded.outcomes[499]).not.toHaveProperty('target');
    expect(bounded.outcomes.every((o) => o.state === 'rejected' && o.message === 'no such product')).toBe(true);
  });

  it('leaves a small answer as it is', () => {
    const answer: BatchAnswer = { httpStatus: 202, outcomes: [{ state: 'rejected', code: 'c', message: 'why' }] };
    expect(answerWithinBudget(structuredClone(answer))).toEqual(answer);
  });
});

describe('boundedIdentity', () => {
  it('keeps short identities whole and cuts long ones to a stable, distinct digest form', () => {
    expect(boundedIdentity(octogen, { url: 'https://a.com/1' })).toBe('url:https://a.com/1');
    const a = boundedIdentity(octogen, { url: longUrl(1) });
    const b = boundedIdentity(octogen, { url: longUrl(2) });
    expect(a.length).toBeLessThanOrEqual(IDENTITY_LIMIT);
    expect(a).not.toBe(b);
    expect(boundedIdentity(octogen, { url: longUrl(1) })).toBe(a);
  });

  it('is what a plan carries, so a re-submission by the same long URL matches the rejection', () => {
    const plan = planTargets(octogen, { maxTargets: 500 }, [{ seq: 0, target: { url: longUrl(7) } }]);
    expect(plan.valid[0]?.identity).toBe(boundedIdentity(octogen, { url: longUrl(7) }));
  });
});
