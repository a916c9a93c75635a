/**
 * Which URLs a sync may read its targets from. Callers are untrusted: a URL source must start with
 * one of the operator's prefixes (CATALOG_SYNC_SOURCE_URLS, comma-separated), and it never reaches
 * a loopback, link-local, private or otherwise internal address unless the matching prefix names
 * that address itself (an IP literal such as http://127.0.0.1:8080/; a host name, even localhost,
 * must resolve to public addresses only). The HTTP front
 * checks before anything starts; the worker checks again before it reads, and once more at connect
 * time on every address DNS gives (so a name that re-resolves to 127.0.0.1 is refused too).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net from 'node:net';
import { Agent } from 'undici';

export const SOURCE_URLS_VAR = 'CATALOG_SYNC_SOURCE_URLS';

interface AllowEntry {
  /** As the operator wrote it, for messages. */
  raw: string;
  protocol: string;
  host: string;
  port: string;
  /** The path prefix; always ends with "/" unless it names one document. */
  path: string;
  /** The entry names its host as an IP literal: that address is the operator's explicit choice. */
  namesInternalHost: boolean;
}

export class SourceConfigError extends Error {
  override readonly name = 'SourceConfigError';
}

const bare = (hostname: string): string => hostname.replace(/^\[|\]$/g, '').toLowerCase();

/** The operator's allowlist; an empty or unset variable allows no URL at all. */
export function sourceAllowlist(env: NodeJS.ProcessEnv): AllowEntry[] {
  const raw = env[SOURCE_URLS_VAR] ?? '';
  return raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((entry) => {
      let u: URL;
      try {
        u = new URL(entry);
      } catch {
        throw new SourceConfigError(
          `${SOURCE_URLS_VAR}: "${entry}" is not a URL prefix; list http(s) prefixes separated by commas, e.g. https://files.example.com/catalogs/`,
        );
      }
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
        throw new SourceConfigError(
          `${SOURCE_URLS_VAR}: "${entry}" must be a plain http(s) prefix without credentials, query or fragment`,
        );
      }
      const host = bare(u.hostname);
      return {
        raw: entry,
        protocol: u.protocol,
        host,
        port: u.port,
        path: u.pathname,
        namesInternalHost: net.isIP(host) !== 0,
      };
    });
}

const V4_BLOCKED: [string, number][] = [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const V6_BLOCKED: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['::', 96], // IPv4-compatible (deprecated)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];
const v4Blocked = new net.BlockList();
for (const [a, p] of V4_BLOCKED) v4Blocked.addSubnet(a, p, 'ipv4');
const v6Blocked = new net.BlockList();
for (const [a, p] of V6_BLOCKED) v6Blocked.addSubnet(a, p, 'ipv6');

/** The IPv4 address an IPv6 one carries (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16). */
function embeddedV4(ip: string): string | undefined {
  const lower = ip.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const words = expandV6(lower);
  if (!words) return undefined;
  const word = (i: number) => words[i] ?? 0;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  // ::ffff:0:0/96
  if (words.slice(0, 5).every((w) => w === 0) && word(5) === 0xffff) return v4(word(6), word(7));
  // 64:ff9b::/96
  if (word(0) === 0x64 && word(1) === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4(word(6), word(7));
  // 2002:AABB:CCDD::/48
  if (word(0) === 0x2002) return v4(word(1), word(2));
  return undefined;
}

function expandV6(ip: string): number[] | undefined {
  let text = ip;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = tail[1].split('.').map(Number);
    text = `${text.slice(0, -tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const part = (s: string) => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const left = part(head);
  const right = rest === undefined ? [] : part(rest);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (rest === undefined && fill !== 0)) return undefined;
  const words = [...left, ...Array<number>(fill).fill(0), ...right];
  return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

/** True for loopback, link-local, private, shared, reserved and multicast addresses, v4 or v6. */
export function isInternalAddress(ip: string): boolean {
  const address = bare(ip).replace(/%.*$/, ''); // zone index
  const family = net.isIP(address);
  if (family === 4) return v4Blocked.check(address, 'ipv4');
  if (family !== 6) return true; // not an address: never connect
  const v4 = embeddedV4(address);
  if (v4 !== undefined && net.isIPv4(v4) && v4Blocked.check(v4, 'ipv4')) return true;
  return v6Blocked.check(address, 'ipv6');
}

/** A URL as messages show it: no credentials, no query (either may hold a token). */
export const shownUrl = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(a malformed URL)';
  }
};

/** The allowlist entry a URL falls under, if any. */
function matchEntry(u: URL, entries: AllowEntry[]): AllowEntry | undefined {
  const host = bare(u.hostname);
  return entries.find(
    (e) =>
      e.protocol === u.protocol &&
      e.host === host &&
      e.port === u.port &&
      (u.pathname === e.path || u.pathname.startsWith(e.path.endsWith('/') ? e.path : `${e.path}/`)),
  );
}

export interface SourceUrlVerdict {
  /** Set when the URL may not be read: one line naming the setting and the fix. */
  refused?: string;
  /** The matching entry names the host itself: internal addresses allowed for it. */
  internalAllowed?: boolean;
}

/** Checks a URL against the allowlist and, for an IP literal, against the internal ranges. No I/O. */
export function judgeSourceUrl(url: string, env: NodeJS.ProcessEnv): SourceUrlVerdict {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { refused: 'targetsRef.url is not a URL; give an http(s) URL of NDJSON' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { refused: 'targetsRef.url must be http(s); give an http(s) URL of NDJSON' };
  }
  const entries = sourceAllowlist(env);
  const entry = matchEntry(u, entries);
  if (!entry) {
    return {
      refused:
        `targetsRef.url ${shownUrl(url)} is not on the operator's allowlist (${SOURCE_URLS_VAR}` +
        `${entries.length === 0 ? ' is not set' : `: ${entries.map((e) => e.raw).join(', ')}`}); ` +
        `send the targets inline, or a URL under a listed prefix (the operator adds prefixes to ${SOURCE_URLS_VAR})`,
    };
  }
  const host = bare(u.hostname);
  if (!entry.namesInternalHost && net.isIP(host) !== 0 && isInternalAddress(host)) {
    return { refused: internalRefusal(url, host) };
  }
  return { internalAllowed: entry.namesInternalHost };
}

