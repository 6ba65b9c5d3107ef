/**
 * Two builds of Weir in one process, compared on the main thread's CPU per
 * request for decode → core.infer → encode of bench:http's 1-row tabular
 * body (no sockets), in alternating one-second windows. On a shared machine
 * the speed drifts by a quarter within minutes, which swamps a 5 % change
 * between runs one after the other; windows that alternate see the same
 * drift. Prints one JSON object: each build's median µs per request and the
 * median of the per-window ratios (this build over the other).
 *
 *   node --import tsx bench/compare-builds.ts OTHER_CHECKOUT [WINDOWS=10] [IN_FLIGHT=64]
 *
 * OTHER_CHECKOUT is a built checkout (its dist/ and native build), e.g. a
 * `git worktree` of the commit to compare with. One worker each; pin the
 * process (taskset -c 0) for figures like bench:http's.
 */
import { join, resolve } from 'node:path';

import { threadCpuSeconds } from './lib/proc.js';
import { SCENARIOS } from './lib/scenarios.js';

const [other, windowsArg, inFlightArg] = process.argv.slice(2);
if (!other) {
  console.error('usage: node --import tsx bench/compare-builds.ts OTHER_CHECKOUT [WINDOWS] [IN_FLIGHT]');
  process.exit(2);
}
const WINDOWS = Number(windowsArg ?? 10);
const IN_FLIGHT = Number(inFlightArg ?? 64);
const body = new Uint8Array(SCENARIOS['tabular-json'].body);


interface Build {
  dir: string;
  infer(): Promise<number>;
  stop(): Promise<void>;
  usPerRequest: number[];
}

async function load(dir: string): Promise<Build> {
  const { InferenceCore } = await import(join(dir, 'dist', 'index.js'));
  const codec = await import(join(dir, 'dist', 'http', 'v2-codec.js'));
  const core = await InferenceCore.start({ modelRepository: join(dir, 'models'), workers: 1 });
  return {
    dir,
    async infer() {
      const { request, binaryOutputs } = codec.decodeInferRequest(body, undefined, 'tabular');
      const response = await core.infer(request);
      return Buffer.byteLength(codec.encodeInferResponse(response, binaryOutputs).json);
    },
    stop: () => core.stop(),
    usPerRequest: [],
  };
}

/** Requests answered in `seconds`, IN_FLIGHT at a time. */
async function drive(build: Build, seconds: number): Promise<number> {
  let answered = 0;
  const until = performance.now() + seconds * 1000;
  const lane = async () => {
    while (performance.now() < until) {
      await build.infer();
      answered += 1;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return answered;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] as number;

const builds = [await load(resolve(other)), await load(resolve(import.meta.dirname, '..'))] as const;
for (const build of builds) await drive(build, 1); // warm up
for (let window = 0; window < WINDOWS; window++) {
  for (const build of window % 2 === 0 ? builds : [...builds].reverse()) {
    const before = threadCpuSeconds(process.pid);
    const answered = await drive(build, 1);
    build.usPerRequest.push(((threadCpuSeconds(process.pid) - before) * 1e6) / answered);
  }
}
const [base, current] = builds;
const ratios = current.usPerRequest.map((us, i) => us / (base.usPerRequest[i] as number));
console.log(
  JSON.stringify({
    other: base.dir,
    this: current.dir,
    other_main_us_per_request: Number(median(base.usPerRequest).toFixed(2)),
    this_main_us_per_request: Number(median(current.usPerRequest).toFixed(2)),
    this_over_other: Number(median(ratios).toFixed(3)),
    window_ratios: ratios.map((r) => Number(r.toFixed(2))),
  }),
);
for (const build of builds) await build.stop();
