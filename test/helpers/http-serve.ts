/**
 * `weir serve` as a child process: spawned from dist/cli/weir.js with a clean
 * WEIR_* environment, its stdout and stderr collected, lines awaited.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { resolve } from 'node:path';

export const WEIR_CLI = resolve(__dirname, '..', '..', 'dist', 'cli', 'weir.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class WeirProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';
  private exit: Exit | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(args: string[], env: Record<string, string> = {}) {
    // The parent's WEIR_* settings must not leak into the options under test.
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('WEIR_')));
    this.child = spawn(process.execPath, [WEIR_CLI, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
      this.notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
      this.notify();
    });
    this.exited = new Promise((done) =>
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        done(this.exit);
      }),
    );
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Resolves with the first match of `pattern` in stdout; rejects if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern}`)), timeoutMs);
      const finish = (error: Error | null, match?: RegExpMatchArray) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(new Error(`${error.message}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        else resolvePromise(match as RegExpMatchArray);
      };
      const check = () => {
        const match = this.stdout.match(pattern);
        if (match) finish(null, match);
        else if (this.exit) finish(new Error(`weir exited (code ${this.exit.code}, signal ${this.exit.signal}) before printing ${pattern}`));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Stops it by force if it still runs (cleanup after a failed test). */
  kill(): void {
    if (this.exit === null && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

export interface Serving {
  weir: WeirProcess;
  port: number;
  metricsPort: number | null;
  base: string;
}

/** Spawns `weir serve` and waits for its "listening" line. */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<Serving> {
  const weir = new WeirProcess(['serve', ...args], env);
  try {
    const [, host, port] = await weir.waitForOutput(/HTTP listening on http:\/\/([^\s:]+):(\d+)/);
    const metrics = weir.stdout.match(/metrics on http:\/\/[^\s:]+:(\d+)\/metrics/);
    return { weir, port: Number(port), metricsPort: metrics ? Number(metrics[1]) : null, base: `http://${host}:${port}` };
  } catch (error) {
    weir.kill();
    throw error;
  }
}

/** Runs `weir` to completion (for the start-up failures). */
export async function runWeir(args: string[], env: Record<string, string> = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const weir = new WeirProcess(args, env);
  const exit = await weir.exited;
  return { ...exit, stdout: weir.stdout, stderr: weir.stderr };
}

/** A TCP server on 127.0.0.1 holding a port, so that others cannot bind it. */
export async function occupyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as net.AddressInfo;
  return { port, close: () => new Promise<void>((done) => server.close(() => done())) };
}

/** Resolves with the error code of a TCP connection attempt ('' when it connected). */
export function tryConnect(port: number): Promise<string> {
  return new Promise((done) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done('');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}
