/**
 * The servers the HTTP benchmark drives. Adding one is one entry in SERVERS:
 * how to start it on given ports, and which scenarios it serves.
 */
import { createServer } from 'node:net';

import { type Child, startChild, stopChild } from './children.js';
import type { ScenarioName } from './scenarios.js';

/** Port numbers as command-line text. */
export interface Ports {
  http: string;
  metrics: string;
  /** Weir's gRPC port (other servers ignore it). */
  grpc: string;
}

/** Placeholders for a command shown in a report. */
export const PORT_PLACEHOLDERS: Ports = { http: '<http-port>', metrics: '<metrics-port>', grpc: '<grpc-port>' };

export interface ServerSpec {
  name: string;
  /** Used in the skip note: "<label> did not start: ...". */
  label: string;
  /** argv (argv[0] the program), run from the repository root. */
  command(ports: Ports): string[];
  scenarios: ScenarioName[];
  /** Serves Prometheus metrics with weir_batch_size_rows on ports.metrics at /metrics. */
  metrics: boolean;
}

const node = process.execPath;
const tsx = ['--import', 'tsx'];
/** Weir's CLI; BENCH_WEIR_CLI points the benchmark at another build (or a stand-in). */
const weirCli = process.env.BENCH_WEIR_CLI || 'dist/cli/weir.js';

export const SERVERS: ServerSpec[] = [
  {
    name: 'weir',
    label: 'weir serve',
    command: (p) => [
      node, weirCli, 'serve', '--model-repository', 'models',
      '--http-port', p.http, '--grpc-port', p.grpc, '--metrics-port', p.metrics,
    ],
    scenarios: ['tabular-json', 'cnn-binary'],
    metrics: true,
  },
  {
    name: 'naive-node',
    label: 'naive-node',
    command: (p) => [node, ...tsx, 'bench/peers/naive-node.ts', p.http],
    scenarios: ['tabular-json'],
    metrics: false,
  },
  {
    name: 'uws-hello',
    label: 'uws-hello',
    command: (p) => [node, ...tsx, 'bench/peers/uws-hello.ts', p.http],
    scenarios: ['tabular-json'],
    metrics: false,
  },
  {
    name: 'uws-deferred',
    label: 'uws-hello --deferred',
    command: (p) => [node, ...tsx, 'bench/peers/uws-hello.ts', p.http, '--deferred'],
    scenarios: ['tabular-json'],
    metrics: false,
  },
];

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface RunningServer {
  spec: ServerSpec;
  child: Child;
  ports: Ports;
  baseUrl: string;
  metricsUrl: string | null;
  /** Seconds from spawn until /v2/health/ready answered 200. */
  readyAfterS: number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function healthReady(baseUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/v2/health/ready`, { signal: AbortSignal.timeout(1000) });
    const text = await response.text();
    return response.status === 200 && JSON.parse(text)?.ready === true;
  } catch {
    return false;
  }
}

/**
 * Starts `spec` pinned to `cpus` and waits until GET /v2/health/ready answers
 * 200 {"ready":true}. Throws (having stopped it) with the reason and the tail
 * of its output if it exits or is not ready within `timeoutS`.
 */
export async function startServer(spec: ServerSpec, cpus: string | undefined, timeoutS: number): Promise<RunningServer> {
  const taken = new Set<number>();
  const distinctPort = async () => {
    let port = await freePort();
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    return String(port);
  };
  const ports: Ports = { http: await distinctPort(), metrics: await distinctPort(), grpc: await distinctPort() };
  const baseUrl = `http://127.0.0.1:${ports.http}`;
  const started = performance.now();
  const child = startChild(spec.command(ports), { cpus, env: { ...process.env, NODE_ENV: 'production' } });
  let exit: number | string | undefined;
  void child.exited.then((code) => {
    exit = code;
  });
  const deadline = started + timeoutS * 1000;
  for (;;) {
    if (exit !== undefined) {
      throw new Error(`exited (${exit}) before it was ready: ${oneLine(child.tail())}`);
    }
    if (await healthReady(baseUrl)) break;
    if (performance.now() > deadline) {
      await stopChild(child);
      throw new Error(`not ready within ${timeoutS} s (GET /v2/health/ready): ${oneLine(child.tail())}`);
    }
    await sleep(100);
  }
  return {
    spec,
    child,
    ports,
    baseUrl,
    metricsUrl: spec.metrics ? `http://127.0.0.1:${ports.metrics}/metrics` : null,
    readyAfterS: Number(((performance.now() - started) / 1000).toFixed(2)),
    stop: () => stopChild(child),
  };
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 600 ? `...${flat.slice(-600)}` : flat || '(no output)';
}
