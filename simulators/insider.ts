/**
 * A real HTTP simulator of Insider's Catalog API v2 `POST /v2/update` (contract:
 * shared/seeds/003_9c5546f775dc4f38.txt): partner + token headers, the contract's 400/401 bodies
 * word for word, per-record validation answered 200 with invalid records and warnings grouped by
 * message, an account-wide request budget (429), plus the generic faults from ./faults.ts.
 */
import type { IncomingMessage } from 'node:http';
import { budgetedSimulator, checkRequestsPerMinute, RequestBudget } from './budget.ts';
import type { Fault, FaultInjector, RecordedRequest } from './faults.ts';
import { startSimServer, type ApiRequest, type Reply, type SimServer } from './http.ts';
import { demoInsiderCatalog } from './insider-catalog.ts';

export {
  DEMO_INSIDER_PARTNER,
  DEMO_INSIDER_TOKEN,
  demoInsiderCatalog,
  makeInsiderItems,
  type InsiderDemoCatalog,
} from './insider-catalog.ts';

export const INSIDER_UPDATE_PATH = '/v2/update';

/** Answer messages. The request-level ones are the contract's, word for word; the record-level ones are ours. */
export const INSIDER_MESSAGES = {
  rateLimited: 'Rate limit exceeded.',
  unknownPartner: 'Partner does not have necessary integration settings for Catalog API.',
  badToken: 'Partner token authentication failed.',
  /** The contract uses it for both the byte size and the record count. */
  tooLarge: 'Maximum allowed request size is exceeded.',
  invalidJson: 'Request data is not in valid JSON format.',
  internalError: 'Internal server error.',
  notAnObject: 'Product data must be a JSON object.',
  missingItemId: 'item_id is required and must be a non-empty string.',
  missingLocale: 'locale is required and must be a non-empty string.',
  itemIdTooLong: 'item_id must be at most 128 characters.',
  badLocale: 'locale must be lang_COUNTRY, optionally followed by :store (e.g. en_US, tr_TR:store1).',
  noUpdateField: 'At least one update field must be sent besides item_id and locale.',
  notInCatalog: 'Product does not exist in catalog; it was not updated.',
} as const;

/** The contract's warning for a product_attributes key the partner has not defined. */
export function unknownAttributeWarning(key: string): string {
  return `Product attribute keys are not included in partners attribute.(${key})is not included in partner attribute map.`;
}

export interface InsiderSimConfig {
  /** 0 = random free port. Always listens on 127.0.0.1. */
  port: number;
  /** Expected X-PARTNER-NAME, compared exactly (the contract says it is lowercase). */
  partnerName: string;
  /** Expected X-REQUEST-TOKEN. */
  token: string;
  /** Existing catalog keys "item_id:locale", e.g. "sku-00001:en_US"; only these can be updated. */
  items: string[];
  /** Defined product_attributes keys; any other key is ignored with a warning. */
  productAttributes: string[];
  /** Records per request; more is answered 400. The real limit is not public. */
  maxRecords: number;
  /** Request body bytes; more is answered 400. */
  maxRequestBytes: number;
  /** Bytes of one record (re-serialized as compact JSON); a larger record is invalid. */
  maxRecordBytes: number;
  /** Account-wide budget: admitted requests per sliding 60 s window. Infinity turns it off. */
  requestsPerMinute: number;
  /** Added to every API answer. */
  latencyMs: number;
  /** Clock of the request budget, in epoch milliseconds; tests move it instead of waiting a minute. */
  now: () => number;
}

export interface InsiderSimulator {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:4020. */
  url: string;
  faults: FaultInjector;
  /** Live array of every request to the API path, in arrival order. The token is never stored. */
  requests: RecordedRequest[];
  /** How many requests the budget answered 429 (injected 429 faults are not counted). */
  readonly rateLimited: number;
  /** Clears the recorded requests (in place), the faults, the budget window and `rateLimited`. */
  reset(): void;
  close(): Promise<void>;
}

