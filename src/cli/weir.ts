#!/usr/bin/env node
/**
 * `weir` — the command line. `weir serve` loads a model repository, serves
 * it over KServe V2 HTTP, and on SIGTERM or SIGINT stops accepting, finishes
 * the requests in flight and exits 0.
 */
import { InferenceCore, type VersionStatus } from '../core/core.js';
import { toWeirError } from '../errors.js';
import { type GrpcServer, startGrpcServer } from '../grpc/server.js';
import { type HttpServer, startHttpServer } from '../http/server.js';
import { Metrics } from '../metrics/metrics.js';
import { type MetricsServer, startMetricsServer } from '../metrics/server.js';
import { createLog } from './log.js';
import { SERVE_USAGE, parseServeOptions } from './serve-options.js';

function describe(status: VersionStatus): string {
  const version = status.version === null ? '-' : String(status.version);
  const reason = status.reason ? `  ${status.reason}` : '';
  return `  ${status.model.padEnd(20)} ${version.padStart(7)}  ${status.state.padEnd(11)}${reason}`.trimEnd();
}

/** `weir serve` before its options are read logs errors plainly. */
let log = createLog('info', 'pretty');

async function serve(args: string[]): Promise<void> {
  const options = parseServeOptions(args, process.env);
  log = createLog(options.logLevel, options.logFormat);
  // Watched from the start: a stop asked for while loading still stops cleanly.
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  let core: InferenceCore | undefined;
  const metrics = new Metrics({
    queueDepths: () => core?.queueDepths() ?? [],
    workerUtilization: () => core?.pool.utilization ?? 0,
  });
  core = await InferenceCore.start({ ...options, observer: metrics });
  let http: HttpServer | undefined;
  let grpc: GrpcServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    http = await startHttpServer(core, { host: options.host, port: options.httpPort, maxBodyBytes: options.maxBodyBytes, bodyTimeoutMs: options.bodyTimeoutMs });
    grpc = await startGrpcServer(core, { host: options.host, port: options.grpcPort, maxMessageBytes: options.grpcMaxMessageBytes });
    metricsServer = await startMetricsServer(metrics, options.host, options.metricsPort);
  } catch (error) {
    await http?.close();
    await grpc?.close();
    await core.stop();
    throw error;
  }

  const { threads } = core;
  const meta = core.serverMetadata();
  log.info(`weir ${meta.version}: ONNX Runtime ${meta.onnxruntime}, ${threads.workers} workers x ${threads.intraOpThreads} intra-op threads on ${threads.cores} cores`, { ...threads, onnxruntime: meta.onnxruntime });
  const statuses = core.status();
  if (options.logFormat === 'json') {
    for (const status of statuses) log.info('model version', { ...status });
  } else {
    log.info([`models in ${core.repository.root}:`, `  ${'MODEL'.padEnd(20)} ${'VERSION'.padStart(7)}  STATE`, ...statuses.map(describe)].join('\n'));
  }
  log.info(`weir: metrics on http://${options.host}:${metricsServer.port}/metrics`, { metricsPort: metricsServer.port });
  log.info(`weir: gRPC listening on ${options.host}:${grpc.port}`, { grpcPort: grpc.port });
  log.info(`weir: HTTP listening on http://${options.host}:${http.port}`, { httpPort: http.port });

  await stopRequested;
  log.info('weir: stopping; finishing the requests in flight');
  // Both front ends first stop accepting, then wait for their answers to go out; the core answers meanwhile.
  const httpClosed = http.close();
  const grpcClosed = grpc.close();
  await core.stop();
  await Promise.all([httpClosed, grpcClosed]);
  await metricsServer.close();
  log.info('weir: stopped');
  // Idle keep-alive connections would keep the loop alive: everything is answered.
  process.exit(0);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  throw new Error(`unknown command '${command}'; try 'weir serve'`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error && !('code' in error) ? error.message : toWeirError(error).message;
  log.error(`weir: ${message}`);
  process.exit(1);
});
