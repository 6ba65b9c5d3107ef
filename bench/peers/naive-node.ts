/**
 * The peer a competent Node user would write: node:http + onnxruntime-node,
 * one session.run per request, KServe V2 JSON (no binary extension).
 * One InferenceSession per model version, loaded at start, one intra-op thread.
 *
 *   node --import tsx bench/peers/naive-node.ts [PORT]     (or PORT=...; MODELS=tabular,...)
 */
import { readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

import ort from 'onnxruntime-node';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8000);
const repository = process.env.MODEL_REPOSITORY ?? join(import.meta.dirname, '..', '..', 'models');
const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };

// model → version → session; the newest version serves requests that name none (as in Triton).
const models = new Map<string, Map<string, ort.InferenceSession>>();
for (const name of (process.env.MODELS ?? 'tabular').split(',')) {
  const versions = readdirSync(join(repository, name)).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  const sessions = new Map<string, ort.InferenceSession>();
  for (const v of versions) sessions.set(v, await ort.InferenceSession.create(join(repository, name, v, 'model.onnx'), options));
  models.set(name, sessions);
}

interface V2Tensor { name: string; datatype: string; shape: number[]; data: unknown[] }

const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
};

createServer(async (req, res) => {
  if (req.method === 'GET' && (req.url === '/v2/health/ready' || req.url === '/v2/health/live')) {
    return send(res, 200, req.url.endsWith('ready') ? { ready: true } : { live: true });
  }
  const route = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !route) return send(res, 404, { error: 'not found' });
  const versions = models.get(route[1]!);
  const version = route[2] ?? [...(versions?.keys() ?? [])].pop();
  const session = version === undefined ? undefined : versions?.get(version);
  if (!session) return send(res, 404, { error: `unknown model ${route[1]} version ${route[2] ?? '(latest)'}` });
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs: V2Tensor[] };
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of request.inputs) {
      if (input.datatype !== 'FP32') return send(res, 400, { error: `input ${input.name}: only FP32 is supported` });
      feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data.flat(Infinity) as number[]), input.shape);
    }
    const results = await session.run(feeds);
    const outputs = session.outputNames.map((name) => ({
      name, datatype: 'FP32', shape: results[name]!.dims, data: Array.from(results[name]!.data as Float32Array),
    }));
    send(res, 200, { model_name: route[1], model_version: version, outputs });
  } catch (error) {
    send(res, 400, { error: error instanceof Error ? error.message : String(error) });
  }
}).listen(port, () => console.log(`listening on ${port}`));
