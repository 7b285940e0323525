/**
 * Issue 13, item 6: does the publisher fill a link with latency? A four-node group on the fault grid
 * backs up 64 MiB with no added latency, then with 25 ms each way on every persister's proxy; prints
 * the throughput of each (docs/benchmarks.md "Latency"). Not part of `npm test`: run it with
 * `npx mocha bench/latency-probe.spec.ts`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Grid } from '../test/helpers/grid.js'

describe('probe: group backup through a delaying proxy', function () {
  this.timeout(600_000)
  for (const delayMs of [0, 25]) {
    it(`delay ${delayMs} ms each way`, async () => {
      const grid = await Grid.start(['ann', 'bob', 'cid', 'dee'])
      try {
        await grid.formGroup()
        for (const n of ['bob', 'cid', 'dee']) grid.faults(n, { delayMs })
        const src = join(grid.dir, 'src')
        mkdirSync(src, { recursive: true })
        for (let i = 0; i < 4; i++) writeFileSync(join(src, `f${i}`), randomBytes(16 << 20))
        const t = performance.now()
        const b = await grid.ok('ann', 'backup', src, '--json')
        const s = (performance.now() - t) / 1000
        const p = b.json<{ placement: { packs: number, people: number, schemes: unknown } }>().placement
        console.log(`delay ${delayMs}: 64 MiB in ${s.toFixed(1)} s = ${(64 / s).toFixed(1)} MiB/s`, JSON.stringify(p.schemes), p.people)
      } finally {
        await grid.stop()
      }
    })
  }
})
