/**
 * The HTTP front's schemas: what it answers, as zod schemas the server serializes through and the
 * OpenAPI document is generated from. Request bodies are the contracts' own schemas
 * (SyncRequestSchema, ResubmissionSchema); the answers mirror the contracts' report types, and
 * the type checks at the end keep the two from drifting apart.
 */
import { z } from 'zod';
import {
  ResubmissionSchema,
  SyncRequestSchema,
  type Counts,
  type Failure,
  type ProviderCall,
  type RefusedItem,
  type Rejection,
  type ReportOmissions,
  type ResubmissionAnswer,
  type SyncReport,
  type Warning,
} from '../contracts/index.ts';

/** Component names of the OpenAPI document (a registry of our own: the global one stays untouched). */
export const apiSchemas = z.registry<{ id?: string; description?: string }>();

const named = <T extends z.ZodType>(schema: T, id: string, description: string): T => {
  apiSchemas.add(schema, { id, description });
  return schema;
};
const described = <T extends z.ZodType>(schema: T, description: string): T => {
  apiSchemas.add(schema, { description });
  return schema;
};

/** The workflow IDs of syncs: `catalog-sync-<provider>-<key>`. */
export const SyncIdParamsSchema = z.object({
  id: described(z.string().min(1).max(1000), 'the sync\u2019s workflow ID, as POST /v1/syncs answered it'),
});

export const ErrorBodySchema = named(
  z.object({
    error: z.object({
      code: z.string(),
      message: z.string(),
    }),
  }),
  'Error',
  'What went wrong (`code`) and how to fix it (`message`, naming the field).',
);
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const SubmitRejectionSchema = z.object({
  /** Position of the target in the request's `targets`. */
  index: z.number().int().nonnegative(),
  target: z.unknown(),
  /** `invalid_target` (schema, encoding), `target_too_large` (over the provider's per-record bytes). */
  code: z.enum(['invalid_target', 'target_too_large']),
  message: z.string(),
});

export const DryRunPlanSchema = named(
  z.object({
    dryRun: z.literal(true),
    provider: z.string(),
    targets: described(z.number().int().nonnegative(), 'targets in the request or source'),
    wouldSend: described(z.number().int().nonnegative(), 'targets that pass validation: what a real run would send'),
    rejected: described(z.number().int().nonnegative(), 'targets a real run would reject before sending'),
    unchanged: described(
      z.number().int().nonnegative(),
      'with `options.changedOnly` and the target-state store at hand: targets whose content equals the last ' +
        'accepted one, which a real run would not send',
    ).optional(),
    unchangedUnknown: described(
      z.string(),
      'with `options.changedOnly`, why nothing could be compared (every valid target is counted as sent)',
    ).optional(),
    rejections: described(
      z.array(z.object({ id: z.string(), line: z.number().int().optional(), code: z.string(), message: z.string() })),
      'the first 100 of them, each naming its target and the fix',
    ),
    calls: described(z.number().int().nonnegative(), 'provider calls a real run would make'),
    bytes: described(z.number().int().nonnegative(), 'bytes of the targets\u2019 JSON in all calls'),
    largestCallBytes: z.number().int().nonnegative(),
    limits: z.object({
      batchSize: z.number().int().positive(),
      maxTargets: z.number().int().positive(),
      maxBytes: z.number().int().positive().optional(),
    }),
    cutBy: described(
      z.object({
        targets: z.number().int().nonnegative(),
        bytes: z.number().int().nonnegative(),
        pageOrGroupEnd: z.number().int().nonnegative(),
      }),
      'how many calls each limit closed (the target limit, the byte limit, the end of a 1,000-target page or of a catalog)',
    ),
    providerCalls: described(z.literal(0), 'always 0: a dry run never calls the provider'),
  }),
  'DryRunPlan',
  'What a sync of the request would send: nothing was started and no provider was called.',
);

