// The CPU a bare js-libp2p receiver spends per GB (issue 13, item 3; docs/benchmarks.md, "The
// transport's floor"): two processes on loopback with the transport stack p2pbak builds (TCP, Noise,
// yamux, as in src/node/libp2p-node.ts, with none of p2pbak's protocols), the sender writes GiB of
// bytes in streams of PART bytes, the receiver reads and drops them. The receiver prints its own CPU
// seconds (user + system, process.cpuUsage) from its first stream to its last byte, per GB.
//
//   node bench/tools/transport-floor.mjs [--total MiB] [--part MiB] [--runs N]
//
// Run it over a build (`npm run build`): it loads dist/util/polyfill.js (Node 20 lacks
// Promise.withResolvers, which libp2p uses).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);

async function stack() {
  await import('../../dist/util/polyfill.js');
  const { createLibp2p } = await import('libp2p');
  const { tcp } = await import('@libp2p/tcp');
  const { noise } = await import('@chainsafe/libp2p-noise');
  const { yamux } = await import('@chainsafe/libp2p-yamux');
  return (init) => createLibp2p({ ...init, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] });
}

async function receiver(total) {
  const create = await stack();
  const node = await create({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] } });
  let got = 0;
  let start;
  await node.handle('/floor/1', async (stream) => {
    start ??= process.cpuUsage();
    for await (const chunk of stream) got += chunk.byteLength;
    stream.send(new Uint8Array([1]));
    await stream.close();
    if (got >= total) {
      const c = process.cpuUsage(start);
      // the parent stops this process once the sender is done
      process.stdout.write(JSON.stringify({ cpuSeconds: (c.user + c.system) / 1e6, bytes: got }) + '\n');
    }
  }, { maxInboundStreams: 1024 });
  process.stdout.write(node.getMultiaddrs()[0].toString() + '\n');
}

async function sender(addr, total, part) {
  const create = await stack();
  const { multiaddr } = await import('@multiformats/multiaddr');
  const node = await create({});
  // written 1 MiB at a time, as p2pbak writes a part's body
  const buf = new Uint8Array(Math.min(part, 2 ** 20)).fill(7);
  for (let sent = 0; sent < total; sent += part) {
    const s = await node.dialProtocol(multiaddr(addr), '/floor/1');
    for (let off = 0; off < part; off += buf.byteLength) if (!s.send(buf)) await s.onDrain();
    await s.close();
    for await (const _ of s) { /* the one-byte answer */ }
  }
  await node.stop();
}

async function run(total, part) {
  const child = spawn(process.execPath, [SELF, '--role', 'receiver', '--total', String(total / 2 ** 20)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  const addr = (await it.next()).value;
  if (addr === undefined) throw new Error('the receiver exited before it listened (its error is above)');
  const t0 = performance.now();
  await sender(addr, total, part);
  const line = (await it.next()).value;
  if (line === undefined) throw new Error('the receiver exited before it reported (its error is above)');
  const result = JSON.parse(line);
  child.kill();
  await once(child, 'exit');
  return { ...result, wallSeconds: (performance.now() - t0) / 1000 };
}

const { values } = parseArgs({ options: { role: { type: 'string' }, total: { type: 'string', default: '512' }, part: { type: 'string', default: '1' }, runs: { type: 'string', default: '5' } } });
const total = Number(values.total) * 2 ** 20;
for (const [name, v] of [['total', values.total], ['part', values.part], ['runs', values.runs]]) {
  if (!Number.isSafeInteger(Number(v)) || Number(v) < 1) throw new Error(`--${name} takes a whole number of at least 1, got ${v}`);
}
if (values.role === 'receiver') {
  await receiver(total);
} else {
  const part = Number(values.part) * 2 ** 20;
  const perGb = [];
  for (let i = 0; i < Number(values.runs); i++) {
    const r = await run(total, part);
    perGb.push(r.cpuSeconds / (r.bytes / 1e9));
    console.log(`run ${i + 1}: receiver ${r.cpuSeconds.toFixed(2)} CPU s for ${(r.bytes / 1e9).toFixed(3)} GB = ${perGb.at(-1).toFixed(2)} s/GB; ${(r.bytes / 1e6 / r.wallSeconds).toFixed(0)} MB/s`);
  }
  perGb.sort((a, b) => a - b);
  console.log(`receiver CPU s per GB, streams of ${values.part} MiB: median ${perGb[Math.floor(perGb.length / 2)].toFixed(2)} (min ${perGb[0].toFixed(2)}, max ${perGb.at(-1).toFixed(2)})`);
}
