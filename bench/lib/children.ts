/**
 * Child processes of the HTTP benchmark: started pinned to CPUs with
 * `taskset`, each in its own process group (so a whole group can be timed and
 * stopped), and all stopped when the benchmark ends, fails or is interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** Children run from the repository root, wherever the benchmark was started. */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

const live = new Set<ChildProcess>();
const TAIL_BYTES = 4096;

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** The last few KiB of stdout and stderr together. */
  tail(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** All of stdout, when `collectStdout` was asked for. */
  stdout(): string;
}

export interface SpawnOptions {
  /** CPU list for `taskset -c`, e.g. '0'; undefined: not pinned. */
  cpus?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Keep all of stdout (for children that answer with JSON), not just its tail. */
  collectStdout?: boolean;
  /** Written to stdin, which is then closed. */
  stdin?: string;
  /** Called with each chunk of stdout. */
  onStdout?: (chunk: string) => void;
}

/** Starts `argv` (argv[0] is the program), pinned to `cpus`, in a new process group. */
export function startChild(argv: readonly string[], options: SpawnOptions = {}): Child {
  const command = options.cpus === undefined ? [...argv] : ['taskset', '-c', options.cpus, ...argv];
  const proc = spawn(command[0] as string, command.slice(1), {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
    // Its own process group (pgid = pid): taskset execs the program, so the
    // pid is the server's, and the group holds everything it starts.
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${command.join(' ')}`);
  live.add(proc);
  let tail = '';
  let stdout = '';
  const keep = (chunk: string) => {
    tail = (tail + chunk).slice(-TAIL_BYTES);
  };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    keep(chunk);
    if (options.collectStdout) stdout += chunk;
    options.onStdout?.(chunk);
  });
  proc.stderr!.setEncoding('utf8').on('data', keep);
  proc.stdin!.on('error', () => {}); // a child that exits early closes its stdin
  proc.stdin!.end(options.stdin ?? '');
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? signal ?? 'unknown');
    });
    proc.once('error', (error) => {
      live.delete(proc);
      tail += `\n${error.message}`;
      resolve('spawn-error');
    });
  });
  return { proc, pid: proc.pid, tail: () => tail.trim(), exited, stdout: () => stdout };
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-proc.pid, signal); // the child's own group, which it leads
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM to the child's group; SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(child: Child, graceMs = 5000): Promise<void> {
  if (!live.has(child.proc)) return;
  signalGroup(child.proc, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child.proc, 'SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
  // Anything it left behind in its group.
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // none left
  }
}

function killAllNow(): void {
  for (const proc of live) signalGroup(proc, 'SIGKILL');
}

let installed = false;
/** Kills every child on exit, and on SIGINT/SIGTERM before exiting. Idempotent. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => {
      killAllNow();
      process.exit(code);
    });
  }
}

/** Waits for a child that is meant to finish on its own; kills it after `timeoutMs`. */
export async function waitForChild(child: Child, timeoutMs: number): Promise<number | string> {
  const timer = setTimeout(() => signalGroup(child.proc, 'SIGKILL'), timeoutMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a TypeScript script of bench/lib (through tsx) as a child pinned to
 * `cpus`, with `input` as JSON on its stdin and `args` on its command line,
 * and parses the JSON object on the last line of its stdout. Throws with
 * the tail of its output when it fails, prints no JSON, or outlives
 * `timeoutMs` (it is then killed). `what` names it in the error.
 */
export async function runJsonChild<T>(
  script: string,
  options: { cpus: string | undefined; input?: unknown; args?: string[]; timeoutMs: number; what: string },
): Promise<T> {
  const child = startChild([process.execPath, '--import', 'tsx', script, ...(options.args ?? [])], {
    cpus: options.cpus,
    stdin: options.input === undefined ? '' : JSON.stringify(options.input),
    collectStdout: true,
  });
  const code = await waitForChild(child, options.timeoutMs);
  const line = child.stdout().trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`${options.what} failed (${code}): ${child.tail().slice(-800)}`);
  return JSON.parse(line) as T;
}
