/**
 * Octogen product refresh: POST /v1/products/refresh (seed 000). Targets by `uuid` or `url`, with
 * an optional `catalog`; up to 500 a call; partial success in 202, "all rejected" in 400 with the
 * same shape; 403 `catalog_not_granted` for a pinned catalog the key may not use.
 */
import { z } from 'zod';
import { FailureType } from '../../contracts/errors.ts';
import { hasControlChars, isWellFormedText } from '../../contracts/sync.ts';
import { errorBody, providerFailure, statusFailure } from '../failures.ts';
import { postJson } from '../http.ts';
import type { BatchAnswer, ProviderAdapter, TargetOutcome } from './adapter.ts';

/** "Batch up to 500 targets per call" (seed 000). */
const OCTOGEN_LIMITS = { maxTargets: 500 } as const;

/** Text a provider can take: well-formed Unicode (no lone surrogate) and no control characters. */
const cleanText = (s: string): boolean => isWellFormedText(s) && !hasControlChars(s);

/**
 * An absolute http(s) URL as the caller wrote it: no spaces or control characters (WHATWG parsing
 * would silently percent-encode them, and the provider would look up a page nobody has).
 */
export const isPlainHttpUrl = (s: string): boolean => {
  if (!cleanText(s) || /\s/.test(s) || !/^https?:\/\/[^/?#]/i.test(s)) return false;
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
};

/** `version` / `etag`: the source record's version, used to tell changed targets (never sent). */
const diffTag = (field: string) =>
  z
    .string({ error: `${field} must be a string (the source record's version; never sent)` })
    .min(1, `${field} must not be empty; leave it out or give the record's version`)
    .max(200, `${field} must be at most 200 characters`)
    .optional();

export const OctogenTargetSchema = z
  .strictObject(
    {
      uuid: z
        .uuid({
          error: 'uuid must be a UUID such as 11111111-1111-4111-8111-111111111111',
        })
        .optional(),
      url: z
        .string({ error: 'url must be an absolute http(s) product page URL' })
        .max(2048, 'url must be at most 2048 characters')
        .refine(isPlainHttpUrl, {
          error:
            'url must be an absolute http(s) product page URL without spaces or control characters (percent-encode them, e.g. %20)',
        })
        .optional(),
      catalog: z
        .string({ error: 'catalog must be a string naming a granted catalog' })
        .min(1, 'catalog must not be empty; leave it out or name a granted catalog')
        .max(200, 'catalog must be at most 200 characters')
        .refine(cleanText, { error: 'catalog must be text without control characters or lone surrogates' })
        .optional(),
      // The source's own version of the record: compared by changed-only syncs, never sent.
      version: diffTag('version'),
      etag: diffTag('etag'),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown field ${issue.keys.join(', ')}; an Octogen target has only uuid, url and catalog (and optionally version or etag, never sent)`
          : issue.code === 'invalid_type'
            ? 'a target must be an object with uuid or url (and optionally catalog)'
            : undefined,
    },
  )
  .superRefine((t, ctx) => {
    if (t.uuid !== undefined && t.url !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'target has both url and uuid; send exactly one of them',
      });
    } else if (t.uuid === undefined && t.url === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'target has neither url nor uuid; send exactly one of them',
      });
    }
  });
export type OctogenTarget = z.infer<typeof OctogenTargetSchema>;

export interface OctogenConfig {
  baseUrl: string;
  apiKey: string;
  /** The account's request budget, when the account has one (OCTOGEN_REQUESTS_PER_MINUTE). */
  requestsPerMinute?: number;
}

const AnswerTargetSchema = z.object({ uuid: z.string().optional(), url: z.string().optional() }).loose();
/** The documented response shape, for 202 and for the all-rejected 400. */
const RefreshAnswerSchema = z
  .object({
    requestId: z.string().optional(),
    workflowId: z.string().nullish(),
    accepted: z.array(AnswerTargetSchema),
    rejected: z.array(
      z
        .object({
          target: AnswerTargetSchema,
          code: z.string(),
          message: z.string(),
        })
        .loose(),
    ),
  })
  .loose();
const ForbiddenAnswerSchema = z
  .object({
    error: z.object({ code: z.literal('catalog_not_granted'), message: z.string() }).loose(),
  })
  .loose();

const identityOf = (t: { uuid?: string | undefined; url?: string | undefined }): string =>
  t.uuid !== undefined ? `uuid:${t.uuid}` : `url:${t.url ?? ''}`;

/** The outcome of every plainly accepted target: one shared object, never changed (a batch has hundreds). */
const ACCEPTED: TargetOutcome = Object.freeze({ state: 'accepted' });
const NOT_IN_ANSWER = 'Octogen answered without naming this target; it is re-sent';

/** Maps the answer's accepted and rejected lists back to the targets sent, by identity. */
function mapOutcomes(sent: OctogenTarget[], answer: z.infer<typeof RefreshAnswerSchema>): TargetOutcome[] {
  // The usual answer names every target accepted, in the order sent: no lookup needed.
  if (answer.rejected.length === 0 && answer.accepted.length === sent.length) {
    const inOrder = answer.accepted.every((a, i) => a.uuid === sent[i]?.uuid && a.url === sent[i]?.url);
    if (inOrder) return new Array<TargetOutcome>(sent.length).fill(ACCEPTED);
  }
  // Counts and queues per identity, so a product sent twice in one batch is matched once per mention.
  const accepted = new Map<string, number>();
  for (const a of answer.accepted) {
    const key = identityOf(a);
    accepted.set(key, (accepted.get(key) ?? 0) + 1);
  }
  const rejected = new Map<string, TargetOutcome[]>();
  for (const r of answer.rejected) {
    const key = identityOf(r.target);
    const o: TargetOutcome = { state: 'rejected', code: r.code, message: r.message };
    const q = rejected.get(key);
    if (q) q.push(o);
    else rejected.set(key, [o]);
  }
  const out: TargetOutcome[] = new Array<TargetOutcome>(sent.length);
  for (let i = 0; i < sent.length; i += 1) {
    const key = identityOf(sent[i] as OctogenTarget);
    const n = accepted.get(key);
    if (n !== undefined && n > 0) {
      accepted.set(key, n - 1);
      out[i] = ACCEPTED;
      continue;
    }
    out[i] = rejected.get(key)?.shift() ?? { state: 'rejected', code: 'not_in_answer', message: NOT_IN_ANSWER };
  }
  return out;
}

/** A target as Octogen takes it: without the fields only changed-only syncs read. */
const sentForm = (t: OctogenTarget): Omit<OctogenTarget, 'version' | 'etag'> =>
  t.version === undefined && t.etag === undefined
    ? t
    : {
        ...(t.uuid !== undefined ? { uuid: t.uuid } : {}),
        ...(t.url !== undefined ? { url: t.url } : {}),
        ...(t.catalog !== undefined ? { catalog: t.catalog } : {}),
      };

export const octogen: ProviderAdapter<OctogenTarget, OctogenConfig> = {
  name: 'octogen',
  title: 'Octogen',
  targetSchema: OctogenTargetSchema,
  limits: () => OCTOGEN_LIMITS,
  documentedLimits: OCTOGEN_LIMITS,
  budget: (config) => (config.requestsPerMinute ? { requestsPerMinute: config.requestsPerMinute } : undefined),
  groupKey: (t) => t.catalog ?? '',
  identity: identityOf,
  // A refresh target has no content to compare: the source's version of the record stands for it.
  diffContent: (t) =>
    t.version === undefined && t.etag === undefined
      ? undefined
      : {
          ...(t.version !== undefined ? { version: t.version } : {}),
          ...(t.etag !== undefined ? { etag: t.etag } : {}),
        },
  // Octogen documents no per-target transient codes; these are the ones its retry guidance implies.
  transientRejectionCodes: ['temporarily_unavailable', 'rate_limited', 'internal_error', 'not_in_answer'],

  configFromEnv(env) {
    const apiKey = env.OCTOGEN_PLATFORM_API_KEY;
    if (!apiKey) {
      return {
        missing: ['OCTOGEN_PLATFORM_API_KEY'],
        hint: 'set it to your Octogen platform API key',
      };
    }
    const budget = env.OCTOGEN_REQUESTS_PER_MINUTE;
    const requestsPerMinute = budget ? Number(budget) : undefined;
    if (requestsPerMinute !== undefined && !(Number.isInteger(requestsPerMinute) && requestsPerMinute > 0)) {
      throw new Error(`OCTOGEN_REQUESTS_PER_MINUTE="${budget}" must be a positive whole number`);
    }
    return {
      config: {
        baseUrl: (env.OCTOGEN_BASE_URL ?? 'https://api.octogen.ai').replace(/\/+$/, ''),
        apiKey,
        ...(requestsPerMinute !== undefined ? { requestsPerMinute } : {}),
      },
    };
  },

  async send(targets, ctx): Promise<BatchAnswer> {
    const http = { provider: 'octogen', title: 'Octogen', ...ctx };
    const res = await postJson(
      `${ctx.config.baseUrl}/v1/products/refresh`,
      // `version` and `etag` are catalog-sync's own: Octogen never sees them.
      JSON.stringify({ targets: targets.map(sentForm) }),
      {
        authorization: `Bearer ${ctx.config.apiKey}`,
      },
      http,
    );

    if (res.status === 202 || res.status === 200 || res.status === 400) {
      const answer = RefreshAnswerSchema.safeParse(res.json);
      if (answer.success) {
        return {
          httpStatus: res.status,
          ...(answer.data.requestId ? { requestId: answer.data.requestId } : {}),
          ...(answer.data.workflowId ? { providerWorkflowId: answer.data.workflowId } : {}),
          outcomes: mapOutcomes(targets, answer.data),
        };
      }
      if (res.status !== 400) {
        throw providerFailure(FailureType.ProviderBadAnswer, {
          provider: 'octogen',
          httpStatus: res.status,
          message: `Octogen answered ${res.status} with a body that is not the documented refresh answer; the call is retried`,
        });
      }
    }
    // A 403 for a pinned catalog rejects this batch's targets (batches never mix catalogs).
    if (res.status === 403) {
      const forbidden = ForbiddenAnswerSchema.safeParse(res.json);
      if (forbidden.success) {
        const message = `${forbidden.data.error.message} Ask for the catalog to be granted to this key, or send the target without catalog.`;
        return {
          httpStatus: 403,
          outcomes: targets.map(() => ({
            state: 'rejected',
            code: 'catalog_not_granted',
            message,
          })),
        };
      }
    }
    throw statusFailure('octogen', 'Octogen', res.status, res.headers, errorBody(res.json), {
      auth: 'The Octogen API key was refused: set OCTOGEN_PLATFORM_API_KEY on the worker to a valid platform API key.',
    });
  },
};
