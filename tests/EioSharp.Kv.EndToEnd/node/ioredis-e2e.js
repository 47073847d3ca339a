// Drives EioSharp.Kv (or redis-server) with ioredis: pub/sub, pipeline, multi/exec (with a WATCH failure), a BLPOP woken
// by another client, XREADGROUP + XACK, defineCommand (Lua). Prints one JSON object of concrete results on stdout; the
// xunit test (IoredisEndToEndTests) asserts them. Usage: node ioredis-e2e.js <host> <port>
'use strict';
const Redis = require('ioredis');

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
const connect = () => new Redis({ host, port, maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition, what) {
  const deadline = Date.now() + 10000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(10);
  }
}

async function main() {
  const r = {};
  const a = connect();
  const b = connect();
  const sub = connect();
  await a.flushall();

  // ---- pub/sub: subscribe, psubscribe, publish counts, messages in order
  const messages = [];
  sub.on('message', (channel, message) => messages.push(['message', channel, message]));
  sub.on('pmessage', (pattern, channel, message) => messages.push(['pmessage', pattern, channel, message]));
  r.subscribe = await sub.subscribe('news', 'sport');
  r.psubscribe = await sub.psubscribe('n*');
  r.publishNews = await a.publish('news', 'hello');
  r.publishSport = await a.publish('sport', 'goal');
  r.publishNobody = await a.publish('weather', 'rain');
  r.numsub = await a.pubsub('NUMSUB', 'news', 'sport', 'weather');
  r.numpat = await a.pubsub('NUMPAT');
  await waitFor(async () => messages.length >= 3, 'three pub/sub messages');
  r.messages = messages.slice();
  r.unsubscribe = await sub.unsubscribe('sport');
  r.publishAfterUnsubscribe = await a.publish('sport', 'late');

  // ---- pipeline
  const pipeline = await a.pipeline().set('p1', 'v1').incr('counter').incrby('counter', 41).get('p1').lpush('plist', 'x', 'y').hset('ph', 'f', '1').exec();
  r.pipeline = pipeline.map(([err, value]) => (err ? 'ERR ' + err.message : value));

  // ---- multi/exec, runtime error in its slot, watch failure
  r.multi = await a.multi().set('m1', 'one').incr('m2').get('m1').exec();
  r.multiRuntimeError = (await a.multi().set('s', 'str').incr('s').set('after', 'ok').exec()).map(([err, value]) => (err ? 'ERR ' + err.message : value));
  r.afterRuntimeError = await a.get('after');
  await a.set('watched', '1');
  await a.watch('watched');
  await b.set('watched', '2'); // another client modifies the key: EXEC must fail
  r.watchFailed = await a.multi().set('watched', '3').exec();
  r.watchedValue = await a.get('watched');
  await a.watch('watched');
  r.watchSucceeded = await a.multi().set('watched', '4').exec();
  r.watchedValueAfter = await a.get('watched');

  // ---- blpop woken by another client
  const blocker = connect();
  const popped = blocker.blpop('queue', 0);
  await waitFor(async () => /blocked_clients:1\r?\n/.test(await a.info('clients')), 'the BLPOP to block');
  r.rpush = await b.rpush('queue', 'job-1', 'job-2');
  r.blpop = await popped;
  r.queueLeft = await a.lrange('queue', 0, -1);
  r.blpopTimeout = await blocker.blpop('empty', 0.1);
  blocker.disconnect();

  // ---- streams: xreadgroup + xack
  r.xgroup = await a.xgroup('CREATE', 'orders', 'workers', '$', 'MKSTREAM');
  const id1 = await a.xadd('orders', '1-1', 'item', 'apple');
  const id2 = await a.xadd('orders', '2-1', 'item', 'pear');
  r.xaddIds = [id1, id2];
  r.xreadgroup = await a.xreadgroup('GROUP', 'workers', 'alice', 'COUNT', 10, 'STREAMS', 'orders', '>');
  r.xack = await a.xack('orders', 'workers', id1);
  r.xpending = await a.xpending('orders', 'workers');
  const blockedRead = b.xreadgroup('GROUP', 'workers', 'bob', 'BLOCK', 5000, 'STREAMS', 'orders', '>');
  await waitFor(async () => /blocked_clients:1\r?\n/.test(await a.info('clients')), 'the XREADGROUP to block');
  await a.xadd('orders', '3-1', 'item', 'plum');
  r.xreadgroupBlocked = await blockedRead;
  r.xackBoth = await a.xack('orders', 'workers', id2, '3-1', '9-9');
  r.xpendingAfter = await a.xpending('orders', 'workers');

  // ---- defineCommand (Lua via EVALSHA, falling back to EVAL)
  a.defineCommand('incrCapped', {
    numberOfKeys: 1,
    lua: "local v = redis.call('incrby', KEYS[1], ARGV[1]) if v > tonumber(ARGV[2]) then redis.call('set', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end return v",
  });
  r.incrCapped = [await a.incrCapped('cap', 5, 12), await a.incrCapped('cap', 5, 12), await a.incrCapped('cap', 5, 12)];
  r.scriptExists = await a.script('EXISTS', '1' + '0'.repeat(39));
  a.defineCommand('swap', { numberOfKeys: 2, lua: "local x = redis.call('get', KEYS[1]) local y = redis.call('get', KEYS[2]) redis.call('set', KEYS[1], y) redis.call('set', KEYS[2], x) return {x, y}" });
  await a.mset('left', 'L', 'right', 'R');
  r.swap = await a.swap('left', 'right');
  r.swapped = await a.mget('left', 'right');
  r.pipelinedScript = (await a.pipeline().incrCapped('cap2', 7, 100).incrCapped('cap2', 7, 100).exec()).map(([err, value]) => (err ? 'ERR ' + err.message : value));

  sub.disconnect();
  a.disconnect();
  b.disconnect();
  process.stdout.write(JSON.stringify(r));
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + '\n');
  process.exit(1);
});