const internalRefusal = (url: string, address: string): string =>
  `targetsRef.url ${shownUrl(url)} reaches the internal address ${address} (loopback, link-local or private); ` +
  `sources are never read from internal addresses unless ${SOURCE_URLS_VAR} names that host itself (e.g. http://${address}/)`;

type LookupAll = (hostname: string) => Promise<LookupAddress[]>;
const lookupAll: LookupAll = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

/**
 * The full check, DNS included: the allowlist, then every address the host resolves to. Returns
 * the refusal line, or undefined when the URL may be read. A name that does not resolve is left to
 * the reader (it fails there, retried), since the connect-time guard checks every address anyway.
 */
export async function refuseSourceUrl(
  url: string,
  env: NodeJS.ProcessEnv,
  resolve: LookupAll = lookupAll,
): Promise<string | undefined> {
  const verdict = judgeSourceUrl(url, env);
  if (verdict.refused !== undefined || verdict.internalAllowed) return verdict.refused;
  const host = bare(new URL(url).hostname);
  if (net.isIP(host) !== 0) return undefined;
  let addresses: LookupAddress[];
  try {
    addresses = await resolve(host);
  } catch {
    return undefined;
  }
  const internal = addresses.find((a) => isInternalAddress(a.address));
  return internal ? internalRefusal(url, internal.address) : undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that refuses internal addresses: every address DNS gives is checked
 * at the moment of connecting, so a name that resolved to a public address for the check and to
 * 127.0.0.1 for the connection (DNS rebinding) is still refused.
 */
export function guardedLookup(internalAllowed: (hostname: string) => boolean): net.LookupFunction {
  return (hostname, options, callback: LookupCallback): void => {
    dnsLookup(
      hostname,
      { ...(options.family !== undefined ? { family: options.family } : {}), all: true },
      (err, addresses) => {
        if (err) return callback(err, options.all ? [] : '', 0);
        const allowed = internalAllowed(bare(hostname));
        const bad = allowed ? undefined : addresses.find((a) => isInternalAddress(a.address));
        if (bad) {
          const refused: NodeJS.ErrnoException = new Error(
            `${hostname} resolves to the internal address ${bad.address}; sources are never read from internal addresses unless ${SOURCE_URLS_VAR} names that host itself`,
          );
          refused.code = 'ESOURCEREFUSED';
          return callback(refused, options.all ? [] : '', 0);
        }
        if (options.all) return callback(null, addresses);
        const first = addresses[0];
        if (!first)
          return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
        return callback(null, first.address, first.family);
      },
    );
  };
}

/** The dispatcher sources are read through: internal addresses refused at connect time. */
export function sourceDispatcher(env: NodeJS.ProcessEnv): Agent {
  const internalHosts = new Set(
    sourceAllowlist(env)
      .filter((e) => e.namesInternalHost)
      .map((e) => e.host),
  );
  return new Agent({ connect: { lookup: guardedLookup((host) => internalHosts.has(host)) } });
}
