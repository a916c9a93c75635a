/**
 * The codec keys (CATALOG_SYNC_CODEC_KEYS), parsed once for every Node-side user: the payload
 * codec (temporal/codec.ts) and the spool, whose lines are sealed with the same current key.
 *
 *   CATALOG_SYNC_CODEC_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"   (the first is current)
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export class CodecConfigError extends Error {
  override readonly name = 'CodecConfigError';
}

export interface CodecKeys {
  keys: Map<string, Buffer>;
  /** The key new data is sealed with: the first one listed. */
  currentKeyId: string;
}

/** The keys the environment gives, or undefined when CATALOG_SYNC_CODEC_KEYS is not set. */
export function codecKeysFromEnv(env: NodeJS.ProcessEnv = process.env): CodecKeys | undefined {
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
  return { keys, currentKeyId: current };
}

export const ALGORITHM = 'aes-256-gcm';
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/** AES-256-GCM: iv, ciphertext, tag. */
export function seal(key: Buffer, plain: Uint8Array): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv);
  return Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** The inverse of seal; throws when the data was altered or the key is not the one it was sealed with. */
export function unseal(key: Buffer, data: Buffer): Buffer {
  const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
}
