// spawn.js — workload A: create N tasks (async function calls) that each return their
// index; wait for all with Promise.all.
// usage: node spawn.js [N]   prints ns_per_task=...
'use strict';
const N = Number(process.argv[2] || 200000);

async function work(i) {
  return i;
}

async function main() {
  const t0 = process.hrtime.bigint();
  const tasks = [];
  for (let i = 1; i <= N; i++) tasks.push(work(i));
  const results = await Promise.all(tasks);
  const t1 = process.hrtime.bigint();
  if (results.length !== N || results[0] !== 1 || results[N - 1] !== N) throw new Error('wrong results');
  console.log(`ns_per_task=${(Number(t1 - t0) / N).toFixed(1)}`);
}

main();
