/**
 * The floor for any uWebSockets.js server: reads each POST's body (copying
 * it out, as any server must), then answers a fixed small JSON body shaped
 * like a tabular inference response. No parsing, no inference.
 *
 *   node --import tsx bench/peers/uws-hello.ts [PORT]     (or PORT=...)
 */
import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8001);
const ANSWER = JSON.stringify({
  model_name: 'tabular',
  model_version: '1',
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 2], data: [0.5, 0.5] }],
});

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
      res.cork(() => {
        res.writeHeader('Content-Type', 'application/json').end(ANSWER);
      });
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
