// worker_idle.js — workload I: K idle worker_threads Workers: start-up time of one (new
// Worker until its first message) and resident memory of one.
// usage: node worker_idle.js [K]   prints start_ms=... rss_kib_per_worker=...
'use strict';
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (!isMainThread) {
  parentPort.postMessage('up');
  parentPort.once('message', () => parentPort.close());
} else {
  const K = Number(process.argv[2] || 20);
  const start = () => new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const w = new Worker(__filename);
    w.once('message', () => resolve([w, Number(process.hrtime.bigint() - t0) / 1e6]));
  });
  (async () => {
    const [warm] = await start();
    const before = process.memoryUsage().rss;
    const workers = [];
    let total = 0;
    for (let i = 0; i < K; i++) {
      const [w, ms] = await start();
      workers.push(w);
      total += ms;
    }
    const after = process.memoryUsage().rss;
    console.log(`start_ms=${(total / K).toFixed(3)} rss_kib_per_worker=${((after - before) / 1024 / K).toFixed(0)}`);
    for (const w of [warm, ...workers]) w.postMessage('stop');
  })();
}
