/**
 * The KServe V2 REST front end on uWebSockets.js. It only translates HTTP
 * into calls on the core and back: health, server and model metadata,
 * readiness, the effective config, and inference (JSON, or Triton's binary
 * tensor extension).
 */
import type { InferenceCore } from '../core/core.js';
import { WeirError } from '../errors.js';
import { inferRoute } from './infer-route.js';
import { type BodyLimits, BodyReader } from './read-body.js';
import { Exchanges, sendError, sendJson } from './respond.js';
import { App, type HttpRequest, type HttpResponse, LISTEN_EXCLUSIVE_PORT, type ListenSocket, closeListenSocket, listenPort } from './uws.js';

export interface HttpServerOptions extends BodyLimits {
  host: string;
  port: number;
}

export const DEFAULT_HTTP_LIMITS: BodyLimits = { maxBodyBytes: 64 * 1024 * 1024, bodyTimeoutMs: 30_000 };

export interface HttpServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /**
   * Stops accepting connections; requests in flight still get their answers.
   * Resolves once those answers are out (or their clients gone), or after
   * `graceMs`, whichever comes first.
   */
  close(graceMs?: number): Promise<void>;
}

/** How long close() waits by default for the answers in flight to go out. */
export const HTTP_SHUTDOWN_GRACE_MS = 5000;

/** HTTP extensions Weir supports, reported by GET /v2. */
const EXTENSIONS = ['binary_tensor_data', 'model_configuration'];

/** A path segment, percent-decoded; malformed encoding is the client's error. */
function pathParameter(req: HttpRequest, index: number, what: string): string {
  const raw = req.getParameter(index) ?? '';
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new WeirError('WEIR_INVALID_REQUEST', `the ${what} in the URL, '${raw}', is not valid percent-encoding`);
  }
}

export function startHttpServer(core: InferenceCore, options: HttpServerOptions): Promise<HttpServer> {
  const app = App();
  const bodies = new BodyReader(options);
  const exchanges = new Exchanges();

  /** A GET answered from the core synchronously; errors map through the error table. */
  const get = (pattern: string, answer: (req: HttpRequest) => [number, unknown]) =>
    app.get(pattern, (res: HttpResponse, req: HttpRequest) => {
      const ex = exchanges.start(res, req);
      try {
        const [status, body] = answer(req);
        sendJson(ex, status, body);
      } catch (error) {
        sendError(ex, error);
      }
    });

  get('/v2/health/live', () => (core.live() ? [200, { live: true }] : [503, { live: false }]));
  get('/v2/health/ready', () => (core.ready() ? [200, { ready: true }] : [503, { ready: false }]));
  get('/v2', () => [200, { ...core.serverMetadata(), extensions: EXTENSIONS }]);
  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    const model = (req: HttpRequest) => pathParameter(req, 0, 'model name');
    const version = (req: HttpRequest) => (prefix.endsWith(':version') ? pathParameter(req, 1, 'version') : undefined);
    get(prefix, (req) => [200, core.modelMetadata(model(req), version(req))]);
    get(`${prefix}/config`, (req) => [200, core.modelConfig(model(req), version(req))]);
    get(`${prefix}/ready`, (req) => {
      const ready = core.modelReady(model(req), version(req));
      return [ready ? 200 : 503, { name: model(req), ready }];
    });
    app.post(`${prefix}/infer`, inferRoute(core, bodies, exchanges, (req) => ({ model: model(req), version: version(req) })));
  }
  app.any('/*', (res: HttpResponse, req: HttpRequest) => {
    sendError(exchanges.start(res, req), new WeirError('WEIR_NOT_FOUND', `no endpoint ${req.getMethod().toUpperCase()} ${req.getUrl()}; see the KServe V2 routes under /v2`));
  });

  return new Promise((resolve, reject) => {
    const listen = app.listen as unknown as (host: string, port: number, flags: number, cb: (socket: ListenSocket | false) => void) => void;
    listen.call(app, options.host, options.port, LISTEN_EXCLUSIVE_PORT, (socket: ListenSocket | false) => {
      if (!socket) {
        reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port} (is the port in use?)`));
        return;
      }
      let open = true;
      resolve({
        port: listenPort(socket),
        close(graceMs = HTTP_SHUTDOWN_GRACE_MS) {
          if (open) closeListenSocket(socket);
          open = false;
          let timer: NodeJS.Timeout | undefined;
          const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
          return Promise.race([exchanges.settled(), grace]).finally(() => clearTimeout(timer));
        },
      });
    });
  });
}
