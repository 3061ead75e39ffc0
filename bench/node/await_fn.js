// await_fn.js — workload F: one async function awaiting a trivial async function N times.
// usage: node await_fn.js [N]   prints ns_per_await=...
'use strict';
const N = Number(process.argv[2] || 1000000);

async function addOne(x) { return x + 1; }

async function main() {
  const t0 = process.hrtime.bigint();
  let total = 0;
  for (let i = 1; i <= N; i++) total += await addOne(i);
  const t1 = process.hrtime.bigint();
  if (total !== N * (N + 1) / 2 + N) throw new Error('wrong sum');
  console.log(`ns_per_await=${(Number(t1 - t0) / N).toFixed(1)}`);
}

main();
