// Relay throughput in the NAT lab (docs/network.md §15.6), as root:
//   node --import tsx --import ./src/util/polyfill.ts bench/relay/relay-throughput.mts [sym]
// R serves circuit relay v2 without limits (as p2pbak members do), B behind NAT reserves on R, A behind
// NAT dials B through R and sends 64 MiB twice; each line: dial time, bytes, ms, MB/s.
import { createNatLab } from '../../test/helpers/nat-lab.ts'
import type { ChildProcess } from 'node:child_process'
const lab = await createNatLab({ publicHosts: ['r'], homes: { a: ['a'], b: ['b'] }, symmetric: process.argv[2] === 'sym' })
const kids: ChildProcess[] = []
const line = (c: ChildProcess): Promise<string> => new Promise(res => { let buf = ''; c.stdout!.on('data', (b: Buffer) => { buf += b; const i = buf.indexOf('\n'); if (i >= 0) res(buf.slice(0, i)) }) })
const run = (h: string, args: string[]) => { const c = lab.spawnIn(h, [process.execPath, '--import', 'tsx', '--import', './src/util/polyfill.ts', 'bench/relay/relay-node.mts', ...args], { cwd: new URL("../../", import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] }); kids.push(c); return c }
try {
  const r = await line(run('r', ['r']))
  const b = await line(run('b', ['b', r]))
  for (const mib of ['64', '64']) console.log(await line(run('a', ['a', b, mib])))
} finally { kids.forEach(k => k.kill('SIGKILL')); await lab.close() }
