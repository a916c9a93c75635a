/**
 * Insider Catalog API v2, "Update Existing Product Information": POST /v2/update (seed 003).
 * A JSON array of product updates keyed by item_id + locale; 200 with valid / invalid / warnings
 * details naming documents as "item_id:locale"; 400 for bad JSON or a request too large; 401 for
 * the partner or the token; 500. An account-wide budget of 60 requests a minute.
 */
import { z } from 'zod';
import { FailureType } from '../../contracts/errors.ts';
import { hasControlChars, isWellFormedText } from '../../contracts/sync.ts';
import { errorBody, providerFailure, statusFailure } from '../failures.ts';
import { postJson } from '../http.ts';
import type { BatchAnswer, ProviderAdapter, TargetOutcome } from './adapter.ts';
import { isPlainHttpUrl } from './octogen.ts';

/** Free text may hold tabs and line breaks; no other control character, no lone surrogate. */
const cleanText = (s: string): boolean => isWellFormedText(s) && !hasControlChars(s.replace(/[\t\n\r]/g, ''));
const cleanId = (s: string): boolean => isWellFormedText(s) && !hasControlChars(s);

const text = (field: string, max: number) =>
  z
    .string({ error: `${field} must be a string` })
    .max(max, `${field} must be at most ${max} characters`)
    .refine(cleanText, { error: `${field} must be text without control characters or lone surrogates` })
    .optional();
const link = (field: string) =>
  z
    .string({ error: `${field} must be a string` })
    .max(512, `${field} must be at most 512 characters`)
    .refine(isPlainHttpUrl, {
      error: `${field} must be an absolute http(s) URL without spaces or control characters (percent-encode them, e.g. %20)`,
    })
    .optional();
const strings = (field: string) =>
  z
    .array(z.string({ error: `${field} must hold only strings` }), { error: `${field} must be an array of strings` })
    .optional();
const prices = (field: string) =>
  z
    .record(z.string(), z.number({ error: `${field} values must be numbers (e.g. {"USD": 40.9})` }).finite(), {
      error: `${field} must be an object of currency to price, e.g. {"USD": 40.9}`,
    })
    .optional();

const UPDATE_FIELDS = [
  'name',
  'url',
  'image_url',
  'category',
  'description',
  'price',
  'original_price',
  'in_stock',
  'variants',
  'brand',
  'color',
  'size',
  'groupcode',
  'product_attributes',
] as const;

