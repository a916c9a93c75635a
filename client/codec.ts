/**
 * An optional payload codec: AES-256-GCM over every payload (workflow inputs, results, signals,
 * queries, updates, activity arguments), so product data and prices are not readable in the
 * Temporal store. Keys come by ID from configuration; new payloads use the current key and old
 * ones decrypt with the key their metadata names, so keys rotate by adding one.
 *
 *   CATALOG_SYNC_CODEC_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"   (the first is current)
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const ENCODING = 'binary/encrypted';
const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CodecConfigError extends Error {
  override readonly name = 'CodecConfigError';
}

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
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, iv);
      const plain = proto.temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
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
      const data = Buffer.from(payload.data ?? []);
      const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return proto.temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/** The codec the environment asks for, or undefined when CATALOG_SYNC_CODEC_KEYS is not set. */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const raw = env.CATALOG_SYNC_CODEC_KEYS;
  if (!raw) return undefined;
  const keys = new Map<string, Buffer>();
  let current: string | undefined;
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const at = part.indexOf(':');
    const id = part.slice(0, at);
    const key = Buffer.from(part.slice(at + 1), 'base64');
    if (at <= 0 || key.length !== 32) {
      throw new CodecConfigError(
        'CATALOG_SYNC_CODEC_KEYS must be "id:<base64 of 32 bytes>" entries separated by commas (e.g. from `openssl rand -base64 32`)',
      );
    }
    keys.set(id, key);
    current ??= id;
  }
  if (current === undefined) throw new CodecConfigError('CATALOG_SYNC_CODEC_KEYS has no key');
  return new AesGcmCodec(keys, current);
}

/** Client and worker data converter options: the codec when configured, the default otherwise. */
export const dataConverterFromEnv = (env: NodeJS.ProcessEnv = process.env) => {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : undefined;
};
