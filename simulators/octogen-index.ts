/** The Octogen simulator's product index, and deterministic sample data to fill it. */
import { createHash } from 'node:crypto';

export interface OctogenProduct {
  uuid: string;
  url: string;
  catalog: string;
}

/** A v4-format uuid derived from a seed string, so sample data is identical on every run. */
export function deterministicUuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex').slice(0, 32).split('');
  hex[12] = '4';
  hex[16] = '89ab'[Number.parseInt(hex[16] ?? '0', 16) % 4] ?? '8';
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** `n` products of one catalog with urls `${urlBase}/p-001` …; urlBase defaults to https://CATALOG.com/products. */
export function makeOctogenProducts(catalog: string, n: number, urlBase?: string): OctogenProduct[] {
  const base = (urlBase ?? `https://${catalog}.com/products`).replace(/\/+$/, '');
  return Array.from({ length: n }, (_, i) => {
    const number = String(i + 1).padStart(3, '0');
    return { catalog, uuid: deterministicUuid(`${catalog}:${number}`), url: `${base}/p-${number}` };
  });
}

export const DEMO_OCTOGEN_KEY = 'demo-octogen-key';
export const RESTRICTED_OCTOGEN_KEY = 'restricted-key';
/** A url indexed in both demo catalogs, so a target without `catalog` is ambiguous for the demo key. */
export const SHARED_DEMO_URL = 'https://shared.example/products/1';

/**
 * Small deterministic sample: 'demo-octogen-key' is granted warrenlotas and northwind,
 * 'restricted-key' only northwind. It also holds the two targets of the contract's curl example.
 */
export function demoOctogenIndex(): { keys: Record<string, string[]>; products: OctogenProduct[] } {
  return {
    keys: {
      [DEMO_OCTOGEN_KEY]: ['warrenlotas', 'northwind'],
      [RESTRICTED_OCTOGEN_KEY]: ['northwind'],
    },
    products: [
      ...makeOctogenProducts('warrenlotas', 50),
      ...makeOctogenProducts('northwind', 50),
      {
        catalog: 'warrenlotas',
        uuid: '11111111-1111-4111-8111-111111111111',
        url: 'https://warrenlotas.com/products/new-drop',
      },
      { catalog: 'warrenlotas', uuid: deterministicUuid('shared:warrenlotas'), url: SHARED_DEMO_URL },
      { catalog: 'northwind', uuid: deterministicUuid('shared:northwind'), url: SHARED_DEMO_URL },
    ],
  };
}

/** Compares urls the way a browser would (host case, default port), nothing more. */
export function normalizeUrl(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : undefined;
}

interface CatalogEntries {
  uuids: Set<string>;
  urls: Set<string>;
}

export class OctogenIndex {
  readonly #catalogs = new Map<string, CatalogEntries>();

  constructor(products: readonly OctogenProduct[]) {
    for (const product of products) {
      let entries = this.#catalogs.get(product.catalog);
      if (!entries) {
        entries = { uuids: new Set(), urls: new Set() };
        this.#catalogs.set(product.catalog, entries);
      }
      entries.uuids.add(product.uuid.toLowerCase());
      const url = normalizeUrl(product.url);
      if (url === undefined) throw new Error(`product ${product.uuid} has an invalid url: ${product.url}`);
      entries.urls.add(url);
    }
  }

  hasUuid(catalog: string, uuid: string): boolean {
    return this.#catalogs.get(catalog)?.uuids.has(uuid.toLowerCase()) ?? false;
  }

  /** `url` must already be normalized. */
  hasUrl(catalog: string, url: string): boolean {
    return this.#catalogs.get(catalog)?.urls.has(url) ?? false;
  }
}
