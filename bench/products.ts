/**
 * The bench's sample data, cheap at any size: Octogen products shaped like the simulator's
 * makeOctogenProducts (a v4-format uuid, a url, the catalog), NDJSON target files written in
 * chunks, and a compactor for the simulator's request recordings.
 *
 * makeOctogenProducts hashes every uuid (sha256) and gives every product its own url: about 5 s
 * and 0.5 GB of heap per million products, and the simulator's index adds a second set of
 * normalized urls (another 0.25 GB per million). At 10 million that is more than Node's default
 * heap. Here a uuid is an integer mix (unique: its last group is the product's number) and the
 * products of a catalog share one url string, so the simulator indexes one url per catalog;
 * the bench only ever targets products by uuid.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { OctogenProduct } from '../simulators/octogen.ts';
import type { RecordedRequest } from '../simulators/faults.ts';

/** murmur3's 32-bit finalizer: a bijection on 32-bit integers. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function seedOf(catalog: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < catalog.length; i += 1) h = Math.imul(h ^ catalog.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The uuid is written here and read out as one flat string: a template literal would build a rope. */
const scratch = Buffer.alloc(36);

/** Writes the low `width` hex digits of `n` (an unsigned integer below 2^48) at `at`. */
function putHex(n: number, width: number, at: number): void {
  let x = n;
  for (let i = at + width - 1; i >= at; i -= 1) {
    scratch[i] = HEX[x % 16] ?? 0x30;
    x = Math.floor(x / 16);
  }
}

/**
 * The uuid of product `i` (0-based) of `catalog`: v4 format, lowercase, identical on every run.
 * Unique within a catalog (the last group is i + 1) and across catalogs (the first group mixes
 * the catalog's seed with i through a bijection).
 */
export function benchUuid(catalog: string, i: number): string {
  const seed = seedOf(catalog);
  const a = mix32(i ^ seed);
  const b = mix32(a ^ 0x9e3779b9);
  putHex(a, 8, 0);
  scratch[8] = 0x2d;
  putHex(b >>> 16, 4, 9);
  scratch[13] = 0x2d;
  scratch[14] = 0x34; // version 4
  putHex((b >>> 4) & 0xfff, 3, 15);
  scratch[18] = 0x2d;
  putHex(8 + (b & 3), 1, 19); // variant 8, 9, a or b
  putHex(mix32(b) & 0xfff, 3, 20);
  scratch[23] = 0x2d;
  putHex(i + 1, 12, 24);
  return scratch.toString('latin1');
}

const sharedUrls = new Map<string, string>();
const urlOf = (catalog: string): string => {
  let url = sharedUrls.get(catalog);
  if (url === undefined) {
    url = `https://${catalog}.com/products/bench`;
    sharedUrls.set(catalog, url);
  }
  return url;
};

/** Products `from` … `to - 1` of `catalog`. */
export function benchProducts(catalog: string, from: number, to: number): OctogenProduct[] {
  const url = urlOf(catalog);
  const out = new Array<OctogenProduct>(Math.max(0, to - from));
  for (let i = from; i < to; i += 1) out[i - from] = { catalog, uuid: benchUuid(catalog, i), url };
  return out;
}

/**
 * Writes products `from` … `to - 1` of `catalog` as NDJSON targets `{"uuid":…}`, in chunks; with
 * `versionOf`, each also carries `"version"` (what changed-only syncs compare for Octogen).
 */
export function writeTargetsFile(
  file: string,
  catalog: string,
  from: number,
  to: number,
  versionOf?: (i: number) => string,
): string {
  const CHUNK = 10_000;
  const fd = openSync(file, 'w');
  try {
    for (let start = from; start < to; start += CHUNK) {
      const end = Math.min(to, start + CHUNK);
      let text = '';
      for (let i = start; i < end; i += 1) {
        text += versionOf
          ? `{"uuid":"${benchUuid(catalog, i)}","version":"${versionOf(i)}"}\n`
          : `{"uuid":"${benchUuid(catalog, i)}"}\n`;
      }
      writeSync(fd, text);
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

/** The uuids an Octogen refresh body names (empty when the body is not one, or was compacted). */
export function bodyUuids(body: unknown): string[] {
  const targets = (body as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(targets)) return [];
  return targets.map((t) => String((t as { uuid?: unknown } | null)?.uuid ?? ''));
}

export interface Compactor {
  /** Looks at every record not yet seen, now. */
  flush(): void;
  /** Forget the position: call after the simulator's reset(). */
  restart(): void;
  stop(): void;
}

/**
 * Every `everyMs`, hands each new recorded request to `onRecord` (with its body), then replaces
 * the body by a one-line summary. A 10-million-target sync records 20,000 bodies of 500 parsed
 * targets; kept, they would hold ~1 GB of the bench's heap. `at`, `status` and the record count
 * are kept.
 */
export function compactRecordings(
  requests: RecordedRequest[],
  onRecord: (record: RecordedRequest) => void = () => undefined,
  everyMs = 250,
): Compactor {
  let seen = 0;
  const flush = () => {
    if (requests.length < seen) seen = 0; // the recordings were emptied in place
    for (; seen < requests.length; seen += 1) {
      const record = requests[seen];
      if (!record) continue;
      onRecord(record);
      const targets = (record.body as { targets?: unknown } | null)?.targets;
      if (Array.isArray(targets)) record.body = `[${targets.length} targets]`;
    }
  };
  const timer = setInterval(flush, everyMs);
  timer.unref();
  return {
    flush,
    restart: () => {
      seen = 0;
    },
    stop: () => {
      flush();
      clearInterval(timer);
    },
  };
}
