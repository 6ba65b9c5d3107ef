/**
 * The HTTP benchmark's scenarios: what one request looks like, and a check
 * that a server answers it correctly (run once before the load, since the
 * load generator only counts status codes).
 */

export type ScenarioName = 'tabular-json' | 'cnn-binary';

export interface Scenario {
  name: ScenarioName;
  description: string;
  model: string;
  path: string;
  method: 'POST';
  headers: Record<string, string>;
  body: Buffer;
  /** Rows (samples) per request. */
  rows: number;
  /** Sends one request to `baseUrl`; resolves with what is wrong with the answer, or null. */
  probe(baseUrl: string): Promise<string | null>;
}

/** Seeded values in [-1, 1), as in bench/core.ts. */
export function seeded(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return data;
}

/** Probabilities must be finite, in [0, 1], `count` of them, summing to 1. */
export function checkProbabilities(values: ArrayLike<number>, count: number): string | null {
  if (values.length !== count) return `expected ${count} probabilities, got ${values.length}`;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) return `probability ${i} is ${String(v)}`;
    sum += v;
  }
  return Math.abs(sum - 1) < 1e-3 ? null : `probabilities sum to ${sum}, not 1`;
}

async function post(url: string, headers: Record<string, string>, body: Buffer): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
}

function tabularJson(): Scenario {
  const features = Array.from(seeded(32, 7), (v) => Number(v.toFixed(6)));
  const request = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 32], data: features }] };
  const headers = { 'Content-Type': 'application/json' };
  const body = Buffer.from(JSON.stringify(request));
  const path = '/v2/models/tabular/infer';
  return {
    name: 'tabular-json',
    description: '1-row V2 JSON request to the tabular model (FP32 [1,32] -> probabilities FP32 [1,2])',
    model: 'tabular',
    path,
    method: 'POST',
    headers,
    body,
    rows: 1,
    async probe(baseUrl) {
      const response = await post(baseUrl + path, headers, body);
      const text = await response.text();
      if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 300)}`;
      let parsed: { outputs?: { name?: string; shape?: number[]; data?: unknown }[] };
      try {
        parsed = JSON.parse(text);
      } catch {
        return `response is not JSON: ${text.slice(0, 300)}`;
      }
      const output = parsed.outputs?.find((o) => o.name === 'probabilities');
      if (!output) return `no 'probabilities' output in ${text.slice(0, 300)}`;
      if (JSON.stringify(output.shape) !== '[1,2]') return `probabilities shape ${JSON.stringify(output.shape)}, expected [1,2]`;
      const data = Array.isArray(output.data) ? (output.data as unknown[]).flat(Infinity) : [];
      return checkProbabilities(data as number[], 2);
    },
  };
}

function cnnBinary(): Scenario {
  const image = seeded(3 * 32 * 32, 11);
  const header = JSON.stringify({
    inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 32, 32], parameters: { binary_data_size: image.byteLength } }],
    outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
  });
  const headerBytes = Buffer.from(header);
  const body = Buffer.concat([headerBytes, Buffer.from(image.buffer, image.byteOffset, image.byteLength)]);
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Inference-Header-Content-Length': String(headerBytes.length),
  };
  const path = '/v2/models/cnn/infer';
  return {
    name: 'cnn-binary',
    description: "1-image request to the CNN (FP32 [1,3,32,32] -> probabilities FP32 [1,10]) in Triton's binary tensor extension, binary output",
    model: 'cnn',
    path,
    method: 'POST',
    headers,
    body,
    rows: 1,
    async probe(baseUrl) {
      const response = await post(baseUrl + path, headers, body);
      const bytes = Buffer.from(await response.arrayBuffer());
      if (response.status !== 200) return `HTTP ${response.status}: ${bytes.toString('utf8', 0, 300)}`;
      const headerLength = Number(response.headers.get('inference-header-content-length'));
      if (!Number.isInteger(headerLength) || headerLength <= 0 || headerLength > bytes.length) {
        return `no valid Inference-Header-Content-Length in the response (got ${response.headers.get('inference-header-content-length')})`;
      }
      let parsed: { outputs?: { name?: string; shape?: number[]; parameters?: { binary_data_size?: number } }[] };
      try {
        parsed = JSON.parse(bytes.toString('utf8', 0, headerLength));
      } catch {
        return `response header is not JSON: ${bytes.toString('utf8', 0, Math.min(headerLength, 300))}`;
      }
      // Binary outputs follow the JSON header in the order the header lists them.
      let offset = headerLength;
      for (const output of parsed.outputs ?? []) {
        const size = output.parameters?.binary_data_size;
        if (output.name !== 'probabilities') {
          offset += size ?? 0;
          continue;
        }
        if (size !== 40) return `probabilities binary_data_size ${String(size)}, expected 40 (FP32 [1,10])`;
        if (offset + size > bytes.length) return `response body has ${bytes.length} bytes, probabilities end at ${offset + size}`;
        const copy = bytes.subarray(offset, offset + size);
        const values = new Float32Array(copy.buffer.slice(copy.byteOffset, copy.byteOffset + size));
        return checkProbabilities(values, 10);
      }
      return `no binary 'probabilities' output in ${bytes.toString('utf8', 0, Math.min(headerLength, 300))}`;
    },
  };
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'tabular-json': tabularJson(),
  'cnn-binary': cnnBinary(),
};
