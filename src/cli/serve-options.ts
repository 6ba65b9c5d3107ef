/**
 * The options of `weir serve`, as one typed object built from defaults, then
 * WEIR_* environment variables, then command-line flags; every value is
 * checked, and a bad one is a one-line error naming it.
 */
import { parseArgs } from 'node:util';

import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';

export interface ServeOptions {
  modelRepository: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  metricsPort: number;
  workers?: number;
  intraOpThreads?: number;
  requestTimeoutMs: number;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  grpcMaxMessageBytes: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

/** flag name → [environment variable, kind, default] */
const OPTIONS = {
  'model-repository': ['WEIR_MODEL_REPOSITORY', 'string', undefined],
  host: ['WEIR_HOST', 'string', '0.0.0.0'],
  'http-port': ['WEIR_HTTP_PORT', 'port', 8000],
  'grpc-port': ['WEIR_GRPC_PORT', 'port', 8001],
  'metrics-port': ['WEIR_METRICS_PORT', 'port', 8002],
  workers: ['WEIR_WORKERS', 'count', undefined],
  'intra-op-threads': ['WEIR_INTRA_OP_THREADS', 'count', undefined],
  'request-timeout-ms': ['WEIR_REQUEST_TIMEOUT_MS', 'count', 30_000],
  'max-body-bytes': ['WEIR_MAX_BODY_BYTES', 'count', 64 * 1024 * 1024],
  'body-timeout-ms': ['WEIR_BODY_TIMEOUT_MS', 'count', 30_000],
  'grpc-max-message-mb': ['WEIR_GRPC_MAX_MESSAGE_MB', 'count', 64],
  'log-level': ['WEIR_LOG_LEVEL', LOG_LEVELS, 'info'],
  'log-format': ['WEIR_LOG_FORMAT', LOG_FORMATS, 'pretty'],
} as const;

type Flag = keyof typeof OPTIONS;

export const SERVE_USAGE = `Usage: weir serve --model-repository DIR [options]

Options (each also settable by the environment variable in brackets):
  --model-repository DIR     model repository in Triton's layout [WEIR_MODEL_REPOSITORY]
  --host HOST                address to listen on (default 0.0.0.0) [WEIR_HOST]
  --http-port N              KServe V2 HTTP port (default 8000; 0: any free port) [WEIR_HTTP_PORT]
  --grpc-port N              KServe V2 gRPC port (default 8001; 0: any free port) [WEIR_GRPC_PORT]
  --metrics-port N           Prometheus metrics port, GET /metrics (default 8002; 0: any free port) [WEIR_METRICS_PORT]
  --workers N                inference worker threads (default: one per core) [WEIR_WORKERS]
  --intra-op-threads N       ONNX Runtime threads per run (default: cores / workers) [WEIR_INTRA_OP_THREADS]
  --request-timeout-ms N     longest a request waits in a model's queue (default 30000) [WEIR_REQUEST_TIMEOUT_MS]
  --max-body-bytes N         largest request body (default 67108864) [WEIR_MAX_BODY_BYTES]
  --body-timeout-ms N        longest a request body may take to arrive (default 30000) [WEIR_BODY_TIMEOUT_MS]
  --grpc-max-message-mb N    largest gRPC message received or sent (default 64) [WEIR_GRPC_MAX_MESSAGE_MB]
  --log-level LEVEL          error, warn, info (default) or debug [WEIR_LOG_LEVEL]
  --log-format FORMAT        pretty (default) or json, one object per line [WEIR_LOG_FORMAT]
`;

function convert(flag: Flag, source: string, text: string): string | number {
  const [, kind] = OPTIONS[flag];
  if (Array.isArray(kind)) {
    if (!kind.includes(text)) throw new Error(`${source} must be one of ${kind.join(', ')}, got '${text}'`);
    return text;
  }
  if (kind === 'string') {
    if (text === '') throw new Error(`${source} must not be empty`);
    return text;
  }
  const n = Number(text);
  if (kind === 'port' && !(Number.isInteger(n) && n >= 0 && n <= 65535)) throw new Error(`${source} must be a port number 0-65535, got '${text}'`);
  if (kind === 'count' && !(Number.isInteger(n) && n >= 1)) throw new Error(`${source} must be a positive integer, got '${text}'`);
  return n;
}

export function parseServeOptions(args: string[], env: NodeJS.ProcessEnv): ServeOptions {
  const { values } = parseArgs({
    args,
    options: Object.fromEntries(Object.keys(OPTIONS).map((flag) => [flag, { type: 'string' as const }])),
    strict: true,
  });
  const resolved: Record<string, string | number | undefined> = {};
  for (const flag of Object.keys(OPTIONS) as Flag[]) {
    const [variable, , fallback] = OPTIONS[flag];
    const fromFlag = values[flag] as string | undefined;
    const fromEnv = env[variable];
    resolved[flag] =
      fromFlag !== undefined ? convert(flag, `--${flag}`, fromFlag) : fromEnv !== undefined ? convert(flag, variable, fromEnv) : fallback;
  }
  if (resolved['model-repository'] === undefined) throw new Error('--model-repository (or WEIR_MODEL_REPOSITORY) is required');
  return {
    modelRepository: resolved['model-repository'] as string,
    host: resolved.host as string,
    httpPort: resolved['http-port'] as number,
    grpcPort: resolved['grpc-port'] as number,
    metricsPort: resolved['metrics-port'] as number,
    workers: resolved.workers as number | undefined,
    intraOpThreads: resolved['intra-op-threads'] as number | undefined,
    requestTimeoutMs: resolved['request-timeout-ms'] as number,
    maxBodyBytes: resolved['max-body-bytes'] as number,
    bodyTimeoutMs: resolved['body-timeout-ms'] as number,
    grpcMaxMessageBytes: (resolved['grpc-max-message-mb'] as number) * 1024 * 1024,
    logLevel: resolved['log-level'] as LogLevel,
    logFormat: resolved['log-format'] as LogFormat,
  };
}
