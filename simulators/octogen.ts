/**
 * A real HTTP simulator of Octogen's `POST /v1/products/refresh` (contract:
 * shared/seeds/000_8c48767156b24a32.txt): bearer auth, partial success, 202/400/401/403/422, an
 * optional account-wide request budget (429), plus the generic faults from ./faults.ts.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { budgetedSimulator, rateLimitHeaders, RequestBudget } from './budget.ts';
import type { Fault, FaultInjector, RecordedRequest } from './faults.ts';
import {
  describeIssues,
  genericStatusBody,
  jsonError,
  startSimServer,
  type ApiRequest,
  type Reply,
  type SimServer,
} from './http.ts';
import { demoOctogenIndex, normalizeUrl, OctogenIndex, type OctogenProduct } from './octogen-index.ts';

export {
  DEMO_OCTOGEN_KEY,
  RESTRICTED_OCTOGEN_KEY,
  SHARED_DEMO_URL,
  demoOctogenIndex,
  deterministicUuid,
  makeOctogenProducts,
  type OctogenProduct,
} from './octogen-index.ts';

export const OCTOGEN_REFRESH_PATH = '/v1/products/refresh';
export const OCTOGEN_MAX_TARGETS = 500;
export const TRANSIENT_MESSAGE = 'Temporarily unavailable; retry later.';
export const RATE_LIMIT_MESSAGE = 'Rate limit exceeded; retry after the Retry-After period.';

export interface OctogenSimConfig {
  /** 0 = random free port. Always listens on 127.0.0.1. */
  port: number;
  /** API key -> granted catalogs. */
  keys: Record<string, string[]>;
  products: OctogenProduct[];
  /** Added to every API answer. */
  latencyMs: number;
  /**
   * The contract suggests `catalog` + `url` for "a product page URL that may not be indexed yet",
   * so the real API may accept unindexed pinned urls. Off by default: such targets are rejected
   * `product_not_found`.
   */
  acceptUnindexedPinnedUrls: boolean;
  /**
   * Account-wide budget: admitted requests per sliding 60 s window, spent by every request that
   * reaches the API checks (before auth). Infinity (the default) turns it off.
   */
  requestsPerMinute: number;
  /** Clock of the request budget, in epoch milliseconds; tests move it instead of waiting a minute. */
  now: () => number;
}

export interface OctogenSimulator {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:4010. */
  url: string;
  faults: FaultInjector;
  /** Live array of every request to the API path, in arrival order. */
  requests: RecordedRequest[];
  /** How many requests the budget answered 429 (injected 429 faults are not counted). */
  readonly rateLimited: number;
  /** Clears the recorded requests (in place), the faults, the budget window and `rateLimited`. */
  reset(): void;
  close(): Promise<void>;
}

type Target = { uuid: string; catalog?: string } | { url: string; catalog?: string };
interface Rejection {
  target: unknown;
  code: string;
  message: string;
}

const TargetSchema = z
  .strictObject(
    {
      uuid: z.string().exactOptional(),
      url: z.string().exactOptional(),
      catalog: z.string().exactOptional(),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'Each target must be an object.' : undefined) },
  )
  .refine((t) => (t.uuid === undefined) !== (t.url === undefined), {
    message: 'Every target must contain exactly one of url or uuid.',
  });

const BodySchema = z.strictObject(
  {
    targets: z
      .array(TargetSchema, {
        error: (issue) => (issue.input === undefined ? 'targets is required.' : 'targets must be an array.'),
      })
      .min(1, 'targets must contain at least one target.')
      .max(OCTOGEN_MAX_TARGETS, `targets must contain at most ${OCTOGEN_MAX_TARGETS} targets.`),
  },
  {
    error: (issue) =>
      issue.code === 'invalid_type' ? 'Request body must be a JSON object with a targets array.' : undefined,
  },
);

function bearerKey(headers: IncomingMessage['headers']): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return match?.[1];
}

function rejection(target: unknown, code: string, message: string): Rejection {
  return { target, code, message };
}

/** Resolves one target against the granted catalogs: undefined when accepted. */
function resolveTarget(
  target: Target,
  sent: unknown,
  granted: readonly string[],
  index: OctogenIndex,
  config: OctogenSimConfig,
): Rejection | undefined {
  const catalogs = target.catalog === undefined ? granted : [target.catalog];
  if ('uuid' in target) {
    if (catalogs.some((c) => index.hasUuid(c, target.uuid))) return undefined;
    const where = target.catalog === undefined ? 'the granted catalogs' : `catalog "${target.catalog}"`;
    return rejection(sent, 'product_not_found', `No product with this uuid in ${where}.`);
  }
  const url = normalizeUrl(target.url);
  if (url === undefined) return rejection(sent, 'invalid_url', 'url must be an absolute http(s) URL.');
  const matches = catalogs.filter((c) => index.hasUrl(c, url));
  if (target.catalog !== undefined) {
    if (matches.length > 0 || config.acceptUnindexedPinnedUrls) return undefined;
    return rejection(sent, 'product_not_found', `No product with this url in catalog "${target.catalog}".`);
  }
  if (matches.length === 1) return undefined;
  if (matches.length > 1) {
    return rejection(sent, 'ambiguous_url', 'URL matched more than one granted catalog; include catalog.');
  }
  return rejection(sent, 'product_not_found', 'No product with this url in the granted catalogs.');
}

