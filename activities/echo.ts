/**
 * What a report may show of a target read from a source line: only the fields the provider's
 * target has (its schema knows them), each cut short. A source line can hold anything a worker can
 * read (a file of secrets, a system file), so a line that is not a target shows nothing at all.
 */
import type { AnyProviderAdapter } from './providers/adapter.ts';

/** Longest string kept in an echo, in characters. */
export const ECHO_STRING_LIMIT = 200;
/** Most items of an array, or keys of an object, kept below a known field. */
const ECHO_ITEMS = 20;
const ECHO_DEPTH = 3;

/** The target fields a provider knows: its schema's shape, or an adapter's own list. */
export function knownFields(adapter: AnyProviderAdapter): readonly string[] {
  const own = (adapter as { knownFields?: readonly string[] }).knownFields;
  if (own) return own;
  const schema = adapter.targetSchema as unknown as {
    shape?: Record<string, unknown>;
    _zod?: { def?: { shape?: Record<string, unknown> } };
  };
  return Object.keys(schema.shape ?? schema._zod?.def?.shape ?? {});
}

const cut = (s: string, limit: number): string => (s.length > limit ? s.slice(0, limit) : s);

function clipValue(value: unknown, depth: number, limit: number): unknown {
  if (typeof value === 'string') return cut(value, limit);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (depth >= ECHO_DEPTH) return undefined;
  if (Array.isArray(value)) {
    return value
      .slice(0, ECHO_ITEMS)
      .map((v) => clipValue(v, depth + 1, limit))
      .filter((v) => v !== undefined);
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, ECHO_ITEMS)) {
      const c = clipValue(v, depth + 1, limit);
      if (c !== undefined) out[cut(k, limit)] = c;
    }
    return out;
  }
  return undefined;
}

/**
 * The echo of a target read from a source: its known fields only, strings cut to 200 characters,
 * within `maxBytes` of JSON (shorter cuts, then fewer fields, until it fits). Undefined when the
 * value is not an object: nothing of such a line is shown.
 */
export function echoKnownFields(adapter: AnyProviderAdapter, target: unknown, maxBytes: number): unknown | undefined {
  if (typeof target !== 'object' || target === null || Array.isArray(target)) return undefined;
  const source = target as Record<string, unknown>;
  const fields = knownFields(adapter).filter((f) => Object.hasOwn(source, f));
  for (const limit of [ECHO_STRING_LIMIT, 40]) {
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      const c = clipValue(source[f], 0, limit);
      if (c === undefined) continue;
      out[f] = c;
      if (JSON.stringify(out).length > maxBytes) delete out[f];
    }
    if (limit === 40 || Object.keys(out).length === fields.length) return out;
  }
  return undefined;
}