export const INSIDER_DEFAULTS = {
  maxRecords: 1000,
  maxRequestBytes: 5 * 1024 * 1024,
  maxRecordBytes: 512 * 1024,
  requestsPerMinute: 60,
} as const;

/**
 * Bodies up to this size reach the Insider checks (auth, then the 400 for maxRequestBytes). Above it
 * the shared plumbing answers 413 without buffering, like a gateway in front of the API would.
 */
const gatewayBodyLimit = (maxRequestBytes: number): number => Math.max(4 * maxRequestBytes, 64 * 1024 * 1024);

const MAX_ITEM_ID_LENGTH = 128;
const LOCALE = /^[a-z]{2}_[A-Z]{2}(?::[A-Za-z0-9_-]+)?$/;

/** String fields and their maximum length in characters. */
const STRING_FIELDS: Readonly<Record<string, number>> = {
  name: 512,
  url: 512,
  image_url: 512,
  description: 1024,
  brand: 512,
  color: 512,
  size: 512,
  groupcode: 512,
};
const STRING_ARRAY_FIELDS = ['category', 'variants'];
const PRICE_FIELDS = ['price', 'original_price'];
const UPDATE_FIELDS = [
  ...Object.keys(STRING_FIELDS),
  ...STRING_ARRAY_FIELDS,
  ...PRICE_FIELDS,
  'in_stock',
  'product_attributes',
];

interface Detail {
  message: string;
  count: number;
  document_ids: string[];
}

interface RecordOutcome {
  /** "item_id:locale", or the record's 0-based position when either is unusable. */
  id: string;
  /** Why the record is not updated; null when it is valid. */
  problem: string | null;
  warnings: string[];
}

interface InsiderContext {
  config: InsiderSimConfig;
  items: ReadonlySet<string>;
  attributes: ReadonlySet<string>;
  budget: RequestBudget;
  /** The live recordings of the shared plumbing. */
  recordings: () => RecordedRequest[];
}

function insiderError(status: number, message: string, headers?: Record<string, string>): Reply {
  return { status, ...(headers ? { headers } : {}), body: { status: false, message } };
}

function insiderStatusBody(status: number): unknown {
  const known: Record<number, string> = {
    400: INSIDER_MESSAGES.invalidJson,
    401: INSIDER_MESSAGES.badToken,
    429: INSIDER_MESSAGES.rateLimited,
    500: INSIDER_MESSAGES.internalError,
    502: 'Bad gateway.',
    503: 'Service temporarily unavailable.',
    504: 'Gateway timeout.',
  };
  return { status: false, message: known[status] ?? `Injected HTTP ${status}.` };
}

