// worker_messages.js — workloads W (round trip) and M (one way): postMessage between the
// main thread and one worker_threads Worker (this file is both).
// usage: node worker_messages.js roundtrip|oneway [N]   prints round_trip_us=... / msgs_per_s=...
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (!isMainThread) {
  const { mode, n } = workerData;
  let count = 0;
  parentPort.on('message', (m) => {
    if (mode === 'roundtrip') {
      parentPort.postMessage(m);
      if (++count === n) parentPort.close();
    } else if (++count === n) {
      parentPort.postMessage('done');
      parentPort.close();
    }
  });
} else {
  const mode = process.argv[2] || 'roundtrip';
  const N = Number(process.argv[3] || (mode === 'roundtrip' ? 100000 : 1000000));
  const w = new Worker(__filename, { workerData: { mode, n: N } });
  w.once('online', () => {
    const t0 = process.hrtime.bigint();
    if (mode === 'roundtrip') {
      let i = 1;
      w.on('message', (m) => {
        if (m !== i) throw new Error('out of order');
        if (i === N) {
          console.log(`round_trip_us=${(Number(process.hrtime.bigint() - t0) / 1e3 / N).toFixed(2)}`);
          return;
        }
        w.postMessage(++i);
      });
      w.postMessage(i);
    } else {
      w.on('message', (m) => {
        if (m !== 'done') throw new Error('unexpected message');
        console.log(`msgs_per_s=${(N / (Number(process.hrtime.bigint() - t0) / 1e9)).toFixed(0)}`);
      });
      for (let i = 1; i <= N; i++) w.postMessage(i);
    }
  });
}
