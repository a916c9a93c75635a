/** The providers this build knows. Adding one: its adapter module, one line here, its simulator. */
import type { AnyProviderAdapter } from './adapter.ts';
import { insider } from './insider.ts';
import { octogen } from './octogen.ts';

export const providers: Record<string, AnyProviderAdapter> = {
  [octogen.name]: octogen,
  [insider.name]: insider,
};

export const providerNames = (): string[] => Object.keys(providers);

export function providerAdapter(name: string): AnyProviderAdapter | undefined {
  return Object.hasOwn(providers, name) ? providers[name] : undefined;
}