export const InsiderTargetSchema = z
  .strictObject(
    {
      item_id: z
        .string({ error: 'item_id is required: the product ID as a string' })
        .min(1, 'item_id must not be empty')
        .max(128, 'item_id must be at most 128 characters')
        .refine(cleanId, { error: 'item_id must be text without control characters or lone surrogates' }),
      locale: z
        .string({ error: 'locale is required, e.g. "en_US"' })
        .regex(
          /^[a-z]{2}_[A-Z]{2}(:[A-Za-z0-9_-]+)?$/,
          'locale must be lang_COUNTRY, optionally :store (e.g. en_US, tr_TR:store1)',
        ),
      name: text('name', 512),
      url: link('url'),
      image_url: link('image_url'),
      category: strings('category'),
      description: text('description', 1024),
      price: prices('price'),
      original_price: prices('original_price'),
      in_stock: z
        .number({ error: 'in_stock must be an integer (1 in stock, 0 not)' })
        .int('in_stock must be an integer (1 in stock, 0 not)')
        .optional(),
      variants: strings('variants'),
      brand: text('brand', 512),
      color: text('color', 512),
      size: text('size', 512),
      groupcode: text('groupcode', 512),
      product_attributes: z
        .record(z.string(), z.unknown(), { error: 'product_attributes must be an object of key to value' })
        .optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown field ${issue.keys.join(', ')}: Insider would drop it; use one of ${UPDATE_FIELDS.join(', ')}, or product_attributes`
          : issue.code === 'invalid_type' && issue.path?.length === 0
            ? 'a target must be an object with item_id, locale and at least one update field'
            : undefined,
    },
  )
  .refine((t) => UPDATE_FIELDS.some((f) => t[f] !== undefined), {
    message: `no update field: send at least one of ${UPDATE_FIELDS.join(', ')} besides item_id and locale`,
  });
export type InsiderTarget = z.infer<typeof InsiderTargetSchema>;

export interface InsiderConfig {
  baseUrl: string;
  partnerName: string;
  token: string;
  maxRecords: number;
  requestsPerMinute: number;
}

const DetailsSchema = z
  .object({
    count: z.number().optional(),
    details: z.array(z.object({ message: z.string(), document_ids: z.array(z.string()) }).loose()).optional(),
  })
  .loose();
const UpdateAnswerSchema = z
  .object({
    success: z.literal(true),
    message: z.object({ invalid: DetailsSchema.optional(), warnings: DetailsSchema.optional() }).loose(),
  })
  .loose();

const TRANSIENT_CODES = ['temporarily_unavailable', 'internal_error'] as const;

/** Insider names no codes for invalid products; ours say what the caller must do. */
function rejectionCode(message: string): string {
  const transient = TRANSIENT_CODES.find((c) => message.includes(c));
  if (transient) return transient;
  return /not exist|does not exist|not found/i.test(message) ? 'item_not_found' : 'invalid_product';
}

const identityOf = (t: { item_id: string; locale: string }): string => `${t.item_id}:${t.locale}`;

function mapOutcomes(sent: InsiderTarget[], answer: z.infer<typeof UpdateAnswerSchema>): TargetOutcome[] {
  const invalid = new Map<string, string>();
  const warnings = new Map<string, string[]>();
  for (const d of answer.message.invalid?.details ?? []) for (const id of d.document_ids) invalid.set(id, d.message);
  for (const d of answer.message.warnings?.details ?? []) {
    for (const id of d.document_ids) warnings.set(id, [...(warnings.get(id) ?? []), d.message]);
  }
  return sent.map((t, i) => {
    const id = identityOf(t);
    const rejected = invalid.get(id) ?? invalid.get(String(i));
    if (rejected !== undefined) return { state: 'rejected', code: rejectionCode(rejected), message: rejected };
    const warned = warnings.get(id);
    // Insider still applies the record; only the attributes it warns about were ignored.
    return warned ? { state: 'accepted', warning: warned.join(' ') } : { state: 'accepted' };
  });
}

/**
 * Insider's documented request limits ("Maximum allowed record count / request size", seed 003's
 * limitations page): 1000 records and 5 MB a request, 512 KB a record. INSIDER_MAX_RECORDS may
 * lower the record count for an account; the client checks against these maximums.
 */
const INSIDER_LIMITS = { maxTargets: 1000, maxBytes: 5_000_000, maxTargetBytes: 512_000 } as const;

const TOO_LARGE = /maximum allowed (request size|record count)/i;

export const insider: ProviderAdapter<InsiderTarget, InsiderConfig> = {
  name: 'insider',
  title: 'Insider',
  targetSchema: InsiderTargetSchema,
  // Conservative against both readings of the documented 5 MB and 512 KB.
  limits: (config) => ({ ...INSIDER_LIMITS, maxTargets: config.maxRecords }),
  documentedLimits: INSIDER_LIMITS,
  budget: (config) => ({ requestsPerMinute: config.requestsPerMinute }),
  groupKey: () => '',
  identity: identityOf,
  transientRejectionCodes: TRANSIENT_CODES,

  configFromEnv(env) {
    const missing = ['INSIDER_PARTNER_NAME', 'INSIDER_REQUEST_TOKEN'].filter((v) => !env[v]);
    if (missing.length > 0) {
      return { missing, hint: 'set them to your Insider partner name and Catalog API token (Inone > Inone Settings)' };
    }
    const number = (name: string, fallback: number): number => {
      const raw = env[name];
      const n = raw === undefined || raw === '' ? fallback : Number(raw);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}="${raw}" must be a positive whole number`);
      return n;
    };
    return {
      config: {
        baseUrl: (env.INSIDER_BASE_URL ?? 'https://catalog.api.useinsider.com').replace(/\/+$/, ''),
        // Insider wants the partner name lowercase.
        partnerName: (env.INSIDER_PARTNER_NAME ?? '').toLowerCase(),
        token: env.INSIDER_REQUEST_TOKEN ?? '',
        maxRecords: number('INSIDER_MAX_RECORDS', 1000),
        requestsPerMinute: number('INSIDER_REQUESTS_PER_MINUTE', 60),
      },
    };
  },

  async send(targets, ctx): Promise<BatchAnswer> {
    const http = { provider: 'insider', title: 'Insider', ...ctx };
    const res = await postJson(
      `${ctx.config.baseUrl}/v2/update`,
      JSON.stringify(targets),
      { 'x-partner-name': ctx.config.partnerName, 'x-request-token': ctx.config.token },
      http,
    );
    const said = errorBody(res.json);
    if (res.status === 200) {
      const answer = UpdateAnswerSchema.safeParse(res.json);
      if (answer.success) return { httpStatus: 200, outcomes: mapOutcomes(targets, answer.data) };
      throw providerFailure(FailureType.ProviderBadAnswer, {
        provider: 'insider',
        httpStatus: 200,
        message: 'Insider answered 200 with a body that is not the documented update answer; the call is retried',
      });
    }
    if (res.status === 400 && TOO_LARGE.test(said.message ?? '')) {
      throw providerFailure(FailureType.ProviderBatchTooLarge, {
        provider: 'insider',
        httpStatus: 400,
        code: 'request_too_large',
        message: `Insider answered 400: ${said.message} The batch is split.`,
      });
    }
    if (res.status === 400 && /valid JSON/i.test(said.message ?? '')) {
      throw providerFailure(FailureType.ProviderCallerError, {
        provider: 'insider',
        httpStatus: 400,
        code: 'invalid_json',
        message: `Insider answered 400: ${said.message} This is a catalog-sync bug for a validated target; please report it.`,
      });
    }
    const auth = /integration settings|partner (name|cannot)/i.test(said.message ?? '')
      ? 'Check INSIDER_PARTNER_NAME on the worker: the partner name from Inone > Inone Settings > Account Preferences.'
      : 'Check INSIDER_REQUEST_TOKEN on the worker: a valid Catalog API token.';
    throw statusFailure('insider', 'Insider', res.status, res.headers, said, { auth });
  },
};