function header(headers: IncomingMessage['headers'], name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why `value` is not a valid `field`, or undefined. Only called for known update fields. */
function fieldProblem(field: string, value: unknown): string | undefined {
  const maxLength = STRING_FIELDS[field];
  if (maxLength !== undefined) {
    if (typeof value !== 'string') return `${field} must be a string.`;
    return value.length > maxLength ? `${field} must be at most ${maxLength} characters.` : undefined;
  }
  if (STRING_ARRAY_FIELDS.includes(field)) {
    const ok = Array.isArray(value) && value.every((v) => typeof v === 'string');
    return ok ? undefined : `${field} must be an array of strings.`;
  }
  if (PRICE_FIELDS.includes(field)) {
    const ok = isObject(value) && Object.values(value).every((v) => typeof v === 'number' && Number.isFinite(v));
    return ok ? undefined : `${field} must be an object of currency code to number, e.g. {"USD": 40.9}.`;
  }
  if (field === 'in_stock') return Number.isInteger(value) ? undefined : 'in_stock must be an integer.';
  if (field === 'product_attributes') return isObject(value) ? undefined : 'product_attributes must be an object.';
  return undefined;
}

/** Checks one record; the first problem found decides its message, so each record is in one group. */
function checkRecord(record: unknown, index: number, ctx: InsiderContext): RecordOutcome {
  if (!isObject(record)) return { id: String(index), problem: INSIDER_MESSAGES.notAnObject, warnings: [] };
  const { item_id: itemId, locale } = record;
  const usable = (v: unknown): v is string => typeof v === 'string' && v !== '';
  const id = usable(itemId) && usable(locale) ? `${itemId}:${locale}` : String(index);
  const invalid = (problem: string): RecordOutcome => ({ id, problem, warnings: [] });

  const bytes = Buffer.byteLength(JSON.stringify(record), 'utf8');
  if (bytes > ctx.config.maxRecordBytes) {
    return invalid(`Product data exceeds the maximum allowed size of ${ctx.config.maxRecordBytes} bytes.`);
  }
  if (!usable(itemId)) return invalid(INSIDER_MESSAGES.missingItemId);
  if (!usable(locale)) return invalid(INSIDER_MESSAGES.missingLocale);
  if (itemId.length > MAX_ITEM_ID_LENGTH) return invalid(INSIDER_MESSAGES.itemIdTooLong);
  if (!LOCALE.test(locale)) return invalid(INSIDER_MESSAGES.badLocale);

  // Undefined top-level attributes are ignored silently: the product is updated without them.
  const sent = UPDATE_FIELDS.filter((field) => Object.hasOwn(record, field));
  for (const field of sent) {
    const problem = fieldProblem(field, record[field]);
    if (problem) return invalid(problem);
  }
  if (sent.length === 0) return invalid(INSIDER_MESSAGES.noUpdateField);
  if (!ctx.items.has(id)) return invalid(INSIDER_MESSAGES.notInCatalog);

  const attributes = isObject(record.product_attributes) ? Object.keys(record.product_attributes) : [];
  const warnings = attributes.filter((key) => !ctx.attributes.has(key)).map(unknownAttributeWarning);
  return { id, problem: null, warnings };
}

/** `{message, count, document_ids}` per distinct message, in order of first appearance. */
function groupByMessage(entries: readonly { message: string; id: string }[]): Detail[] {
  const groups = new Map<string, Detail>();
  for (const { message, id } of entries) {
    let detail = groups.get(message);
    if (!detail) {
      detail = { message, count: 0, document_ids: [] };
      groups.set(message, detail);
    }
    detail.count += 1;
    detail.document_ids.push(id);
  }
  return [...groups.values()];
}

/** The plumbing recorded an oversized body in full; keep only a summary, as its own limit does. */
function summarizeRecordedBody(request: ApiRequest, requests: RecordedRequest[], bytes: number, limit: number): void {
  const recorded = request.jsonOk ? request.json : request.raw;
  for (let i = requests.length - 1; i >= 0; i--) {
    const record = requests[i];
    if (record && record.body === recorded) {
      record.body = `[${bytes} bytes, over the ${limit} byte limit]`;
      return;
    }
  }
}

function answerUpdate(request: ApiRequest, fault: Fault | null, ctx: InsiderContext): Reply {
  const { config } = ctx;
  const bytes = Buffer.byteLength(request.raw, 'utf8');
  const tooLarge = bytes > config.maxRequestBytes;
  if (tooLarge) summarizeRecordedBody(request, ctx.recordings(), bytes, config.maxRequestBytes);

  const admission = ctx.budget.admit(config.now());
  if (!admission.admitted) {
    return insiderError(429, INSIDER_MESSAGES.rateLimited, { 'retry-after': String(admission.retryAfter) });
  }
  if (header(request.headers, 'x-partner-name') !== config.partnerName) {
    return insiderError(401, INSIDER_MESSAGES.unknownPartner);
  }
  if (header(request.headers, 'x-request-token') !== config.token) return insiderError(401, INSIDER_MESSAGES.badToken);
  if (tooLarge) return insiderError(400, INSIDER_MESSAGES.tooLarge);
  if (!request.jsonOk || !Array.isArray(request.json)) return insiderError(400, INSIDER_MESSAGES.invalidJson);
  const records: unknown[] = request.json;
  if (records.length > config.maxRecords) return insiderError(400, INSIDER_MESSAGES.tooLarge);

  const outcomes = records.map((record, index) => checkRecord(record, index, ctx));
  if (fault?.kind === 'reject-transient') {
    // Provider-specific meaning of the generic fault: the first `count` valid records bounce with the code.
    let left = fault.count ?? Number.POSITIVE_INFINITY;
    for (const outcome of outcomes) {
      if (left <= 0) break;
      if (outcome.problem !== null) continue;
      outcome.problem = fault.code;
      outcome.warnings = [];
      left -= 1;
    }
  }

  const invalid = groupByMessage(
    outcomes.flatMap((o) => (o.problem === null ? [] : [{ message: o.problem, id: o.id }])),
  );
  const warnings = groupByMessage(outcomes.flatMap((o) => o.warnings.map((message) => ({ message, id: o.id }))));
  const validCount = outcomes.filter((o) => o.problem === null).length;
  const invalidCount = outcomes.length - validCount;
  return {
    status: 200,
    body: {
      success: true,
      message: {
        invalidRatio: outcomes.length === 0 ? 0 : invalidCount / outcomes.length,
        valid: { count: validCount },
        invalid: { count: invalidCount, details: invalid },
        warnings: { count: warnings.reduce((sum, d) => sum + d.count, 0), details: warnings },
      },
    },
  };
}

function checkConfig(config: InsiderSimConfig): void {
  for (const name of ['maxRecords', 'maxRequestBytes', 'maxRecordBytes'] as const) {
    const value = config[name];
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  checkRequestsPerMinute(config.requestsPerMinute);
}

export async function startInsiderSimulator(config: Partial<InsiderSimConfig> = {}): Promise<InsiderSimulator> {
  // Unset fields come from the demo catalog: startInsiderSimulator() alone is usable.
  const demo = demoInsiderCatalog();
  const full: InsiderSimConfig = {
    port: config.port ?? 0,
    partnerName: config.partnerName ?? demo.partnerName,
    token: config.token ?? demo.token,
    items: config.items ?? demo.items,
    productAttributes: config.productAttributes ?? demo.productAttributes,
    maxRecords: config.maxRecords ?? INSIDER_DEFAULTS.maxRecords,
    maxRequestBytes: config.maxRequestBytes ?? INSIDER_DEFAULTS.maxRequestBytes,
    maxRecordBytes: config.maxRecordBytes ?? INSIDER_DEFAULTS.maxRecordBytes,
    requestsPerMinute: config.requestsPerMinute ?? INSIDER_DEFAULTS.requestsPerMinute,
    latencyMs: config.latencyMs ?? 0,
    now: config.now ?? Date.now,
  };
  checkConfig(full);

  // The closures read `server` only once requests arrive, after it is assigned.
  const recordings = (): RecordedRequest[] => server.requests;
  const budget = new RequestBudget(full.requestsPerMinute, recordings);
  const ctx: InsiderContext = {
    config: full,
    items: new Set(full.items),
    attributes: new Set(full.productAttributes),
    budget,
    recordings,
  };
  const server: SimServer = await startSimServer({
    port: full.port,
    latencyMs: full.latencyMs,
    apiPath: INSIDER_UPDATE_PATH,
    maxBodyBytes: gatewayBodyLimit(full.maxRequestBytes),
    keyValid: (headers) =>
      header(headers, 'x-partner-name') === full.partnerName && header(headers, 'x-request-token') === full.token,
    statusFaultBody: insiderStatusBody,
    answer: (request, fault) => answerUpdate(request, fault, ctx),
  });

  return budgetedSimulator(server, budget);
}
