/**
 * Error classification, in one place: every way a provider call can go wrong becomes an
 * ApplicationFailure whose type is a FailureType name. The retry policy in the workflow decides
 * what is retried by those names alone.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType, type ProviderFailureDetails } from '../contracts/errors.ts';

export function providerFailure(
  type: FailureType,
  details: ProviderFailureDetails,
  opts: { nextRetryDelayMs?: number; cause?: Error } = {},
): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: details.message,
    details: [details],
    ...(opts.nextRetryDelayMs !== undefined ? { nextRetryDelay: opts.nextRetryDelayMs } : {}),
    ...(opts.cause ? { cause: opts.cause } : {}),
  });
}

/** Retry-After as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Stable `code`s of undici and Node socket errors that mean the call may simply be tried again. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** A thrown error from undici (or the socket under it) as a typed, retryable network failure. */
export function networkFailure(provider: string, title: string, err: unknown): ApplicationFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  const causeCode = (e.cause as { code?: unknown } | undefined)?.code;
  const known = [code, causeCode].find((c): c is string => typeof c === 'string' && NETWORK_CODES.has(c));
  const what = known ?? (typeof code === 'string' ? code : e.name);
  return providerFailure(
    FailureType.ProviderNetworkError,
    {
      provider,
      code: what,
      message: `${title} could not be reached or its answer was cut short (${what}: ${e.message}); the call is retried`,
    },
    { cause: e },
  );
}

/**
 * The status codes every provider shares. Adapters handle their own special answers first
 * (Octogen's 400 with the answer shape, Insider's size errors) and fall back to this.
 */
export function statusFailure(
  provider: string,
  title: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: { code?: string; message?: string },
  hints: { auth: string },
): ApplicationFailure {
  const said = body.message ? `: ${body.message}` : '';
  const base = {
    provider,
    httpStatus: status,
    ...(body.code ? { code: body.code } : {}),
  };
  if (status === 429) {
    const wait = parseRetryAfter(headers['retry-after']);
    return providerFailure(
      FailureType.ProviderRateLimited,
      {
        ...base,
        message: `${title} answered 429${said}; retrying${wait !== undefined ? ` after ${wait} ms as Retry-After asks` : ' with backoff'}`,
      },
      wait !== undefined ? { nextRetryDelayMs: wait } : {},
    );
  }
  if (status === 401 || status === 403) {
    return providerFailure(FailureType.ProviderAuthError, {
      ...base,
      message: `${title} answered ${status}${said}. ${hints.auth}`,
    });
  }
  if (status === 413) {
    return providerFailure(FailureType.ProviderBatchTooLarge, {
      ...base,
      message: `${title} answered 413${said}; the batch is split`,
    });
  }
  if (status >= 500) {
    return providerFailure(FailureType.ProviderUnavailable, {
      ...base,
      message: `${title} answered ${status}${said}; retrying with backoff`,
    });
  }
  return providerFailure(FailureType.ProviderCallerError, {
    ...base,
    message: `${title} answered ${status}${said}; the request must change, so it is not retried`,
  });
}

/** Reads `{code, message}` from the error bodies providers send (`{error:{code,message}}` or flat). */
export function errorBody(parsed: unknown): {
  code?: string;
  message?: string;
} {
  if (typeof parsed !== 'object' || parsed === null) return {};
  const p = parsed as Record<string, unknown>;
  const inner = typeof p.error === 'object' && p.error !== null ? (p.error as Record<string, unknown>) : p;
  const out: { code?: string; message?: string } = {};
  if (typeof inner.code === 'string') out.code = inner.code;
  if (typeof inner.message === 'string') out.message = inner.message;
  return out;
}
