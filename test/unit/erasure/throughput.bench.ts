/**
 * Erasure throughput on a 16 MiB pack (not part of `npm test`).
 * Run: npx tsx test/unit/erasure/throughput.bench.ts
 * Prints MB/s of pack bytes (wall clock, median of 15, one call at a time, so one libuv thread) for:
 * encode; decode with all data shards present (a copy); decode with m data shards missing (the worst
 * case: m data shards rebuilt from parity); rebuild of one lost parity shard.
 */
import { createCipheriv } from 'node:crypto'
import { decodeShards, encodeShards, rebuildShards, type ErasureParams } from '../../../src/erasure/index.js'

const SIZE = 16 * 1024 * 1024
const pack = new Uint8Array(createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16)).update(Buffer.alloc(SIZE)))

async function mbPerSecond (run: () => Promise<unknown>): Promise<string> {
  const rates: number[] = []
  await run() // warm up: context creation, page faults
  for (let i = 0; i < 15; i++) {
    const t0 = process.hrtime.bigint()
    await run()
    rates.push(SIZE / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9))
  }
  rates.sort((a, b) => a - b)
  return `${rates[7]!.toFixed(0)} MB/s (${rates[0]!.toFixed(0)}–${rates[14]!.toFixed(0)})`
}

for (const p of [{ k: 4, m: 2 }, { k: 8, m: 4 }, { k: 10, m: 4 }] satisfies ErasureParams[]) {
  const shards = await encodeShards(pack, p)
  const all = new Map(shards.map((s, i) => [i, s]))
  const worst = new Map([...all].filter(([i]) => i >= p.m)) // data shards 0..m-1 lost
  const noParity0 = new Map([...all].filter(([i]) => i !== p.k))
  const enc = await mbPerSecond(async () => await encodeShards(pack, p))
  const decData = await mbPerSecond(async () => await decodeShards(all, p, SIZE))
  const decWorst = await mbPerSecond(async () => await decodeShards(worst, p, SIZE))
  const rebuild = await mbPerSecond(async () => await rebuildShards(noParity0, p, [p.k]))
  process.stdout.write(`${p.k}+${p.m}: encode ${enc}; decode, data shards present ${decData}; ` +
    `decode, ${p.m} data shards lost ${decWorst}; rebuild one parity shard ${rebuild}\n`)
}
