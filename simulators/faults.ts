/**
 * Provider-independent fault injection and request recording for the HTTP simulators.
 * Nothing here knows about a particular provider: provider-specific answers (default error
 * bodies, what "reject-transient" means) live in each simulator.
 */
import { z } from 'zod';

export type Fault =
  /** Answer with this status instead of the real answer (default body chosen by the simulator). */
  | { kind: 'status'; status: number; retryAfter?: string; body?: unknown }
  /** Wait, then answer normally. */
  | { kind: 'delay'; ms: number }
  /** Destroy the socket before any response bytes: the request may or may not have landed. */
  | { kind: 'reset' }
  /** Answer normally but send only half the body, then destroy the socket. */
  | { kind: 'truncate' }
  /** Answer normally, but reject the first `count` (default: all) would-be-accepted items with `code`. */
  | { kind: 'reject-transient'; code: string; count?: number };

export type FaultKind = Fault['kind'];

/** One request to a simulator's API path. The API key itself is never stored, only whether it was valid. */
export interface RecordedRequest {
  /** Epoch milliseconds when the request arrived. */
  at: number;
  method: string;
  path: string;
  keyValid: boolean;
  /** Parsed JSON, or the raw text when it did not parse. */
  body: unknown;
  /** Status sent; 0 until answered, and stays 0 when the socket was reset. */
  status: number;
  /** Label of the injected fault, e.g. "status:503", "reset", "reject-transient:temporarily_unavailable". */
  fault?: string;
}

export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case 'status':
      return `status:${fault.status}`;
    case 'delay':
      return `delay:${fault.ms}`;
    case 'reject-transient':
      return `reject-transient:${fault.code}`;
    case 'reset':
    case 'truncate':
      return fault.kind;
  }
}

/** Zod schema for faults sent over HTTP (`POST /_sim/faults`). */
export const FaultSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('status'),
    status: z.int().min(100).max(599),
    // Accept a number too: it is what a developer naturally types for seconds.
    retryAfter: z
      .union([z.string(), z.number()])
      .transform((v) => String(v))
      .exactOptional(),
    body: z.unknown().exactOptional(),
  }),
  z.strictObject({ kind: z.literal('delay'), ms: z.int().min(0).max(600_000) }),
  z.strictObject({ kind: z.literal('reset') }),
  z.strictObject({ kind: z.literal('truncate') }),
  z.strictObject({
    kind: z.literal('reject-transient'),
    code: z.string().min(1),
    count: z.int().min(0).exactOptional(),
  }),
]);

/** Bodies of `POST /_sim/faults`: a script, or a random rate. */
export const ScriptControlSchema = z.strictObject({ script: z.array(FaultSchema.nullable()) });
export const RateControlSchema = z.strictObject({
  rate: z.number().min(0).max(1),
  faults: z.union([FaultSchema, z.array(FaultSchema).min(1)]),
  seed: z.int().exactOptional(),
});
export type FaultControl = z.infer<typeof ScriptControlSchema> | z.infer<typeof RateControlSchema>;

/** Picks the schema by shape first, so errors name the real problem rather than "no union matched". */
export function parseFaultControl(json: unknown): z.ZodSafeParseResult<FaultControl> {
  const isScript = typeof json === 'object' && json !== null && 'script' in json;
  return isScript ? ScriptControlSchema.safeParse(json) : RateControlSchema.safeParse(json);
}

/** mulberry32: tiny seeded PRNG so random fault runs are reproducible. Returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEFAULT_SEED = 0x5eed;

interface RateConfig {
  probability: number;
  faults: Fault[];
  random: () => number;
}

/**
 * Decides the fault for each request: first the scripted faults in order (null = answer normally),
 * then, once the script has run out, random faults at the configured rate.
 */
export class FaultInjector {
  #script: (Fault | null)[] = [];
  #rate: RateConfig | undefined;

  /** Replaces the script; each request consumes one entry. */
  script(...faults: (Fault | null)[]): void {
    this.#script = [...faults];
  }

  /** Random faults with the given probability per request, picked uniformly from `fault`. */
  rate(probability: number, fault: Fault | Fault[], seed: number = DEFAULT_SEED): void {
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError(`fault rate must be within [0, 1], got ${probability}`);
    }
    const faults = Array.isArray(fault) ? [...fault] : [fault];
    if (faults.length === 0) throw new RangeError('fault rate needs at least one fault');
    this.#rate = { probability, faults, random: seededRandom(seed) };
  }

  /** Applies a control message received over HTTP. */
  apply(control: FaultControl): void {
    if ('script' in control) this.script(...control.script);
    else this.rate(control.rate, control.faults, control.seed);
  }

  clear(): void {
    this.#script = [];
    this.#rate = undefined;
  }

  /** Scripted entries not yet consumed. */
  get pending(): number {
    return this.#script.length;
  }

  next(): Fault | null {
    if (this.#script.length > 0) return this.#script.shift() ?? null;
    const rate = this.#rate;
    if (!rate || rate.random() >= rate.probability) return null;
    const index = Math.floor(rate.random() * rate.faults.length);
    return rate.faults[index] ?? null;
  }
}
