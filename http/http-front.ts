/**
 * The HTTP front, for services that do not use the Temporal client: start a sync, read its status,
 * re-submit corrected targets, finish it. It answers like the Octogen API the product is modelled
 * on (inline targets are validated at once; 202 when anything was accepted, 400 with the same
 * shape when nothing was), is guarded by bearer tokens, and describes itself at GET /openapi.json.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import {
  QueryNotRegisteredError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { providerNames } from '../activities/providers/index.ts';
import {
  DURATION_LIMITS,
  MAX_ITEMS_PER_RESUBMISSION,
  MAX_RESUBMISSION_BYTES,
  ResubmissionSchema,
  SyncRequestSchema,
} from '../contracts/index.ts';
import {
  DryRunPlanSchema,
  ErrorBodySchema,
  FinishAnswerSchema,
  HealthSchema,
  OpenApiDocumentSchema,
  ResubmissionAnswerSchema,
  SubmitAnswerSchema,
  SyncIdParamsSchema,
  SyncReportSchema,
  TargetStatusSchema,
  targetParamsSchema,
  apiSchemas,
  exactRequestSchemas,
  openApiInfo,
  type ErrorBody,
  type SubmitAnswer,
} from './openapi.ts';
import {
  SyncKeyConflictError,
  SyncRequestError,
  finish,
  getStatus,
  resubmit,
  startSync,
  syncWorkflowId,
} from '../client/sync-client.ts';
import { refuseCallerSource } from '../client/sources.ts';
import { dryRunSync } from '../client/dry-run.ts';
import { TargetLookupError, TargetStoreError, showTarget } from '../client/targets.ts';
import { NO_STATE_STORE, openStateStore, stateStoreConfigured } from '../activities/state/index.ts';
import type { TargetStateStore } from '../contracts/target-state.ts';
import { temporalSettings, type TemporalSettings } from '../temporal/connection.ts';
import { checkSyncRequest, oneLine } from '../client/request-check.ts';

export interface HttpFrontOptions {
  client: Client;
  /** The task queue syncs are started on (CATALOG_SYNC_TASK_QUEUE). */
  taskQueue: string;
  /** Bearer tokens that may call the API; at least one. Never logged nor echoed. */
  tokens: string[];
  /** Fastify's request log (pino, JSON on stdout); off unless true. */
  logger?: boolean;
  /** Largest request body in bytes (default 16 MiB); inline requests over 256 KB go to the spool folder. */
  bodyLimit?: number;
  /**
   * The target-state store GET /v1/targets reads; by default the one CATALOG_SYNC_STATE_URL names,
   * opened on first use and closed with the front.
   */
  stateStore?: TargetStateStore;
  /** Where sync links point (TEMPORAL_UI_URL and the namespace); by default from the environment. */
  ui?: Pick<TemporalSettings, 'uiUrl' | 'namespace'>;
}

/** Deepest nesting of arrays and objects a request body may have (a target needs a few levels). */
export const MAX_JSON_DEPTH = 64;

/** Largest body of a re-submission, in bytes: room for its item limit, refused before parsing beyond. */
const RESUBMISSION_BODY_LIMIT = 4 * 1024 * 1024;

/** Longest path parameter the router takes (ids are at most 1,000 characters; longer get a 400, never a 414). */
const MAX_PARAM_LENGTH = 16 * 1024;

/** The header every answer carries its request's ID in (the `requestId` of POST /v1/syncs). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Routes anyone may call: the API's own description and the liveness probe. */
const OPEN_ROUTES = new Set(['/openapi.json', '/healthz']);

const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

/** An answer that is not a success: its status and `{ error: { code, message } }`. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } });

const mib = (bytes: number): string =>
  bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes.toLocaleString('en-US')} bytes`;

/**
 * The deepest nesting of a JSON text, counted without parsing it (no recursion, so no stack to
 * overflow); stops counting once past `limit`.
 */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \\ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return deepest;
}

/** Node 20's String.prototype.isWellFormed (not in the ES2022 lib types). */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * The path of the first string (or object key) in a parsed body that is not well-formed Unicode (a
 * lone surrogate, which no UTF-8 system can carry), such as "targets.3.url"; undefined if none.
 * Iterative: the depth was bounded before parsing, but no recursion is needed either.
 */
function illFormedText(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  const at = (base: string, key: string | number): string => (base === '' ? String(key) : `${base}.${key}`);
  while (stack.length > 0) {
    const [v, where] = stack.pop()!;
    if (typeof v === 'string') {
      if (!isWellFormed(v)) return where || 'request';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], at(where, i)]);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (!isWellFormed(k)) return at(where, k.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
        stack.push([child, at(where, k)]);
      }
    }
  }
  return undefined;
}

