// http_client.js — workload HC: Node's http.request with a keep-alive Agent makes N GETs
// over C connections. Prints requests per second and the CPU time per request, both over
// the timed region.
// usage: node http_client.js PORT [N [C]]
'use strict';
const http = require('http');
const port = Number(process.argv[2]), n = Number(process.argv[3] || 20000), c = Number(process.argv[4] || 50);
const agent = new http.Agent({ keepAlive: true, maxSockets: c });
function get() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.on('data', () => {});
      res.on('end', resolve);
    }).on('error', reject);
  });
}
(async () => {
  const t0 = process.hrtime.bigint(), cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: c }, async () => { for (let i = 0; i < n / c; i++) await get(); }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9, cpu = process.cpuUsage(cpu0);
  console.log(`requests=${n} seconds=${s.toFixed(3)} req_per_s=${(n / s).toFixed(0)} ` +
              `cpu_us_per_req=${((cpu.user + cpu.system) / n).toFixed(2)}`);
  agent.destroy();
})();
