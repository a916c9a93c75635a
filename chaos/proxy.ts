/**
 * A TCP proxy on the loopback that a chaos scenario cuts and restores: between a worker and the
 * Temporal server, or between a worker and a provider simulator. `cut()` destroys every open
 * connection and refuses new ones (reset at once) until `restore()`.
 */
import net from 'node:net';

export interface Proxy {
  /** host:port to give the client instead of the target's. */
  address: string;
  port: number;
  cut(): void;
  restore(): void;
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startProxy(targetHost: string, targetPort: number): Promise<Proxy> {
  const open = new Set<net.Socket>();
  let down = false;
  let cuts = 0;
  const server = net.createServer((inbound) => {
    if (down) {
      inbound.resetAndDestroy();
      return;
    }
    const outbound = net.connect(targetPort, targetHost);
    open.add(inbound).add(outbound);
    const drop = () => {
      open.delete(inbound);
      open.delete(outbound);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    cut() {
      down = true;
      cuts += 1;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    restore() {
      down = false;
    },
    get cuts() {
      return cuts;
    },
    async close() {
      down = true;
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** host and port of an http://host:port URL or a host:port address. */
export function hostPort(address: string): { host: string; port: number } {
  const u = new URL(address.includes('://') ? address : `tcp://${address}`);
  return { host: u.hostname, port: Number(u.port) };
}
