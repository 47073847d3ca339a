// Sends a fixed set of StatsD/DogStatsD messages with hot-shots (the npm client) and prints the exact lines it sent,
// one JSON array on stdout. Usage: node hot-shots-send.js <host> <port> <udp|tcp> <maxBufferSize> <tag>
// The lines are recorded by a mock client making the same calls; sampling is made deterministic so that a
// sample rate below 1 is still sent (with its |@rate field).
'use strict';
const StatsD = require('hot-shots');

const [host, port, protocol, maxBufferSize, run] = process.argv.slice(2);
Math.random = () => 0; // every sampled call is sent

function calls(c) {
  const t = { run };
  c.increment('kept.requests', 1, { ...t, env: 'prod' });
  c.increment('kept.sampled', 3, 0.5, { ...t, env: 'prod' });
  c.decrement('kept.queue', 2);
  c.gauge('kept.memory', 12.5, ['region:eu', `run:${run}`]);
  c.gauge('kept.delta', -3);
  c.timing('kept.latency', 42, 0.25, { ...t });
  c.histogram('kept.size', 1024, { ...t });
  c.distribution('kept.dist', 7.5, { ...t });
  c.set('kept.users', 'user-42', { ...t });
  c.unique('kept.ids', 99);
  c.event('kept deploy', 'version 1.2 rolled out', { alert_type: 'info', priority: 'low' }, { ...t, env: 'prod' });
  c.check('kept.service', 1, { message: 'slow | degraded' }, { ...t });
  c.increment('blocked.requests', 1, { ...t });
  c.gauge('blocked.memory', 3, { ...t });
  c.event('blocked.deploy', 'nope', {}, { ...t });
  c.check('blocked.service', 0, {}, { ...t });
  c.increment('kept.requests', 1, { ...t, env: 'dev' });       // blocked by tag:env:dev
  c.timing('secret.latency', 5, { ...t });                      // blocked by regex
  c.increment('kept.requests', 5, { ...t, env: 'staging' });
  for (let i = 0; i < 50; i++) {
    c.increment(`kept.series.${i}`, i, { ...t });
  }
}

const mock = new StatsD({ mock: true });
calls(mock);
const sent = mock.mockBuffer.slice();

const client = new StatsD({
  host, port: Number(port), protocol, maxBufferSize: Number(maxBufferSize), bufferFlushInterval: 50,
  errorHandler: (e) => { console.error(`hot-shots error: ${e.message}`); process.exitCode = 1; },
});
calls(client);
client.close((err) => {
  if (err) {
    console.error(`hot-shots close error: ${err.message}`);
    process.exitCode = 1;
  }
  process.stdout.write(JSON.stringify(sent) + '\n');
});
