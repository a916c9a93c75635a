/**
 * The HTTP front, for services that do not use the Temporal client: start a sync, read its status,
 * re-submit corrected targets, finish it. It answers like the Octogen API the product is modelled
 * on (inline targets are validated at once; 202 when anything was accepted, 400 with the same
 * shape when nothing was), is guarded by bearer tokens, and describes itself at GET /openapi.json.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, isGrpcServiceError, type Client } from '@temporalio/client';
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
import { ResubmissionSchema, SyncRequestSchema } from '../contracts/index.ts';
import {
  ErrorBodySchema,
  FinishAnswerSchema,
  HealthSchema,
  OpenApiDocumentSchema,
  ResubmissionAnswerSchema,
  SubmitAnswerSchema,
  SyncIdParamsSchema,
  SyncReportSchema,
  apiSchemas,
  openApiInfo,
  type ErrorBody,
  type SubmitAnswer,
} from './openapi.ts';
import { SyncRequestError, finish, getStatus, resubmit, startSync, syncWorkflowId } from './sync-client.ts';
import { refuseCallerSource } from './sources.ts';
import { checkSyncRequest } from './request-check.ts';

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
}

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
const isSyncId = (id: string): boolean => providerNames().some((p) => id.startsWith(syncWorkflowId(p, '')));

const notFound = (id: string): HttpError =>
  new HttpError(404, 'not_found', `no sync with id "${id}": check the id (catalog-sync-<provider>-<key>)`);

/** Temporal's answers, as HTTP answers. */
function fromTemporal(err: unknown, id: string): unknown {
  if (err instanceof WorkflowNotFoundError) return notFound(id);
  if (err instanceof SyncRequestError) return new HttpError(400, 'invalid_request', err.message);
  if (err instanceof WorkflowUpdateFailedError) {
    const reason = err.cause?.message ?? err.message;
    return new HttpError(409, 'sync_closed', `sync "${id}" takes no re-submission: ${reason}`);
  }
  if (isGrpcServiceError(err) && err.code === 14 /* UNAVAILABLE */) {
    return new HttpError(503, 'temporal_unavailable', 'the Temporal server cannot be reached; try again later');
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

  const app = Fastify({
    logger: opts.logger
      ? {
          // The request log names method, URL and status; headers (and with them tokens) never.
          redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
        }
      : false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
  });
  // Fastify's own JSON parser (prototype-poisoning checks included), except that an empty body
  // is no body: many clients send `Content-Type: application/json` with POST /finish.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') done(null, undefined);
    else void jsonParser(request, text, done);
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(fastifySwagger, {
    openapi: openApiInfo,
    transform: createJsonSchemaTransform({ schemaRegistry: apiSchemas }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: apiSchemas }),
  });

  app.addHook('onRequest', async (request, reply) => {
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
      return reply.code(status).send(errorBody(CLIENT_ERROR_CODES[status] ?? 'invalid_request', err.message));
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
          'Validates the inline targets against the provider\u2019s schema at once and starts the sync with ' +
          'every target (malformed ones are reported rejected by the sync too, so its counts equal what ' +
          'was sent). 202 when anything was accepted; 400 with the same shape, and nothing started, when ' +
          'nothing was; 400 with an error when the request itself is not a sync request. `key` is an ' +
          'idempotency key: the same key answers with the same workflow ID and `started: false`.',
        operationId: 'startSync',
        body: SyncRequestSchema,
        response: {
          202: SubmitAnswerSchema,
          400: z.union([SubmitAnswerSchema, ErrorBodySchema]),
          ...errors(401, 413, 415, 500, 503),
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
        throw new HttpError(400, err.message.startsWith('provider:') ? 'unknown_provider' : 'invalid_request', err.message);
      }
      const answer: SubmitAnswer = { workflowId: null, submitted: null, accepted: [], rejected: [], started: false };
      if (req.targets) {
        answer.submitted = req.targets.length;
        const refused = new Map(checked.problems.map((p) => [p.index, p]));
        req.targets.forEach((target, index) => {
          const problem = refused.get(index);
          if (problem === undefined) answer.accepted.push(target);
          else answer.rejected.push({ index, target, code: problem.code, message: problem.message });
        });
        if (answer.accepted.length === 0) return reply.code(400).send(answer);
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
        if (err instanceof SyncRequestError) throw new HttpError(400, 'invalid_request', err.message);
        throw fromTemporal(err, syncWorkflowId(req.provider, req.key ?? '<new>'));
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
    '/v1/syncs/:id/resubmit',
    {
      schema: {
        summary: 'Re-submit corrected targets',
        description:
          'Each item is a corrected target, with `fixes` naming the rejection it replaces (or matched by the ' +
          'provider\u2019s identity). Answers with what the sync took and what it refused. 409 once the sync ' +
          'has closed its re-submission window.',
        operationId: 'resubmit',
        params: SyncIdParamsSchema,
        body: ResubmissionSchema,
        response: { 200: ResubmissionAnswerSchema, ...errors(400, 401, 404, 409, 413, 415, 500, 503) },
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