export const SubmitAnswerSchema = named(
  z.object({
    requestId: described(
      z.string(),
      'this request\u2019s own ID (also in the X-Request-Id header): quote it when asking about the request',
    ),
    workflowId: described(
      z.string().nullable(),
      'the sync\u2019s workflow ID (for a key that already named a sync with this same request, that sync\u2019s); ' +
        'null when nothing was started',
    ),
    workflowError: described(
      z.string().nullable(),
      'null when the sync was started (or already existed); otherwise why it was not, and the fix',
    ),
    submitted: described(
      z.number().int().nonnegative().nullable(),
      'how many inline targets the request carried; null for targets by reference (the sync validates those itself)',
    ),
    accepted: described(
      z.array(z.unknown()),
      'the inline targets that passed validation, as sent, and so were taken into the sync. At this point they ' +
        'are validated, not yet sent: the provider has not seen them. What the provider made of each ' +
        '(accepted, rejected, failed) is in the sync\u2019s status, GET /v1/syncs/{id}',
    ),
    rejected: described(
      z.array(SubmitRejectionSchema),
      'the malformed inline targets (the sync reports them as rejected too), each naming the field and the fix',
    ),
    started: described(
      z.boolean(),
      'true when this request started the sync; false when a sync with this key and this same request ' +
        'already existed (nothing new was started), or when nothing was accepted',
    ),
  }),
  'SubmitAnswer',
  'The answer to a sync request, shaped like Octogen\u2019s: 202 when anything was taken into the sync, ' +
    '400 when nothing was. `accepted` means validated and taken into the sync, not yet sent to the provider.',
);
export type SubmitAnswer = z.infer<typeof SubmitAnswerSchema>;

const CountsSchema = z.object({
  submitted: z.number().int(),
  pending: z.number().int(),
  accepted: z.number().int(),
  rejected: z.number().int(),
  failed: z.number().int(),
  superseded: z.number().int(),
  unchanged: described(
    z.number().int(),
    'targets not sent because their content equals the last accepted one (`changedOnly`); outside `submitted`',
  ),
});

/** The provider's identity of the item a warning, rejection or failure concerns (contracts' ItemIdentity). */
const ItemIdentitySchema = z.exactOptional(
  described(
    z.string().max(256),
    'the provider\u2019s identity of the item: `item_id:locale` for Insider, `uuid:<uuid>` or `url:<url>` for ' +
      'Octogen (at most 256 characters; a longer one keeps its start and a digest). Absent for a target that ' +
      'never parsed or was never read',
  ),
);
/** The 1-based line of the target in a by-reference source (NDJSON file or URL). */
const LineSchema = z.exactOptional(
  described(z.number().int(), 'the 1-based line of the target in a by-reference source'),
);

const RejectionSchema = z.object({
  id: z.string(),
  identity: ItemIdentitySchema,
  line: LineSchema,
  // Dropped from large reports: history carries cursors and counts, not catalogs.
  target: z.unknown().optional(),
  code: z.string(),
  message: z.string(),
  origin: z.enum(['validation', 'provider']),
});

const FailureSchema = z.object({
  id: z.string(),
  identity: ItemIdentitySchema,
  line: LineSchema,
  target: z.unknown().optional(),
  code: z.string(),
  message: z.string(),
});

const WarningSchema = z.object({
  id: z.string(),
  identity: ItemIdentitySchema,
  line: LineSchema,
  message: z.string(),
});

const RefusedItemSchema = z.object({
  index: z.number().int(),
  fixes: z.exactOptional(z.string()),
  code: z.string(),
  message: z.string(),
});

const ProviderCallSchema = z.object({
  slice: z.exactOptional(z.number().int()),
  batch: z.number().int(),
  httpStatus: z.number().int(),
  targets: z.number().int(),
  requestId: z.exactOptional(z.string()),
  providerWorkflowId: z.exactOptional(z.string()),
});

const SupersededSchema = z.object({ id: z.string(), by: z.string() });
const RejectedElsewhereSchema = z.object({
  workflowId: z.string(),
  count: z.number().int(),
  warnings: z.number().int(),
});

const OmissionsSchema = described(
  z.object({
    rejected: z.number().int(),
    failed: z.number().int(),
    warnings: z.number().int(),
    superseded: z.number().int(),
    refused: z.number().int(),
    calls: z.number().int(),
    rejectedElsewhere: z.number().int(),
    echoes: z.number().int(),
  }),
  'what the report left out to stay under its byte budget (counts never are); set only when something was',
);

const CarriedSchema = described(
  z.object({
    count: z.number().int(),
    transient: z.number().int(),
    failed: z.number().int(),
    rejected: z.number().int(),
    left: z.number().int(),
    tooLarge: z.number().int(),
  }),
  'set on a sync a schedule\u2019s run started with items carried forward: how many, by their last state, and how many were left for the next run',
);

