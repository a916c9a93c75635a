/**
 * An optional payload codec: AES-256-GCM over every payload (workflow inputs, results, signals,
 * queries, updates, activity arguments), so product data and prices are not readable in the
 * Temporal store. Keys come by ID from configuration; new payloads use the current key and old
 * ones decrypt with the key their metadata names, so keys rotate by adding one.
 *
 *   CATALOG_SYNC_CODEC_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"   (the first is current)
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { CodecConfigError, codecKeysFromEnv, seal, unseal } from '../activities/codec-keys.ts';

export { CodecConfigError };

const ENCODING = 'binary/encrypted';

export class AesGcmCodec implements PayloadCodec {
  constructor(
    private readonly keys: Map<string, Buffer>,
    private readonly currentKeyId: string,
  ) {
    if (!keys.has(currentKeyId)) throw new CodecConfigError(`no key "${currentKeyId}" among the codec keys`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId) as Buffer;
    return payloads.map((payload) => {
      const plain = proto.temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = seal(key, plain);
      return {
        metadata: { encoding: Buffer.from(ENCODING), 'encryption-key-id': Buffer.from(this.currentKeyId) },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
      const key = this.keys.get(keyId);
      if (!key)
        throw new CodecConfigError(
          `payload encrypted with key "${keyId}", which is not configured: add it to CATALOG_SYNC_CODEC_KEYS`,
        );
      return proto.temporal.api.common.v1.Payload.decode(unseal(key, Buffer.from(payload.data ?? [])));
    });
  }
}

/** The codec the environment asks for, or undefined when CATALOG_SYNC_CODEC_KEYS is not set. */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const parsed = codecKeysFromEnv(env);
  return parsed ? new AesGcmCodec(parsed.keys, parsed.currentKeyId) : undefined;
}

/** Client and worker data converter options: the codec when configured, the default otherwise. */
export const dataConverterFromEnv = (env: NodeJS.ProcessEnv = process.env) => {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : undefined;
};
