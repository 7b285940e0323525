/**
 * Issue 13, item 6: round trips per exchange over a 50 ms round-trip link (docs/benchmarks.md "Latency"). Not part of
 * `npm test`: `npx mocha bench/rtt-probe.spec.ts`. Times 20 `space` exchanges ann → bob (a new stream each), then 20
 * shard `usage` requests through ann's share store of bob (a kept `/p2pbak/shard/1.1.0` stream after the first).
 */
import { Grid } from '../test/helpers/grid.js'
import { fetchSpace } from '../src/protocols/group.js'
import { peerIdFromString } from '@libp2p/peer-id'

describe('probe: one exchange over 50 ms of round trip', function () {
  this.timeout(120_000)
  it('times it', async () => {
    const grid = await Grid.start(['ann', 'bob'])
    try {
      await grid.formGroup()
      grid.faults('bob', { delayMs: 25 })
      const ann = grid.service('ann').net
      const bob = peerIdFromString(grid.service('bob').net.node.peerId.toString())
      await fetchSpace(ann.node, bob)
      const times: number[] = []
      for (let i = 0; i < 20; i++) { const t = performance.now(); await fetchSpace(ann.node, bob); times.push(performance.now() - t) }
      times.sort((a, b) => a - b)
      console.log(`space exchange over 50 ms RTT: median ${times[10]?.toFixed(1)} ms (min ${times[0]?.toFixed(1)}, max ${times[19]?.toFixed(1)})`)
      const store = ann.directory.storeFor(bob.toString())
      await store.usage()
      const kept: number[] = []
      for (let i = 0; i < 20; i++) { const t = performance.now(); await store.usage(); kept.push(performance.now() - t) }
      kept.sort((a, b) => a - b)
      console.log(`shard usage on a kept stream over 50 ms RTT: median ${kept[10]?.toFixed(1)} ms (min ${kept[0]?.toFixed(1)}, max ${kept[19]?.toFixed(1)})`)
    } finally {
      await grid.stop()
    }
  })
})