export const SyncReportSchema = named(
  z.object({
    workflowId: z.string(),
    provider: z.string(),
    phase: z.enum(['validating', 'sending', 'open', 'closed']),
    counts: CountsSchema,
    rejected: z.array(RejectionSchema),
    failed: z.array(FailureSchema),
    warnings: z.array(WarningSchema),
    superseded: z.array(SupersededSchema),
    refused: z.array(RefusedItemSchema),
    calls: z.array(ProviderCallSchema),
    windowEndsAt: z.exactOptional(z.string()),
    closedReason: z.exactOptional(z.enum(['nothing-to-fix', 'window-ended', 'finished', 'aborted'])),
    abortReason: z.exactOptional(z.string()),
    firstPassSettled: z.boolean(),
    carried: z.exactOptional(CarriedSchema),
    rejectedElsewhere: z.exactOptional(z.array(RejectedElsewhereSchema)),
    omitted: z.exactOptional(OmissionsSchema),
  }),
  'SyncReport',
  'A sync\u2019s status: every target in exactly one state, submitted = pending + accepted + rejected + failed + superseded.',
);

export const ResubmissionAnswerSchema = named(
  z.object({
    taken: z.array(z.object({ index: z.number().int(), id: z.string(), supersedes: z.string() })),
    refused: z.array(RefusedItemSchema),
  }),
  'ResubmissionAnswer',
  'What the sync took (each item\u2019s new target id and the rejection it supersedes) and what it refused.',
);

export const FinishAnswerSchema = named(
  z.object({ workflowId: z.string(), finishing: z.literal(true) }),
  'FinishAnswer',
  'The sync was asked to close; what is in flight settles first.',
);

export const HealthSchema = z.object({ status: z.literal('ok') });

/** An item of the target-state store: GET /v1/targets/{provider}/{identity} (the providers the server knows). */
export const targetParamsSchema = (providers: readonly [string, ...string[]]) =>
  z.object({
    provider: described(z.enum(providers), 'the provider'),
    identity: described(
      z
        .string()
        .min(1)
        .max(1000)
        // eslint-disable-next-line no-control-regex -- printable text is what it excludes
        .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]+$/),
      'the provider\u2019s identity of the item, URL-encoded, printable text: `item_id:locale` for Insider, ' +
        '`uuid:<uuid>` or `url:<url>` for Octogen (as reports show it)',
    ),
  });

const TargetItemSchema = z.object({
  account: described(z.string(), 'the provider account\u2019s digest (never a credential)'),
  state: described(z.enum(['accepted', 'rejected', 'failed', 'superseded']), 'what the provider last made of the item'),
  code: z.exactOptional(described(z.string(), 'the rejection or failure code')),
  message: z.exactOptional(described(z.string(), 'the provider\u2019s message (or an acceptance\u2019s warning)')),
  at: described(z.string(), 'when the provider answered (ISO 8601)'),
  syncId: described(z.string(), 'the sync that sent it (GET /v1/syncs/{id})'),
  syncUrl: described(z.string(), 'the sync in the Temporal UI'),
  acceptedHash: z.exactOptional(described(z.string(), 'the content hash of the last accepted payload')),
  acceptedAt: z.exactOptional(described(z.string(), 'when that payload was accepted (ISO 8601)')),
  retryable: z.exactOptional(
    described(
      z.literal(true),
      'its last answer was transient: the next run of the schedule that sent it carries it forward',
    ),
  ),
  tooLargeToCarry: z.exactOptional(
    described(z.number().int(), 'its target (bytes of JSON) was over the store\u2019s cap: never carried forward'),
  ),
});

export const TargetStatusSchema = named(
  z.object({
    provider: z.string(),
    identity: z.string(),
    items: described(
      z.array(TargetItemSchema),
      'the item\u2019s last answer in each provider account that has it (usually one), newest first',
    ),
  }),
  'TargetStatus',
  'Where a product stands: its last state, code, message, when, and the sync that sent it.',
);
export type TargetStatus = z.infer<typeof TargetStatusSchema>;

