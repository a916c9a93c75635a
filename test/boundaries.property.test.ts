/**
 * Property-based tests of every schema at the boundaries (targets files, client requests,
 * re-submissions, both providers' targets): random and hostile input gets a clear answer, never a
 * crash or a hang, and never a half-accepted value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeIssues, planTargets } from '../activities/plan.ts';
import { insider } from '../activities/providers/insider.ts';
import { octogen } from '../activities/providers/octogen.ts';
import { parseTargets, TargetsFileError } from '../cli/targets-file.ts';
import { ResubmissionSchema, SyncRequestSchema } from '../contracts/index.ts';

/** Hostile values: huge strings, odd Unicode, prototype-pollution keys, deep nesting. */
const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'uuid', 'url', 'item_id');
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constant('\uD800'), // a lone surrogate
  fc.constant('x'.repeat(100_000)),
  fc.constant('javascript:alert(1)'),
);
const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileKey, fc.string()), tie('value'), { maxKeys: 5 }),
  ),
})).value;
const deep = (n: number): unknown => (n === 0 ? { uuid: 'x' } : { nested: deep(n - 1) });

for (const adapter of [octogen, insider]) {
  describe(`${adapter.name} target schema`, () => {
    it('accepts or rejects any value with a message, and never throws', () => {
      fc.assert(
        fc.property(hostileValue, (value) => {
          const parsed = adapter.targetSchema.safeParse(value);
          if (!parsed.success) expect(describeIssues(parsed.error).length).toBeGreaterThan(0);
        }),
        { numRuns: 500 },
      );
    });

    it('plans batches for any mix, with every target either batched or rejected exactly once', () => {
      fc.assert(
        fc.property(fc.array(hostileValue, { maxLength: 60 }), (targets) => {
          const items = targets.map((target, seq) => ({ seq, target }));
          const plan = planTargets(adapter, { maxTargets: 7, maxBytes: 5000, maxTargetBytes: 2000 }, items);
          const batched = plan.batches.flat();
          const rejected = plan.rejections.map((r) => r.seq);
          expect([...batched, ...rejected].sort((a, b) => a - b)).toEqual(items.map((i) => i.seq));
          expect(plan.batches.every((b) => b.length <= 7)).toBe(true);
        }),
        { numRuns: 200 },
      );
    });

    it('does not let prototype keys through or pollute Object.prototype', () => {
      const polluted = JSON.parse('{"__proto__": {"polluted": true}, "uuid": "x"}') as unknown;
      adapter.targetSchema.safeParse(polluted);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(adapter.targetSchema.safeParse(deep(2000)).success).toBe(false);
    });
  });
}

describe('targets files', () => {
  it('parses any text into targets or a TargetsFileError naming the file', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.array(fc.json()).map((l) => l.join('\n')),
        ),
        (text) => {
          try {
            const targets = parseTargets(text, 'in.ndjson');
            expect(Array.isArray(targets)).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(TargetsFileError);
            expect((err as Error).message).toContain('in.ndjson');
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads a million-line file without trouble', () => {
    const text = `${Array.from({ length: 1_000_000 }, (_, i) => `{"uuid":"${i}"}`).join('\n')}\n`;
    expect(parseTargets(text, 'big.ndjson')).toHaveLength(1_000_000);
  });
});

describe('sync requests and re-submissions', () => {
  it('accept only well-formed requests, naming what is wrong otherwise', () => {
    fc.assert(
      fc.property(hostileValue, (value) => {
        for (const schema of [SyncRequestSchema, ResubmissionSchema]) {
          const parsed = schema.safeParse(value);
          if (!parsed.success) expect(parsed.error.issues.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('handles a million-element targets array at once', () => {
    const targets = Array.from({ length: 1_000_000 }, () => ({}));
    expect(SyncRequestSchema.safeParse({ provider: 'octogen', targets }).success).toBe(true);
    expect(SyncRequestSchema.safeParse({ provider: 'octogen', targets, targetsRef: { file: 'x' } }).success).toBe(
      false,
    );
  });
});
