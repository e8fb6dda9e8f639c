// Child processes of a benchmark: forked with an IPC command channel (or spawned), tracked by PID,
// stopped by PID at the end, SIGKILLed by an exit hook if anything is left. Every PID is also reported
// to bench/run.mjs (when it started us) so it can kill leftovers if this benchmark dies.
import { fork, spawn } from 'node:child_process';
import { sleep, withTimeout } from './common.mjs';

const OUTPUT_TAIL = 64 * 1024;
/** @type {Map<number, Child>} */
const live = new Map();

process.on('exit', () => {
  for (const pid of live.keys()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** Tells bench/run.mjs about a process we started, so it can kill it by PID if we die. */
export function reportPid(pid, name) {
  if (process.send && process.connected && pid) process.send({ type: 'pid', pid, name });
}

export class Child {
  constructor(name, child) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.text = '';
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Set();
    /** Unsolicited messages so far (the last 100), so a waitFor that starts late still sees them. */
    this.messages = [];
    const append = (chunk) => {
      this.text += chunk.toString();
      if (this.text.length > OUTPUT_TAIL) this.text = this.text.slice(-OUTPUT_TAIL);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      live.delete(this.pid);
      this.exitInfo = { code, signal };
      for (const { reject } of this.pending.values()) reject(new Error(`${name} exited (${code ?? signal}):\n${this.tail()}`));
      this.pending.clear();
      resolve(this.exitInfo);
    }));
    child.on('message', (message) => {
      if (message && message.id !== undefined && this.pending.has(message.id)) {
        const { resolve, reject } = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.ok) resolve(message);
        else reject(new Error(`${name}: ${message.error}`));
        return;
      }
      this.messages.push(message);
      if (this.messages.length > 100) this.messages.shift();
      for (const listener of this.listeners) listener(message);
    });
    live.set(this.pid, this);
    reportPid(this.pid, name);
  }

  get alive() {
    return this.exitInfo === undefined;
  }

  tail(lines = 30) {
    return this.text.split('\n').slice(-lines).join('\n');
  }

  /** Sends `{ id, cmd, ...args }` and resolves with the child's `{ id, ok: true, ... }` answer. */
  request(cmd, args = {}, timeoutMs = 30_000) {
    if (!this.alive) return Promise.reject(new Error(`${this.name} is not running:\n${this.tail()}`));
    const id = this.nextId++;
    const answer = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.child.send({ id, cmd, ...args });
    return withTimeout(answer, timeoutMs, `${this.name} ${cmd}`).catch((error) => {
      this.pending.delete(id);
      throw error;
    });
  }

  /** The first unsolicited message matching `match` (already received or still to come). */
  waitFor(match, timeoutMs, what) {
    const fatal = this.messages.find((message) => message?.fatal);
    if (fatal) return Promise.reject(new Error(`${this.name}: ${fatal.fatal}`));
    const early = this.messages.find(match);
    if (early) return Promise.resolve(early);
    return withTimeout(new Promise((resolve, reject) => {
      const listener = (message) => {
        if (message?.fatal) {
          this.listeners.delete(listener);
          reject(new Error(`${this.name}: ${message.fatal}`));
        } else if (match(message)) {
          this.listeners.delete(listener);
          resolve(message);
        }
      };
      this.listeners.add(listener);
      this.exited.then(() => reject(new Error(`${this.name} exited before ${what}:\n${this.tail()}`)));
    }), timeoutMs, `${this.name}: ${what}`);
  }

  /** Waits until `pattern` appears in the output. */
  async waitForOutput(pattern, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (!this.alive) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(20);
    }
  }

  /** `signal` (SIGTERM), then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5_000, signal = 'SIGTERM') {
    if (!this.alive) return;
    try { process.kill(this.pid, signal); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A node script with an IPC channel; stdout/stderr are captured (last 64 KiB). */
export function forkChild(name, file, { args = [], env = {}, execArgv = [] } = {}) {
  const child = fork(file, args, {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return new Child(name, child);
}

/** Any command without IPC; stdout/stderr are captured. */
export function spawnChild(name, command, args, { env = {} } = {}) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Child(name, child);
}

/** Stops every child still alive, in parallel. */
export async function stopAllChildren(graceMs = 5_000) {
  await Promise.all([...live.values()].map((child) => child.stop(graceMs)));
}

/**
 * The child side of the IPC channel: runs `handlers[cmd](message)` and answers `{ id, ok, ...result }`.
 * On disconnect (the benchmark went away) it runs `onExit` and exits.
 */
export function serveIpc(handlers, onExit = async () => {}) {
  if (!process.send) {
    console.error('start me with child_process.fork: IPC is my command channel');
    process.exit(2);
  }
  let exiting = false;
  const exit = async (code) => {
    if (exiting) return;
    exiting = true;
    try { await withTimeout(Promise.resolve().then(onExit), 8_000, 'cleanup'); } catch (error) { console.error(String(error)); }
    process.exit(code);
  };
  process.on('message', async (message) => {
    const { id, cmd } = message ?? {};
    try {
      if (cmd === 'exit') {
        process.send({ id, ok: true });
        await exit(0);
        return;
      }
      const handler = handlers[cmd];
      if (!handler) throw new Error(`unknown command ${JSON.stringify(cmd)}`);
      const result = await handler(message);
      if (process.connected) process.send({ id, ok: true, ...result });
    } catch (error) {
      if (process.connected) process.send({ id, ok: false, error: String(error?.stack ?? error) });
    }
  });
  process.on('disconnect', () => void exit(0));
  process.on('SIGTERM', () => void exit(0));
  process.on('SIGINT', () => void exit(0));
  return { exit, send: (message) => process.connected && process.send(message) };
}