/** The OpenAPI document itself: an object with at least its version, info and paths. */
export const OpenApiDocumentSchema = z.looseObject({
  openapi: z.string(),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

// The request bodies are the contracts' schemas, only named here.
named(SyncRequestSchema, 'SyncRequest', 'A sync request: a provider and its targets, inline or by reference.');
named(ResubmissionSchema, 'Resubmission', 'Corrected targets for rejections of an open sync.');

/**
 * What the HTTP request schemas say beyond what zod's JSON Schema carries, so the document states
 * what the server does: a sync request gives exactly one of `targets` and `targetsRef` (a zod
 * refinement, invisible to JSON Schema); its provider is one the server knows; an HTTP caller's
 * `targetsRef` is a URL, never a file; a key is printable text without spaces or slashes; a
 * duration given in milliseconds lies within its option's bounds. Applied to the generated
 * document (the input and output forms of the schema alike).
 */
export function exactRequestSchemas<T extends object>(
  doc: T,
  providers: readonly string[],
  durationLimits: Readonly<Record<string, { min: number; max: number }>>,
): T {
  type Schema = Record<string, unknown> & { properties?: Record<string, Schema>; anyOf?: Schema[] };
  const schemas = (doc as { components?: { schemas?: Record<string, Schema> } }).components?.schemas;
  for (const name of ['SyncRequest', 'SyncRequestInput']) {
    const schema = schemas?.[name];
    const props = schema?.properties;
    if (!schema || !props) continue;
    props.provider = { type: 'string', enum: [...providers], description: 'the provider to sync to' };
    schema.oneOf = [
      { required: ['targets'], description: 'targets inline' },
      { required: ['targetsRef'], description: 'targets by reference' },
    ];
    props.targetsRef = {
      type: 'object',
      properties: {
        url: {
          type: 'string',
          format: 'uri',
          pattern: '^https?://',
          description:
            'an http(s) URL of NDJSON, under a prefix of the operator\u2019s allowlist (CATALOG_SYNC_SOURCE_URLS)',
        },
      },
      required: ['url'],
      additionalProperties: false,
      description: 'where the targets are, one JSON target a line: over HTTP, a URL only (a caller names no file)',
    };
    if (props.key) {
      props.key = {
        ...props.key,
        pattern: '^[^\\s/\\u0000-\\u001f\\u007f-\\u009f]+$',
        description: 'an idempotency key: printable text without spaces, slashes or control characters',
      };
    }
    const options = props.options?.properties;
    for (const [field, { min, max }] of Object.entries(durationLimits)) {
      for (const branch of options?.[field]?.anyOf ?? []) {
        if (branch.type === 'integer') Object.assign(branch, { minimum: min, maximum: max });
      }
    }
  }
  return doc;
}

export const openApiInfo = {
  openapi: '3.1.0',
  info: {
    title: 'catalog-sync',
    version: '1.0.0',
    description:
      'Starts durable syncs of product-catalog changes to a provider, reports their status, takes ' +
      're-submissions of corrected targets and closes them, and says where each product stands. Every route but /healthz and /openapi.json ' +
      'wants `Authorization: Bearer <token>`.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer' } },
  },
  security: [{ bearer: [] }],
};

// ---- The answers must carry exactly what the contracts' types carry (checked by tsc). ----

type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
type Fits<Value, Schema extends z.ZodType> = Value extends z.input<Schema> ? true : false;
type Mirrors<Value, Schema extends z.ZodType> =
  SameKeys<Value, z.output<Schema>> extends true ? Fits<Value, Schema> : false;

const mirrors: [
  Mirrors<SyncReport, typeof SyncReportSchema>,
  Mirrors<Counts, typeof CountsSchema>,
  Mirrors<Rejection, typeof RejectionSchema>,
  Mirrors<Failure, typeof FailureSchema>,
  Mirrors<Warning, typeof WarningSchema>,
  Mirrors<RefusedItem, typeof RefusedItemSchema>,
  Mirrors<ProviderCall, typeof ProviderCallSchema>,
  Mirrors<ResubmissionAnswer, typeof ResubmissionAnswerSchema>,
  Mirrors<SyncReport['superseded'][number], typeof SupersededSchema>,
  Mirrors<NonNullable<SyncReport['rejectedElsewhere']>[number], typeof RejectedElsewhereSchema>,
  Mirrors<ReportOmissions, typeof OmissionsSchema>,
] = [true, true, true, true, true, true, true, true, true, true, true];
void mirrors;
