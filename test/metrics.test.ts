import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferenceCore } from '../dist/index.js';
import { Metrics } from '../dist/metrics/metrics.js';
import { type MetricsServer, startMetricsServer } from '../dist/metrics/server.js';
import { EXAMPLE_REPOSITORY } from './helpers/repository.js';

let core: InferenceCore;
let metrics: Metrics;
let server: MetricsServer;

beforeAll(async () => {
  metrics = new Metrics({ queueDepths: () => core.queueDepths(), workerUtilization: () => core.pool.utilization });
  core = await InferenceCore.start({ modelRepository: EXAMPLE_REPOSITORY, workers: 2, observer: metrics });
  server = await startMetricsServer(metrics, '127.0.0.1', 0);
});

afterAll(async () => {
  await core.stop();
  await server.close();
});

const trees = (rows: number) => ({
  model: 'trees',
  inputs: [{ name: 'features', datatype: 'FP32' as const, shape: [rows, 4], data: new Float32Array(rows * 4).fill(0.25) }],
});

async function scrape(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return response.text();
}

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics', () => {
  it('count successes and failures by model, version and reason', async () => {
    await Promise.all([trees(1), trees(2), trees(3)].map((request) => core.infer(request)));
    await expect(core.infer({ ...trees(1), version: '7' })).rejects.toMatchObject({ code: 'WEIR_VERSION_NOT_FOUND' });
    await expect(core.infer({ ...trees(1), model: 'no-such-model' })).rejects.toMatchObject({ code: 'WEIR_MODEL_NOT_FOUND' });
    core.requestRefused('trees', Object.assign(new Error('bad JSON'), { code: 'WEIR_INVALID_REQUEST' }));

    const text = await scrape();
    expect(sample(text, 'weir_requests_total', 'model="trees",version="1",outcome="success",reason=""')).toBe(3);
    expect(sample(text, 'weir_requests_total', 'model="trees",version="",outcome="failure",reason="WEIR_VERSION_NOT_FOUND"')).toBe(1);
    // Unknown model names are not labels (clients could make them unbounded).
    expect(sample(text, 'weir_requests_total', 'model="",version="",outcome="failure",reason="WEIR_MODEL_NOT_FOUND"')).toBe(1);
    expect(text).not.toContain('no-such-model');
    expect(sample(text, 'weir_requests_total', 'model="trees",version="",outcome="failure",reason="WEIR_INVALID_REQUEST"')).toBe(1);
    expect(sample(text, 'weir_request_duration_seconds_count', 'model="trees",version="1"')).toBe(3);
  });

  it('record batch sizes in rows and requests, and compute and queue durations, as cumulative histograms', async () => {
    const before = await scrape();
    const rowsBefore = sample(before, 'weir_batch_size_rows_sum', 'model="trees",version="1"') ?? 0;
    await Promise.all([trees(2), trees(5)].map((request) => core.infer(request)));
    const text = await scrape();
    expect((sample(text, 'weir_batch_size_rows_sum', 'model="trees",version="1"') ?? 0) - rowsBefore).toBe(7);
    const buckets = text.split('\n').filter((l) => l.startsWith('weir_batch_size_rows_bucket{model="trees",version="1"'));
    const counts = buckets.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
    expect(buckets.at(-1)).toContain('le="+Inf"');
    expect(counts.at(-1)).toBe(sample(text, 'weir_batch_size_rows_count', 'model="trees",version="1"'));
    expect(sample(text, 'weir_batch_size_requests_count', 'model="trees",version="1"')).toBeGreaterThan(0);
    expect(sample(text, 'weir_compute_duration_seconds_sum', 'model="trees",version="1"')).toBeGreaterThan(0);
    expect(sample(text, 'weir_queue_duration_seconds_count', 'model="trees",version="1"')).toBe(
      sample(text, 'weir_request_duration_seconds_count', 'model="trees",version="1"'),
    );
  });

  it('report queue depth per version and worker utilisation when scraped', async () => {
    const text = await scrape();
    expect(sample(text, 'weir_queue_depth', 'model="tabular",version="2"')).toBe(0);
    const utilization = Number(text.split('\n').find((l) => l.startsWith('weir_worker_utilization '))?.split(' ')[1]);
    expect(utilization).toBeGreaterThan(0);
    expect(utilization).toBeLessThanOrEqual(1);
  });

  it('answer 404 on anything but GET /metrics', async () => {
    const response = await fetch(`http://127.0.0.1:${server.port}/other`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: expect.stringContaining('GET /metrics') });
  });
});
