/**
 * An account-wide request budget shared by the provider simulators: at most `perMinute` admitted
 * requests per sliding 60 s window. Each simulator decides where in its checks to ask and how its
 * 429 looks; this module only counts.
 */
import type { RecordedRequest } from './faults.ts';
import type { SimServer } from './http.ts';

export const BUDGET_WINDOW_MS = 60_000;

/** The state of the window after a request was asked about. Seconds are whole, rounded up, at least 1. */
export type Admission =
  | {
      admitted: true;
      limit: number;
      /** Slots left after this request. */
      remaining: number;
      /** Seconds until the oldest admitted request leaves the window (a slot frees). */
      resetSeconds: number;
    }
  | { admitted: false; limit: number; remaining: 0; retryAfter: number };

/** Throws unless `perMinute` is a positive integer or Infinity (off). */
export function checkRequestsPerMinute(perMinute: number): void {
  if (!(perMinute === Number.POSITIVE_INFINITY || (Number.isInteger(perMinute) && perMinute >= 1))) {
    throw new RangeError(`requestsPerMinute must be a positive integer or Infinity, got ${perMinute}`);
  }
}

/**
 * Sliding 60 s window over the admitted requests. It follows the recordings: when they are
 * emptied (reset() or POST /_sim/reset), the window and the 429 count start over too.
 */
export class RequestBudget {
  readonly #perMinute: number;
  readonly #recordings: () => readonly RecordedRequest[];
  /** Admission times, oldest first; never more than #perMinute within the window. */
  #admitted: number[] = [];
  #rateLimited = 0;
  /** The first recorded request when the budget last looked: a different one means the recordings were reset. */
  #epoch: RecordedRequest | undefined;

  constructor(perMinute: number, recordings: () => readonly RecordedRequest[]) {
    checkRequestsPerMinute(perMinute);
    this.#perMinute = perMinute;
    this.#recordings = recordings;
  }

  /** False when the budget is Infinity: every request is admitted and nothing is counted. */
  get enabled(): boolean {
    return this.#perMinute !== Number.POSITIVE_INFINITY;
  }

  /** How many requests the budget refused. */
  get rateLimited(): number {
    this.#followReset();
    return this.#rateLimited;
  }

  /** Admits a request at `now` (epoch ms), or says how many whole seconds until a slot frees. */
  admit(now: number): Admission {
    this.#followReset();
    const limit = this.#perMinute;
    if (!this.enabled) return { admitted: true, limit, remaining: limit, resetSeconds: 0 };
    while (this.#admitted[0] !== undefined && this.#admitted[0] <= now - BUDGET_WINDOW_MS) this.#admitted.shift();
    const oldest = this.#admitted[0];
    if (oldest !== undefined && this.#admitted.length >= limit) {
      this.#rateLimited += 1;
      return { admitted: false, limit, remaining: 0, retryAfter: secondsUntil(oldest + BUDGET_WINDOW_MS, now) };
    }
    this.#admitted.push(now);
    const first = this.#admitted[0] ?? now;
    return {
      admitted: true,
      limit,
      remaining: limit - this.#admitted.length,
      resetSeconds: secondsUntil(first + BUDGET_WINDOW_MS, now),
    };
  }

  /** Empties the window and the 429 count. */
  clear(): void {
    this.#admitted = [];
    this.#rateLimited = 0;
    this.#epoch = this.#recordings()[0];
  }

  #followReset(): void {
    if (this.#recordings()[0] !== this.#epoch) this.clear();
  }
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/**
 * `Retry-After` (refusals only) and `X-RateLimit-Limit/-Remaining/-Reset` (Reset in seconds, like
 * the simulators' injected 429s). Empty when the budget is off.
 */
export function rateLimitHeaders(admission: Admission): Record<string, string> {
  if (admission.limit === Number.POSITIVE_INFINITY) return {};
  const reset = admission.admitted ? admission.resetSeconds : admission.retryAfter;
  return {
    ...(admission.admitted ? {} : { 'retry-after': String(admission.retryAfter) }),
    'x-ratelimit-limit': String(admission.limit),
    'x-ratelimit-remaining': String(admission.remaining),
    'x-ratelimit-reset': String(reset),
  };
}

/** A simulator's public face: its server, with the budget counted and reset alongside. */
export function budgetedSimulator(server: SimServer, budget: RequestBudget) {
  return {
    url: server.url,
    faults: server.faults,
    requests: server.requests,
    get rateLimited() {
      return budget.rateLimited;
    },
    reset() {
      server.reset();
      budget.clear();
    },
    close: () => server.close(),
  };
}
