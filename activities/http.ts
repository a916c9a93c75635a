/** The one place provider HTTP calls are made: undici, a timeout, and typed network failures. */
import { request, type Dispatcher } from 'undici';
import { networkFailure } from './failures.ts';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  ctx: {
    provider: string;
    title: string;
    dispatcher: Dispatcher | undefined;
    timeoutMs: number;
    signal: AbortSignal;
  },
): Promise<HttpAnswer> {
  try {
    const res = await request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...headers,
      },
      body,
      headersTimeout: ctx.timeoutMs,
      bodyTimeout: ctx.timeoutMs,
      signal: ctx.signal,
      ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}),
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, json };
  } catch (err) {
    throw networkFailure(ctx.provider, ctx.title, err);
  }
}