function octogenStatusBody(status: number): unknown {
  if (status === 503) {
    return { error: { code: 'product_refresh_unavailable', message: 'Product refresh is temporarily unavailable.' } };
  }
  return genericStatusBody(status);
}

/**
 * Injected status faults are answered by the plumbing before this is called; then the budget, then
 * the real answer. Admitted answers carry the X-RateLimit-* headers too (when the budget is on).
 */
function answerWithinBudget(
  request: ApiRequest,
  fault: Fault | null,
  budget: RequestBudget,
  index: OctogenIndex,
  config: OctogenSimConfig,
): Reply {
  const admission = budget.admit(config.now());
  const headers = rateLimitHeaders(admission);
  if (!admission.admitted) return { ...jsonError(429, 'rate_limit_exceeded', RATE_LIMIT_MESSAGE), headers };
  const reply = answerRefresh(request, fault, index, config);
  return { ...reply, headers: { ...headers, ...reply.headers } };
}

function answerRefresh(request: ApiRequest, fault: Fault | null, index: OctogenIndex, config: OctogenSimConfig): Reply {
  const key = bearerKey(request.headers);
  // Object.hasOwn: a key named "constructor" must not authenticate through the prototype.
  const granted = key !== undefined && Object.hasOwn(config.keys, key) ? config.keys[key] : undefined;
  if (!granted) return jsonError(401, 'unauthorized', 'Missing or invalid API key.');

  if (!request.jsonOk) return jsonError(422, 'invalid_request', 'Request body is not valid JSON.');
  const parsed = BodySchema.safeParse(request.json);
  if (!parsed.success) return jsonError(422, 'invalid_request', describeIssues(parsed.error.issues));
  const targets = parsed.data.targets as Target[];
  // Echo exactly what was sent, not zod's copy.
  const sent = (request.json as { targets: unknown[] }).targets;

  const ungranted = targets.flatMap((t, i) =>
    t.catalog !== undefined && !granted.includes(t.catalog) ? [{ catalog: t.catalog, target: sent[i] }] : [],
  );
  const firstUngranted = ungranted[0];
  if (firstUngranted) {
    const message = (catalog: string): string => `Catalog "${catalog}" is not granted to this API key.`;
    return {
      status: 403,
      body: {
        error: {
          code: 'catalog_not_granted',
          message: message(firstUngranted.catalog),
          catalog: firstUngranted.catalog,
        },
        rejected: ungranted.map((u) => rejection(u.target, 'catalog_not_granted', message(u.catalog))),
      },
    };
  }

  const outcomes = targets.map((t, i) => ({
    sent: sent[i],
    rejected: resolveTarget(t, sent[i], granted, index, config),
  }));
  if (fault?.kind === 'reject-transient') {
    // Provider-specific meaning of the generic fault: the first `count` accepted targets bounce.
    let left = fault.count ?? Number.POSITIVE_INFINITY;
    for (const outcome of outcomes) {
      if (left <= 0) break;
      if (outcome.rejected) continue;
      outcome.rejected = rejection(outcome.sent, fault.code, TRANSIENT_MESSAGE);
      left -= 1;
    }
  }

  const accepted = outcomes.filter((o) => !o.rejected).map((o) => o.sent);
  const rejected = outcomes.flatMap((o) => (o.rejected ? [o.rejected] : []));
  const requestId = randomUUID();
  return {
    status: accepted.length > 0 ? 202 : 400,
    headers: { 'x-request-id': requestId },
    body: { requestId, submitted: targets.length, workflowId: randomUUID(), workflowError: null, accepted, rejected },
  };
}

export async function startOctogenSimulator(config: Partial<OctogenSimConfig> = {}): Promise<OctogenSimulator> {
  // Without keys or products, the demo index: startOctogenSimulator() alone is usable.
  const demo = config.keys && config.products ? undefined : demoOctogenIndex();
  const full: OctogenSimConfig = {
    port: config.port ?? 0,
    keys: config.keys ?? demo?.keys ?? {},
    products: config.products ?? demo?.products ?? [],
    latencyMs: config.latencyMs ?? 0,
    acceptUnindexedPinnedUrls: config.acceptUnindexedPinnedUrls ?? false,
    requestsPerMinute: config.requestsPerMinute ?? Number.POSITIVE_INFINITY,
    now: config.now ?? Date.now,
  };
  const index = new OctogenIndex(full.products);
  // Throws for a bad requestsPerMinute. It reads `server` only once requests arrive, after it is assigned.
  const budget = new RequestBudget(full.requestsPerMinute, () => server.requests);
  const server: SimServer = await startSimServer({
    port: full.port,
    latencyMs: full.latencyMs,
    apiPath: OCTOGEN_REFRESH_PATH,
    keyValid: (headers) => {
      const key = bearerKey(headers);
      return key !== undefined && Object.hasOwn(full.keys, key);
    },
    statusFaultBody: octogenStatusBody,
    answer: (request, fault) => answerWithinBudget(request, fault, budget, index, full),
  });

  return budgetedSimulator(server, budget);
}
