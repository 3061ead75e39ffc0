// timers.js — workload C: N tasks each sleeping a delay of 0..1000 ms from the shared LCG.
// usage: node timers.js [N] [MAX_MS]   prints wall_s=... bytes_per_task=... delay_sum_ms=...
'use strict';
const fs = require('fs');
const N = Number(process.argv[2] || 100000);
const MAX_MS = Number(process.argv[3] || 1000);

function statusKb(key) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${key}:\\s*(\\d+)`, 'm'));
  return Number(m[1]);
}

// the delay generator shared by every language: a 31-bit LCG, seed 42 (0..MAX_MS ms)
// (Math.imul keeps the low 32 bits of the product exactly, which is all the mask keeps)
let state = 42;
function nextMs() {
  state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff;
  return state % (MAX_MS + 1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function sleeper(ms) {
  await sleep(ms);
}

async function main() {
  const baseKb = statusKb('VmRSS');
  const t0 = process.hrtime.bigint();
  const tasks = [];
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const ms = nextMs();
    sum += ms;
    tasks.push(sleeper(ms));
  }
  await Promise.all(tasks);
  const t1 = process.hrtime.bigint();
  const peakKb = statusKb('VmHWM');
  const wall = Number(t1 - t0) / 1e9;
  console.log(`wall_s=${wall.toFixed(3)} bytes_per_task=${(((peakKb - baseKb) * 1024) / N).toFixed(0)} delay_sum_ms=${sum}`);
}

main();
