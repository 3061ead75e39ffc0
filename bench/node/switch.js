// switch.js — workload B: T tasks each yielding M times to the event loop through
// setImmediate (Node's nearest equivalent of sleep(0): a full turn of the loop).
// usage: node switch.js [T] [M]   prints switches_per_s=...
'use strict';
const T = Number(process.argv[2] || 1000);
const M = Number(process.argv[3] || 1000);

const yieldOnce = () => new Promise((resolve) => setImmediate(resolve));

async function worker(m) {
  for (let i = 0; i < m; i++) await yieldOnce();
  return m;
}

async function main() {
  const t0 = process.hrtime.bigint();
  const tasks = [];
  for (let i = 0; i < T; i++) tasks.push(worker(M));
  await Promise.all(tasks);
  const t1 = process.hrtime.bigint();
  console.log(`switches_per_s=${((T * M) / (Number(t1 - t0) / 1e9)).toFixed(0)}`);
}

main();