/**
 * Compares a presented token with every configured one in constant time: each is hashed first (so
 * lengths never differ) and all are compared, whichever matches.
 */
export function tokenChecker(tokens: readonly string[]): (presented: string) => boolean {
  const find = tokenOwner(tokens.map((token) => ({ token })));
  return (presented) => find(presented) !== undefined;
}

/** A bearer token, scoped to one caller ("caller=token" in configuration) or not (an operator). */
export interface ApiToken {
  token: string;
  caller?: string;
}

/** "caller=token" entries are scoped to their caller; plain tokens see every sync. */
export const parseTokens = (entries: readonly string[]): ApiToken[] =>
  entries
    .filter((e) => e.length > 0)
    .map((e) => {
      const at = e.indexOf('=');
      return at > 0 ? { caller: e.slice(0, at), token: e.slice(at + 1) } : { token: e };
    });

/** The configured token a presented one matches (constant time over all of them), if any. */
function tokenOwner(tokens: readonly ApiToken[]): (presented: string) => ApiToken | undefined {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  const known = tokens.map((t) => ({ t, d: digest(t.token) }));
  return (presented) => {
    const candidate = digest(presented);
    let match: ApiToken | undefined;
    for (const k of known) if (timingSafeEqual(k.d, candidate)) match ??= k.t;
    return match;
  };
}

const bearerToken = (header: string | undefined): string | undefined => /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1];

/** A sync's workflow ID names a known provider; anything else in the namespace is not ours to touch. */
// A slice of a large sync ("<sync id>/slice-3") is the sync's own business: no key holds a slash.
const isSyncId = (id: string): boolean =>
  !id.includes('/') && providerNames().some((p) => id.startsWith(syncWorkflowId(p, '')));

const notFound = (id: string): HttpError =>
  new HttpError(404, 'not_found', `no sync with id "${id}": check the id (catalog-sync-<provider>-<key>)`);

/** Temporal's answers, as HTTP answers. */
function fromTemporal(err: unknown, id: string, starting = false): unknown {
  if (err instanceof WorkflowNotFoundError || err instanceof QueryNotRegisteredError) return notFound(id);
  if (err instanceof SyncRequestError) return new HttpError(400, 'invalid_request', err.message);
  if (err instanceof WorkflowUpdateFailedError) {
    const reason = err.cause?.message ?? err.message;
    return new HttpError(409, 'sync_closed', `sync "${id}" takes no re-submission: ${reason}`);
  }
  // The client wraps gRPC errors (ServiceError, with the gRPC error as its cause).
  const grpc = isGrpcServiceError(err)
    ? err
    : isGrpcServiceError((err as Error | undefined)?.cause)
      ? (err as Error).cause
      : undefined;
  if (isGrpcServiceError(grpc)) {
    switch (grpc.code) {
      case 3 /* INVALID_ARGUMENT */:
        // Only a start carries caller input Temporal could refuse (the workflow ID, from the key).
        if (!starting) break;
        return new HttpError(
          400,
          'invalid_request',
          `Temporal refused the request for "${id}" (${grpc.details.split('\n')[0]}): check the id, the key and the options`,
        );
      case 4 /* DEADLINE_EXCEEDED */:
      case 8 /* RESOURCE_EXHAUSTED */:
      case 14 /* UNAVAILABLE */:
        return new HttpError(
          503,
          'temporal_unavailable',
          'the Temporal server cannot answer right now; try again later',
        );
    }
  }
  return err;
}

/** A signal or update to a sync that has closed: Temporal says "not found"; tell the caller it closed. */
async function closedOrMissing(client: Client, id: string): Promise<HttpError> {
  let status;
  try {
    ({ status } = await client.workflow.getHandle(id).describe());
  } catch (err) {
    throw fromTemporal(err, id);
  }
  return new HttpError(409, 'sync_closed', `sync "${id}" is closed (${status.name.toLowerCase()}); start a new sync`);
}

function validationMessage(err: FastifyError): string {
  const issues = err.validation ?? [];
  const where = err.validationContext === 'params' ? 'path' : 'request';
  return issues
    .map((issue) => {
      const field = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
      return `${field || where}: ${issue.message ?? 'invalid'}`;
    })
    .join('; ');
}

