/** The Insider simulator's sample catalog: deterministic item keys and the demo partner. */

export const DEMO_INSIDER_PARTNER = 'demo-partner';
export const DEMO_INSIDER_TOKEN = 'demo-insider-token';

/** `n` catalog keys `${prefix}-00001:${locale}` …, identical on every run. */
export function makeInsiderItems(n: number, locale = 'en_US', prefix = 'sku'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(5, '0')}:${locale}`);
}

export interface InsiderDemoCatalog {
  partnerName: string;
  token: string;
  items: string[];
  productAttributes: string[];
}

/**
 * Small deterministic sample for 'demo-partner': sku-00001…sku-00030 in en_US, the first ten of
 * them also in tr_TR, and the two items of the contract's sample requests (2159967, Item-123).
 * Only 'material' and 'season' are defined product attributes, so the contract's `stock_code`
 * sample gets its warning.
 */
export function demoInsiderCatalog(): InsiderDemoCatalog {
  return {
    partnerName: DEMO_INSIDER_PARTNER,
    token: DEMO_INSIDER_TOKEN,
    items: [...makeInsiderItems(30), ...makeInsiderItems(10, 'tr_TR'), '2159967:en_US', 'Item-123:en_US'],
    productAttributes: ['material', 'season'],
  };
}
