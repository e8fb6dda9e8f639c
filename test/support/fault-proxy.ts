// A TCP fault proxy for tests, on loopback only: put it between one process and one server (an app and an
// etcd member, a client and a gRPC server) and change what the wire does while traffic flows.
//   pass       forward both ways
//   cut        close every connection and refuse new ones (the listening socket is closed: ECONNREFUSED)
//   blackhole  accept, never answer: bytes are held, not forwarded, in both directions; nothing is closed.
//              Back to pass/delay, held bytes are delivered in order (as TCP would after a healed partition).
//   delay(ms)  forward every chunk ms later, in order, both directions
// setMode() applies to existing connections as well as new ones.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'cut' | 'blackhole' | { delayMs: number };

const LOOPBACK = '127.0.0.1';

export interface FaultProxyOptions {
  /** Port on 127.0.0.1 to forward to. */
  targetPort: number;
  /** Port to listen on; default a free one. */
  listenPort?: number;
  /** Initial mode; default pass. */
  mode?: FaultMode;
}

export interface FaultProxyStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections currently open (downstream side). */
  open: number;
  /** Connections refused or closed by a cut. */
  cut: number;
}

/** One direction of one connection: source -> sink, with a queue for delay and blackhole. */
class Pipe {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly source: Socket,
    private sink: Socket | undefined,
  ) {
    source.on('data', (chunk: Buffer) => this.push(chunk));
  }

  attach(sink: Socket): void {
    this.sink = sink;
    this.flush();
  }

  private push(chunk: Buffer): void {
    const delayMs = this.proxy.delayMs;
    this.queue.push({ chunk, due: Date.now() + delayMs });
    // Held bytes are bounded by the kernel buffers: stop reading while we cannot forward.
    if (this.proxy.mode === 'blackhole' || !this.sink) this.source.pause();
    this.flush();
  }

  /** Writes every queued chunk that is due, and schedules the next one. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const mode = this.proxy.mode;
    if (mode === 'cut' || !this.sink || this.sink.destroyed) return;
    if (mode === 'blackhole') {
      this.source.pause();
      return;
    }
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0].due <= now) this.sink.write(this.queue.shift()!.chunk);
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), this.queue[0].due - now);
    if (this.source.isPaused()) this.source.resume();
  }

  /** A new delay applies to what is queued too (nothing waits longer than the current delay). */
  retime(delayMs: number): void {
    const now = Date.now();
    for (const item of this.queue) item.due = Math.min(item.due, now + delayMs);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

class Connection {
  private upstream?: Socket;
  private readonly down: Pipe;
  private up?: Pipe;
  private closed = false;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly downstream: Socket,
  ) {
    downstream.setNoDelay(true);
    downstream.on('error', () => this.close()).on('close', () => this.close());
    this.down = new Pipe(proxy, downstream, undefined);
    // In blackhole the handshake completes but nothing reaches the target until the mode changes.
    if (proxy.mode !== 'blackhole') this.connectUpstream();
  }

  /** Called after every mode change. */
  update(): void {
    if (this.closed) return;
    if (this.proxy.mode === 'cut') {
      this.close();
      return;
    }
    if (!this.upstream && this.proxy.mode !== 'blackhole') this.connectUpstream();
    const delayMs = this.proxy.delayMs;
    this.down.retime(delayMs);
    this.up?.retime(delayMs);
    this.down.flush();
    this.up?.flush();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.down.dispose();
    this.up?.dispose();
    this.downstream.destroy();
    this.upstream?.destroy();
    this.proxy.forget(this);
  }

  private connectUpstream(): void {
    const upstream = connect(this.proxy.targetPort, LOOPBACK);
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => this.close()).on('close', () => this.close());
    this.up = new Pipe(this.proxy, upstream, this.downstream);
    this.down.attach(upstream);
  }
}

export class FaultProxy {
  private server?: Server;
  private current: FaultMode;
  private readonly connections = new Set<Connection>();
  private readonly counters = { accepted: 0, cut: 0 };
  private port = 0;

  private constructor(
    readonly targetPort: number,
    mode: FaultMode,
  ) {
    this.current = mode;
  }

  /** Starts listening on 127.0.0.1 (a free port unless `listenPort`). */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options.targetPort, options.mode ?? 'pass');
    proxy.port = options.listenPort ?? 0;
    if (proxy.current !== 'cut') await proxy.listen();
    else if (proxy.port === 0) throw new Error('FaultProxy: starting in cut mode needs a listenPort');
    return proxy;
  }

  /** Port the proxy listens on. */
  get listenPort(): number {
    return this.port;
  }

  /** `http://127.0.0.1:<port>`, for etcd hosts. */
  get endpoint(): string {
    return `http://${LOOPBACK}:${this.port}`;
  }

  /** `127.0.0.1:<port>`, for gRPC targets. */
  get address(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  get mode(): 'pass' | 'cut' | 'blackhole' | 'delay' {
    return typeof this.current === 'object' ? 'delay' : this.current;
  }

  get delayMs(): number {
    return typeof this.current === 'object' ? this.current.delayMs : 0;
  }

  get stats(): FaultProxyStats {
    return { accepted: this.counters.accepted, open: this.connections.size, cut: this.counters.cut };
  }

  async setMode(mode: FaultMode): Promise<void> {
    if (typeof mode === 'object' && !(Number.isFinite(mode.delayMs) && mode.delayMs >= 0)) {
      throw new Error(`FaultProxy: delayMs must be a number >= 0, got ${String(mode.delayMs)}`);
    }
    this.current = mode;
    if (mode === 'cut') {
      this.counters.cut += this.connections.size;
      for (const connection of [...this.connections]) connection.close();
      await this.unlisten();
      return;
    }
    for (const connection of [...this.connections]) connection.update();
    if (!this.server) await this.listen();
  }

  pass(): Promise<void> {
    return this.setMode('pass');
  }

  cut(): Promise<void> {
    return this.setMode('cut');
  }

  blackhole(): Promise<void> {
    return this.setMode('blackhole');
  }

  delay(ms: number): Promise<void> {
    return this.setMode({ delayMs: ms });
  }

  /** Closes every connection and stops listening for good. */
  async close(): Promise<void> {
    this.current = 'cut';
    for (const connection of [...this.connections]) connection.close();
    await this.unlisten();
  }

  /** @internal */
  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  private async listen(): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => {
      this.counters.accepted += 1;
      if (this.current === 'cut') {
        this.counters.cut += 1;
        socket.destroy();
        return;
      }
      this.connections.add(new Connection(this, socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Loopback only: nothing this proxy forwards ever leaves the machine.
      server.listen(this.port, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private async unlisten(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A proxy to `127.0.0.1:<targetPort>` (or to the port of an `http://127.0.0.1:<port>` endpoint). */
export function startFaultProxy(target: number | string, options: Omit<FaultProxyOptions, 'targetPort'> = {}): Promise<FaultProxy> {
  const targetPort = typeof target === 'number' ? target : Number(new URL(target).port);
  if (!Number.isInteger(targetPort) || targetPort <= 0) throw new Error(`FaultProxy: bad target ${String(target)}`);
  return FaultProxy.start({ ...options, targetPort });
}
