/**
 * The floor for any uWebSockets.js server: reads each POST's body (copying
 * it out, as any server must), then answers a fixed small JSON body shaped
 * like a tabular inference response. No parsing, no inference.
 *
 * With `--deferred`, the floor for a server that computes its answers
 * elsewhere: each answer is written after the handler has returned, all
 * those of one event-loop turn together at its end, as a batching server
 * answers a batch. What it costs over the plain floor is the price of
 * answering later at all, before any work is done.
 *
 *   node --import tsx bench/peers/uws-hello.ts [PORT] [--deferred]     (or PORT=...)
 */
import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8001);
const deferred = process.argv.includes('--deferred');
const ANSWER = JSON.stringify({
  model_name: 'tabular',
  model_version: '1',
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }],
});

const answer = (res: uWS.HttpResponse) =>
  res.cork(() => {
    res.writeHeader('Content-Type', 'application/json').end(ANSWER);
  });

/** Answers still to write at the end of this turn (--deferred). */
let due: Array<{ res: uWS.HttpResponse; aborted: () => boolean }> = [];
function answerDue(): void {
  const now = due;
  due = [];
  for (const { res, aborted } of now) if (!aborted()) answer(res);
}

uWS
  .App()
  .get('/v2/health/ready', (res) => {
    res.writeHeader('Content-Type', 'application/json').end('{"ready":true}');
  })
  .post('/*', (res) => {
    let aborted = false;
    const chunks: Buffer[] = [];
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(chunk.slice(0))); // the chunk is only valid during this call
      if (!isLast || aborted) return;
      if (!deferred) {
        answer(res);
        return;
      }
      if (due.length === 0) setImmediate(answerDue);
      due.push({ res, aborted: () => aborted });
    });
  })
  .any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  })
  .listen(port, (socket) => {
    if (!socket) {
      console.error(`uws-hello: cannot listen on ${port}`);
      process.exit(1);
    }
    console.log(`listening on ${port}`);
  });