const CLIENT_ERROR_CODES: Record<number, string> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** Fastify's own 4xx errors, as one line naming what to change. */
function clientErrorMessage(
  err: FastifyError,
  request: { method: string; url: string; headers: Record<string, unknown> },
  bodyLimit: number,
): string {
  const route = request.url.split('?')[0] ?? '';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return /\/resubmit$/.test(route)
        ? `request body: over the limit of ${mib(Math.min(bodyLimit, RESUBMISSION_BODY_LIMIT))} for a re-submission; split it into ` +
            `re-submissions of at most ${MAX_ITEMS_PER_RESUBMISSION.toLocaleString('en-US')} items`
        : `request body: over this server's limit of ${mib(bodyLimit)}; give a large catalog by targetsRef ` +
            '(an NDJSON URL the workers may read), or split it into several syncs';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE': {
      const sent = request.headers['content-type'];
      return `Content-Type: ${typeof sent === 'string' && sent !== '' ? `"${sent.slice(0, 100)}" is not accepted` : 'missing'}; send Content-Type: application/json with a JSON body`;
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'request body: empty; send a JSON body with Content-Type: application/json';
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'request body: its length differs from the Content-Length header; send the body whole';
    default:
      return err.message;
  }
}

/** Builds the HTTP front (not listening yet: call `listen`, or use startHttpFront). */
export async function buildHttpFront(opts: HttpFrontOptions): Promise<FastifyInstance> {
  const tokens = parseTokens(opts.tokens);
  if (tokens.length === 0) throw new Error('the HTTP front needs at least one bearer token');
  const owner = tokenOwner(tokens);
  /** The caller each request acts for: a scoped token's caller, or undefined for an operator's. */
  const callers = new WeakMap<object, string | undefined>();
  const callerOf = (request: object): string | undefined => callers.get(request);
  /** A scoped caller sees only its own syncs; another's is "not found", never "forbidden". */
  const ensureOwner = async (request: object, id: string): Promise<void> => {
    const caller = callerOf(request);
    if (caller === undefined) return;
    let memo: Record<string, unknown> | undefined;
    try {
      ({ memo } = await client.workflow.getHandle(id).describe());
    } catch (err) {
      throw fromTemporal(err, id);
    }
    if (memo?.caller !== caller) throw notFound(id);
  };
  const { client, taskQueue } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;

  const app = Fastify({
    logger: opts.logger
      ? {
          // The request log names method, URL and status; headers (and with them tokens) never.
          redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
        }
      : false,
    bodyLimit,
    // Every request gets an ID of ours (never the caller's): answered in X-Request-Id, and as
    // `requestId` by POST /v1/syncs.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Ids longer than the schema's 1,000 characters get a 400 that says so, not the router's 414.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  });
  // Fastify's own JSON parser (prototype-poisoning checks included), except that an empty body
  // is no body: many clients send `Content-Type: application/json` with POST /finish.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  // JSON only: no text/plain (Fastify's other default) body reaches a route; others get a 415.
  app.removeAllContentTypeParsers();
  // Nesting is bounded before parsing (deep bodies overflowed the stack later, in serialization),
  // and every string must be well-formed Unicode (a lone surrogate reached Temporal as a 500).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') return done(null, undefined);
    const depth = jsonDepth(text, MAX_JSON_DEPTH);
    if (depth > MAX_JSON_DEPTH) {
      const err = new HttpError(
        400,
        'invalid_request',
        `request body: JSON nested more than ${MAX_JSON_DEPTH} levels deep (the limit is ${MAX_JSON_DEPTH}); ` +
          'send targets as flat objects (a few levels of nesting at most)',
      );
      return done(err as unknown as FastifyError, undefined);
    }
    void jsonParser(request, text, (err, value) => {
      if (err) return done(err, undefined);
      const where = illFormedText(value);
      if (where !== undefined) {
        const bad = new HttpError(
          400,
          'invalid_request',
          `${where}: text that is not well-formed Unicode (a lone surrogate such as \\ud800); send valid UTF-8 text`,
        );
        return done(bad as unknown as FastifyError, undefined);
      }
      done(null, value);
    });
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifySwagger, {
    openapi: openApiInfo,
    transform: createJsonSchemaTransform({ schemaRegistry: apiSchemas }),
    transformObject: (input) =>
      exactRequestSchemas(
        createJsonSchemaTransformObject({ schemaRegistry: apiSchemas })(input),
        providerNames(),
        DURATION_LIMITS,
      ),
  });

  // Which methods each path answers, for the 405s below (HEAD comes with every GET).
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}$`);
    let entry = routes.find((r) => r.pattern.source === pattern.source);
    if (!entry) routes.push((entry = { pattern, methods: new Set() }));
    for (const m of [route.method].flat()) {
      entry.methods.add(m);
      if (m === 'GET') entry.methods.add('HEAD');
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    const route = request.url.split('?')[0] ?? '';
    const allowed = routes.find((r) => r.pattern.test(route))?.methods;
    if (!allowed) return; // an unknown path: the 404 handler answers (after the token check)
    const allow = [...allowed].sort().join(', ');
    return reply
      .code(405)
      .header('allow', allow)
      .send(errorBody('method_not_allowed', `${request.method} is not allowed on ${route}; use ${allow}`));
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });

  app.addHook('onRequest', async (request, reply) => {
    if (reply.sent) return;
    if (OPEN_ROUTES.has(request.routeOptions.url ?? '')) return;
    const token = bearerToken(request.headers.authorization);
    const match = token !== undefined ? owner(token) : undefined;
    if (match) {
      callers.set(request, match.caller);
      return;
    }
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send(errorBody('unauthorized', 'a valid bearer token is required: Authorization: Bearer <token>'));
  });

  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send(errorBody(err.code, err.message));
    if (hasZodFastifySchemaValidationErrors(err)) {
      return reply.code(400).send(errorBody('invalid_request', validationMessage(err)));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply
        .code(status)
        .send(errorBody(CLIENT_ERROR_CODES[status] ?? 'invalid_request', clientErrorMessage(err, request, bodyLimit)));
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'the request failed on our side; try again, or tell us'));
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = <const C extends number[]>(...codes: C) =>
    Object.fromEntries(codes.map((c) => [c, ErrorBodySchema])) as Record<C[number], typeof ErrorBodySchema>;

  api.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness probe (open)',
        operationId: 'health',
        security: [],
        response: { 200: HealthSchema },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  api.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This API\u2019s OpenAPI document (open)',
        operationId: 'openapi',
        security: [],
        response: { 200: OpenApiDocumentSchema },
      },
    },
    async () => OpenApiDocumentSchema.parse(app.swagger()),
  );

  api.post(
    '/v1/syncs',
    {
      schema: {
        summary: 'Start a sync',
        description:
          'Give exactly one of `targets` (inline) and `targetsRef`. Validates the inline targets against the ' +
          'provider\u2019s schema at once and starts the sync with every target (malformed ones are reported ' +
          'rejected by the sync too, so its counts equal what was sent). 202 when anything was accepted: ' +
          '`accepted` lists the targets taken into the sync, validated but not yet sent to the provider (the ' +
          'sync\u2019s status says what the provider made of each). 400 with the same shape, and nothing ' +
          'started, when nothing was accepted; 400 with an error when the request itself is not a sync ' +
          'request. `key` is an idempotency key: the same key with the same request answers 202 with the ' +
          'existing sync\u2019s ID and `started: false`; with a different request, 409 `key_conflict`. ' +
          `413 for a body over the server\u2019s limit (default ${mib(DEFAULT_BODY_LIMIT)}): send a large ` +
          'catalog by `targetsRef`. 415 unless the body is `Content-Type: application/json`. JSON nested more ' +
          `than ${MAX_JSON_DEPTH} levels, and text that is not well-formed Unicode, get a 400 naming the field. ` +
          'Every answer carries the request\u2019s ID in the X-Request-Id header.',
        operationId: 'startSync',
        body: SyncRequestSchema,
        response: {
          202: SubmitAnswerSchema,
          400: z.union([SubmitAnswerSchema, ErrorBodySchema]),
          ...errors(401, 409, 413, 415, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const req = request.body;
      // The one check the CLI and the library make too (client/request-check.ts).
      let checked;
      try {
        checked = checkSyncRequest(req);
      } catch (err) {
        if (!(err instanceof SyncRequestError)) throw err;
        throw new HttpError(
          400,
          err.message.startsWith('provider:') ? 'unknown_provider' : 'invalid_request',
          err.message,
        );
      }
      const answer: SubmitAnswer = {
        requestId: request.id,
        workflowId: null,
        workflowError: null,
        submitted: null,
        accepted: [],
        rejected: [],
        started: false,
      };
      if (req.targets) {
        answer.submitted = req.targets.length;
        const refused = new Map(checked.problems.map((p) => [p.index, p]));
        req.targets.forEach((target, index) => {
          const problem = refused.get(index);
          if (problem === undefined) answer.accepted.push(target);
          else answer.rejected.push({ index, target, code: problem.code, message: problem.message });
        });
        if (answer.accepted.length === 0) {
          answer.workflowError =
            'no target passed validation, so no sync was started: fix the rejected targets and send them again';
          return reply.code(400).send(answer);
        }
      }
      let started;
      try {
        await refuseCallerSource(req.targetsRef); // no file, no URL off the allowlist: nothing read, nothing started
        const caller = callerOf(request);
        started = await startSync(
          client,
          // A caller's keys are its own: two callers with the same key get two syncs.
          caller !== undefined && req.key !== undefined ? { ...req, key: `${caller}.${req.key}` } : req,
          taskQueue,
          { ...(caller !== undefined ? { memo: { caller } } : {}) },
        );
      } catch (err) {
        if (err instanceof SyncKeyConflictError) {
          // The caller's own key, never the namespaced one (a scoped caller's prefix is ours).
          throw new HttpError(
            409,
            'key_conflict',
            `key "${req.key ?? err.key}" already names sync ${err.workflowId}, started with a different request ` +
              '(provider, targets, targetsRef or options): use a new key for this request, or resend the same ' +
              'request to get the existing sync',
          );
        }
        if (err instanceof SyncRequestError) throw new HttpError(400, 'invalid_request', err.message);
        throw fromTemporal(err, syncWorkflowId(req.provider, req.key ?? '<new>'), true);
      }
      return reply.code(202).send({ ...answer, workflowId: started.workflowId, started: started.started });
    },
  );

  api.get(
    '/v1/syncs/:id',
    {
      schema: {
        summary: 'A sync\u2019s status',
        description: 'Phase, counts, rejected targets (each with the id a re-submission names), failures, calls.',
        operationId: 'getSync',
        params: SyncIdParamsSchema,
        response: { 200: SyncReportSchema, ...errors(400, 401, 404, 500, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!isSyncId(id)) throw notFound(id);
      await ensureOwner(request, id);
      try {
        return await getStatus(client, id);
      } catch (err) {
        throw fromTemporal(err, id);
      }
    },
  );

  api.post(
    '/v1/dry-runs',
    {
      schema: {
        summary: 'Plan a sync without starting it',
        description:
          'The same body as `startSync`. Validates the targets and plans the batches exactly as a sync would ' +
          '(pages of 1,000 targets, the provider\u2019s documented limits, `options.batchSize`) and answers what a ' +
          'real run would send: targets, rejections (the first 100), calls, bytes, and which limit closed each ' +
          'call. Nothing is started and no provider is called (`providerCalls` is always 0). `targetsRef.url` ' +
          'must be under the operator\u2019s allowlist; a file is refused as for `startSync`.',
        operationId: 'dryRun',
        body: SyncRequestSchema,
        response: { 200: DryRunPlanSchema, ...errors(400, 401, 413, 415, 500) },
      },
    },
    async (request) => {
      try {
        await refuseCallerSource(request.body.targetsRef);
        return await dryRunSync(request.body);
      } catch (err) {
        if (!(err instanceof SyncRequestError)) throw err;
        throw new HttpError(
          400,
          err.message.startsWith('provider:') ? 'unknown_provider' : 'invalid_request',
          err.message,
        );
      }
    },
  );

  api.post(
    '/v1/syncs/:id/resubmit',
    {
      schema: {
        summary: 'Re-submit corrected targets',
        description:
          'Each item is a corrected target, with `fixes` naming the rejection it replaces (or matched by the ' +
          'provider\u2019s identity). Answers with what the sync took and what it refused. 409 once the sync ' +
          'has closed its re-submission window. At most ' +
          `${MAX_ITEMS_PER_RESUBMISSION.toLocaleString('en-US')} items and ${MAX_RESUBMISSION_BYTES.toLocaleString('en-US')} ` +
          'bytes of JSON per re-submission: more items are refused at once (400 `too_many_items`), a body over ' +
          `${mib(RESUBMISSION_BODY_LIMIT)} with 413; split the corrections into several re-submissions.`,
        operationId: 'resubmit',
        params: SyncIdParamsSchema,
        body: ResubmissionSchema,
        response: { 200: ResubmissionAnswerSchema, ...errors(400, 401, 404, 409, 413, 415, 500, 503) },
      },
      bodyLimit: Math.min(bodyLimit, RESUBMISSION_BODY_LIMIT),
      // Over the item limit: refused at once, before a single item is validated or sent to Temporal.
      preValidation: async (request) => {
        const items = (request.body as { items?: unknown } | undefined)?.items;
        if (Array.isArray(items) && items.length > MAX_ITEMS_PER_RESUBMISSION) {
          const limit = MAX_ITEMS_PER_RESUBMISSION.toLocaleString('en-US');
          throw new HttpError(
            400,
            'too_many_items',
            `items: ${items.length.toLocaleString('en-US')} items, over the limit of ${limit} per re-submission; ` +
              `split them into re-submissions of at most ${limit} items`,
          );
        }
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!isSyncId(id)) throw notFound(id);
      await ensureOwner(request, id);
      try {
        return await resubmit(client, id, request.body.items);
      } catch (err) {
        throw err instanceof WorkflowNotFoundError ? await closedOrMissing(client, id) : fromTemporal(err, id);
      }
    },
  );

  let ownStore: TargetStateStore | undefined;
  const stateStore = (): TargetStateStore => {
    if (opts.stateStore) return opts.stateStore;
    if (!stateStoreConfigured(process.env)) throw new HttpError(503, 'state_store_unavailable', NO_STATE_STORE);
    try {
      ownStore ??= openStateStore(process.env);
    } catch (err) {
      throw new HttpError(
        503,
        'state_store_unavailable',
        `the target-state store cannot be opened: ${(err as Error).message}`,
      );
    }
    return ownStore;
  };
  app.addHook('onClose', async () => {
    await ownStore?.close().catch(() => undefined);
  });
  const ui = opts.ui ?? temporalSettings(process.env);

  api.get(
    '/v1/targets/:provider/:identity',
    {
      schema: {
        summary: 'Where a product stands',
        description:
          'The item\u2019s last state (accepted, rejected, failed, superseded), code, message and when, and the ' +
          'sync that sent it, from the target-state store. A scoped caller sees only the items its own syncs ' +
          'sent: any other is 404. URL-encode the identity (`url:https://...` carries slashes).',
        operationId: 'getTarget',
        params: targetParamsSchema(providerNames() as [string, ...string[]]),
        response: { 200: TargetStatusSchema, ...errors(400, 401, 404, 500, 503) },
      },
    },
    async (request) => {
      const { provider, identity } = request.params;
      if (oneLine(identity) !== identity || !isWellFormed(identity)) {
        throw new HttpError(400, 'invalid_request', 'identity: must be printable text, as reports show it');
      }
      const caller = callerOf(request);
      let views;
      try {
        views = await showTarget(stateStore(), ui, { provider, identity, ...(caller !== undefined ? { caller } : {}) });
      } catch (err) {
        if (err instanceof TargetLookupError) throw new HttpError(400, 'invalid_request', err.message);
        if (err instanceof TargetStoreError) throw new HttpError(503, 'state_store_unavailable', err.message);
        throw err;
      }
      if (views.length === 0) {
        throw new HttpError(404, 'not_found', `no answer recorded for ${provider} item ${JSON.stringify(identity)}`);
      }
      return {
        provider,
        identity,
        items: views
          .sort((a, b) => b.at.localeCompare(a.at))
          .map(({ provider: _p, identity: _i, caller: _c, ...item }) => item),
      };
    },
  );

  api.post(
    '/v1/syncs/:id/finish',
    {
      schema: {
        summary: 'Close a sync now',
        description: 'What is in flight settles first; the final report follows. 409 when the sync has closed.',
        operationId: 'finish',
        params: SyncIdParamsSchema,
        response: { 202: FinishAnswerSchema, ...errors(400, 401, 404, 409, 413, 415, 500, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!isSyncId(id)) throw notFound(id);
      await ensureOwner(request, id);
      try {
        await finish(client, id);
      } catch (err) {
        throw err instanceof WorkflowNotFoundError ? await closedOrMissing(client, id) : fromTemporal(err, id);
      }
      return reply.code(202).send({ workflowId: id, finishing: true as const });
    },
  );

  return app;
}

export interface RunningHttpFront {
  app: FastifyInstance;
  /** Where it listens, e.g. http://127.0.0.1:8080. */
  url: string;
  close(): Promise<void>;
}

/** Builds the HTTP front and listens (port 0: any free port). */
export async function startHttpFront(
  opts: HttpFrontOptions & { port?: number; host?: string },
): Promise<RunningHttpFront> {
  const { port = 8080, host = '127.0.0.1', ...rest } = opts;
  const app = await buildHttpFront(rest);
  await app.listen({ port, host });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { app, url: `http://${shownHost}:${bound}`, close: () => app.close() };
}
