// The fault proxy itself, against an echo server: each mode, on new and on existing connections.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { sleep, timed, waitFor } from '../support/wait.js';

let echo: Server;
let echoPort: number;
const sockets = new Set<Socket>();
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  echo = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket)).on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
});

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  for (const socket of sockets) socket.destroy();
});

afterAll(() => new Promise<void>((resolve) => echo.close(() => resolve())));

async function proxy(): Promise<FaultProxy> {
  const started = await startFaultProxy(echoPort);
  proxies.push(started);
  return started;
}

/** A client socket that collects what it receives and when it closed. */
interface Peer {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

function open(port: number): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const whenClosed = new Promise<void>((done) =>
      socket.on('close', () => {
        closed = true;
        done();
      }),
    );
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve({ socket, received: () => text, closed: whenClosed, isClosed: () => closed });
    });
    socket.once('error', reject);
  });
}

/** Milliseconds until the peer has received exactly `expected`. */
async function waitForText(peer: Peer, expected: string, timeoutMs = 2_000): Promise<number> {
  const exactly = (): boolean => {
    if (peer.received() !== expected) throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(peer.received())}`);
    return true;
  };
  return (await timed(() => waitFor(exactly, timeoutMs, { intervalMs: 5, what: 'the echoed text' }))).ms;
}

describe('fault proxy', () => {
  it('pass: forwards both ways, loopback only', async () => {
    const p = await proxy();
    expect(p.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const peer = await open(p.listenPort);
    peer.socket.write('hello');
    await waitForText(peer, 'hello');
    expect(p.stats).toMatchObject({ accepted: 1, open: 1 });
  });

  it('cut: closes existing connections and refuses new ones; pass again accepts on the same port', async () => {
    const p = await proxy();
    const port = p.listenPort;
    const peer = await open(port);
    await p.cut();
    await peer.closed;
    await expect(open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await p.pass();
    expect(p.listenPort).toBe(port);
    const again = await open(port);
    again.socket.write('back');
    await waitForText(again, 'back');
  });

  it('blackhole: holds bytes both ways without closing, on existing and new connections; pass delivers them in order', async () => {
    const p = await proxy();
    const existing = await open(p.listenPort);
    existing.socket.write('a');
    await waitForText(existing, 'a');
    await p.blackhole();
    existing.socket.write('b');
    existing.socket.write('c');
    const fresh = await open(p.listenPort); // the handshake completes: a blackhole, not a refusal
    fresh.socket.write('x');
    await sleep(300);
    expect(existing.received()).toBe('a');
    expect(fresh.received()).toBe('');
    expect(existing.isClosed()).toBe(false);
    expect(fresh.isClosed()).toBe(false);
    await p.pass();
    await waitForText(existing, 'abc');
    await waitForText(fresh, 'x');
  });

  it('blackhole also holds the answers of the server (the other direction)', async () => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      const timer = setInterval(() => socket.write('t'), 20);
      socket.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const p = await startFaultProxy((server.address() as AddressInfo).port);
      proxies.push(p);
      const peer = await open(p.listenPort);
      await sleep(100);
      await p.blackhole();
      const before = peer.received().length;
      await sleep(200);
      expect(peer.received().length).toBe(before);
      await p.pass();
      await sleep(200);
      expect(peer.received().length).toBeGreaterThan(before + 5);
    } finally {
      server.close();
    }
  });

  it('delay: adds the delay in each direction, keeps order, and applies to an existing connection', async () => {
    const p = await proxy();
    const peer = await open(p.listenPort);
    peer.socket.write('0');
    const fast = await waitForText(peer, '0');
    expect(fast).toBeLessThan(100);
    await p.delay(150);
    const started = performance.now();
    for (let index = 1; index <= 9; index++) peer.socket.write(String(index));
    await waitForText(peer, '0123456789', 3_000);
    const roundTrip = performance.now() - started;
    expect(roundTrip).toBeGreaterThanOrEqual(290); // 150 ms each way
    expect(roundTrip).toBeLessThan(1_000);
    await p.pass();
    peer.socket.write('!');
    expect(await waitForText(peer, '0123456789!')).toBeLessThan(100);
  });

  it('rejects a bad delay', async () => {
    const p = await proxy();
    await expect(p.setMode({ delayMs: -1 })).rejects.toThrow(/delayMs/);
  });
});
