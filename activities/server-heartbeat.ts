/**
 * Heartbeats a lane waits for the server to have. The SDK's `heartbeat()` never says whether the
 * server got it: a lane cut off from the server went on calling the provider, the server timed
 * its attempt out, and the retry sent again everything after the last heartbeat that got through
 * (up to a whole run). A lane that waits for its last progress to be on the server before its
 * next call re-sends at most the batch in flight, whether its worker dies or loses the server.
 *
 * All of a run's heartbeats go this one way, in order: a fire-and-forget SDK heartbeat sent beside
 * them could land after a newer one and move the server's record back.
 */
import type { Context } from '@temporalio/activity';
import {
  ActivityCancelledError,
  ActivityNotFoundError,
  ActivityPausedError,
  ActivityResetError,
  type Client,
} from '@temporalio/client';

/** One heartbeat RPC's deadline: a cut link shows as a timeout, and the lane asks again. */
const RPC_DEADLINE_MS = 2_000;
const RETRY_MS = 250;
/** Without a heartbeat timeout on the activity, how long a lane keeps asking before it gives up. */
const DEFAULT_GIVE_UP_MS = 60_000;

export interface ServerHeartbeat {
  /**
   * Resolves once the server has `details`; rejects when this attempt is over (the server timed it
   * out, or it was cancelled, paused or reset), or the server could not be reached for longer than
   * the heartbeat timeout (by then it has timed the attempt out).
   */
  confirm(details: unknown): Promise<void>;
  /** Liveness between calls: sent without waiting, skipped while another is on its way. */
  beat(details: unknown): void;
}

/** Attempt-is-over answers: asking again cannot help, and the run must stop sending. */
const isFinal = (err: unknown) =>
  err instanceof ActivityNotFoundError ||
  err instanceof ActivityCancelledError ||
  err instanceof ActivityPausedError ||
  err instanceof ActivityResetError;

export function serverHeartbeat(ctx: Context): ServerHeartbeat {
  let client: Client | undefined;
  try {
    client = ctx.client;
  } catch {
    // A test's MockActivityEnvironment has no client: its heartbeats are the SDK's own.
    client = undefined;
  }
  const giveUpMs = ctx.info.heartbeatTimeoutMs ?? DEFAULT_GIVE_UP_MS;
  let chain: Promise<void> = Promise.resolve();
  let inFlight = 0;
  let over: unknown;

  async function deliver(details: unknown): Promise<void> {
    if (over !== undefined) throw over;
    if (client === undefined) {
      ctx.heartbeat(details);
      return;
    }
    const c = client;
    const since = Date.now();
    for (;;) {
      try {
        await c.withDeadline(Date.now() + RPC_DEADLINE_MS, () => c.activity.heartbeat(ctx.info.taskToken, details));
        return;
      } catch (err) {
        if (isFinal(err) || Date.now() - since >= giveUpMs) {
          over ??= err;
          throw err;
        }
        // The server is out of reach (or slow): the lane waits, sending nothing, and asks again.
        await ctx.sleep(RETRY_MS);
      }
    }
  }

  const send = (details: unknown): Promise<void> => {
    inFlight += 1;
    const sent = chain.then(() => deliver(details));
    chain = sent.then(
      () => {
        inFlight -= 1;
      },
      () => {
        inFlight -= 1;
      },
    );
    return sent;
  };

  return {
    confirm: send,
    beat: (details) => {
      // A failure is kept in `over`: the next confirm throws it.
      if (inFlight === 0) send(details).catch(() => undefined);
    },
  };
}
