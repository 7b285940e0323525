/**
 * The friend group on the fault grid (test/helpers/grid.ts): real node services in this process,
 * behind fault-injecting proxies, on one manual clock. What needs days of real time (the offline
 * grace, audit intervals) runs by moving the clock and asking for a round.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Grid } from '../helpers/grid.js'
import { compareTrees } from '../helpers/tree-compare.js'

const HOUR = 3600_000

interface SnapshotStatus { canLose: number, health: number, target: number, local: boolean }
interface Placement { packs: number, local: number, people: number, schemes: Array<{ k: number, m: number }> }

function sample (dir: string, mib: number): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'notes.txt'), 'a line of notes\n'.repeat(4000))
  writeFileSync(join(dir, 'photo.raw'), randomBytes(mib * 1024 * 1024))
  return dir
}

describe('integration: the fault grid', function () {
  this.timeout(120_000)
  let grid: Grid

  afterEach(async () => { await grid?.stop() })

  it('a friend gone past the offline grace (72 h of virtual time) is replaced, and health is full again', async () => {
    grid = await Grid.start(['ann', 'bob', 'cid', 'dee', 'eve'])
    await grid.formGroup()
    const src = sample(join(grid.dir, 'src'), 2)
    const b = await grid.ok('ann', 'backup', src, '--json')
    const placement = b.json<{ placement: Placement }>().placement
    assert.equal(placement.local, 0)
    const { m } = placement.schemes[0] as { k: number, m: number }
    const health = async (): Promise<SnapshotStatus> => (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
    assert.equal((await health()).canLose, m)
    // a holder of one of ann's shares disappears (its disk, its home, its network: nobody knows)
    const holders = (await grid.ok('ann', 'status', '--json')).json<{ peers: Array<{ name: string, peerId: string, usedForUsBytes: number, you: boolean }> }>().peers
    const gone = grid.names.find(n => n !== 'ann' && holders.some(p => !p.you && p.usedForUsBytes > 0 && p.peerId === grid.service(n).net.peerId))
    assert.ok(gone !== undefined, 'some friend holds a share')
    grid.faults(gone, { refuse: true })
    await grid.round('ann')
    assert.equal((await health()).canLose, m - 1)
    // a day later: still within the grace, nothing is uploaded
    grid.clock.advance(24 * HOUR)
    const early = await grid.round('ann')
    assert.deepEqual(early.errors, [])
    assert.equal((await health()).canLose, m - 1)
    // past the 72 h grace: the next round rebuilds its shares on a friend who holds none
    grid.clock.advance(49 * HOUR)
    const late = await grid.round('ann')
    assert.deepEqual(late.errors, [])
    const after = await health()
    assert.equal(after.canLose, m, JSON.stringify(after))
    assert.equal(after.health, after.target)
    // and everything restores from the friends that are left
    const target = join(grid.dir, 'restored')
    await grid.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })
})
