/**
 * The friend group on the fault grid (test/helpers/grid.ts): real node services in this process,
 * behind fault-injecting proxies, on one manual clock. What needs days of real time (the offline
 * grace, audit intervals) runs by moving the clock and asking for a round.
 */
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Grid, ManualClock } from '../helpers/grid.js'
import { filesUnder } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'

const HOUR = 3600_000

interface SnapshotStatus { canLose: number, health: number, target: number, local: boolean, readable: boolean, packs: number, ownCopies: number }
interface Placement { packs: number, local: number, people: number, schemes: Array<{ k: number, m: number }>, transfers: { attempts: number, retries: number, recovered: number, gaveUp: number } | null }

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

  it('a friend still taking the roster from its join answers "not a member" for a moment: the backup asks again and places on it', async () => {
    grid = await Grid.start(['ann', 'bob'])
    await grid.formGroup()
    // bob's side of a join, between the inviter's answer and bob keeping the roster (what a refresh
    // of ann's that runs during bob's join meets); ann's round asks bob then
    const bobState = grid.service('bob').net.state
    const roster = bobState.file.roster
    bobState.file.roster = null
    await grid.round('ann')
    bobState.file.roster = roster
    const b = await grid.ok('ann', 'backup', sample(join(grid.dir, 'src'), 1), '--json')
    const placement = b.json<{ placement: Placement & { localReason: string | null } }>().placement
    assert.equal(placement.local, 0, `kept on this disk: ${placement.localReason ?? ''}`)
    assert.equal(placement.people, 1)
  })

  /** ann's own copies are lost (her shares folder, with her node stopped): she restores `src` from friends, byte-exact. */
  async function restoreWithoutOwnCopies (src: string): Promise<void> {
    await grid.stopNode('ann')
    rmSync(join(grid.node('ann').dir, 'store', 'shares'), { recursive: true, force: true })
    await grid.startNode('ann')
    const target = join(grid.dir, 'restored')
    await grid.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  }

  it('two people: a backup made before the group goes to the one friend (1+0) at the next round, and its copy stays here', async () => {
    grid = await Grid.start(['ann', 'bob'])
    const src = sample(join(grid.dir, 'src'), 1)
    // the embedded default: no group yet, every pack on ann's disk
    const before = (await grid.ok('ann', 'backup', src, '--json')).json<{ placement: Placement }>().placement
    assert.equal(before.local, before.packs)
    await grid.formGroup()
    const round = await grid.round('ann')
    assert.deepEqual(round.errors, [])
    assert.equal(round.placedLocal?.moved, before.packs, JSON.stringify(round.placedLocal))
    const status = (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
    assert.equal(status.local, false, JSON.stringify(status))
    assert.equal(status.ownCopies, status.packs, 'with one friend, a copy of each pack stays on this disk')
    // ann's own copies are lost (a damaged folder): the restore reads bob's shares
    await restoreWithoutOwnCopies(src)
  })

  it('two people, then a third joins: at the next round each 1+0 pack gets a second share on the newcomer (1+1), the copy stays, and the newcomer\'s shares alone restore it', async () => {
    grid = await Grid.start(['ann', 'bob', 'cid'])
    const src = sample(join(grid.dir, 'src'), 1)
    const packs = (await grid.ok('ann', 'backup', src, '--json')).json<{ placement: Placement }>().placement.packs
    await grid.ok('ann', 'group', 'create', 'two, then three')
    await grid.ok('bob', 'join', (await grid.ok('ann', 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    assert.equal((await grid.round('ann')).placedLocal?.moved, packs, 'the packs go to bob as 1+0')
    await grid.ok('cid', 'join', (await grid.ok('ann', 'group', 'invite', '--json')).json<{ invite: string }>().invite)
    const round = await grid.round('ann')
    assert.deepEqual(round.errors, [])
    assert.equal(round.placedLocal?.widened, packs, JSON.stringify(round.placedLocal))
    const status = (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
    assert.equal(status.ownCopies, status.packs, 'with two friends, a copy of each pack stays on this disk')
    // bob's machine and ann's own copies are lost: cid's shares restore it
    await grid.stopNode('bob')
    await restoreWithoutOwnCopies(src)
  })

  it('a friend that stalls with its connection open (a suspended laptop) holds a backup no longer than the patience, and gets no share of it', async () => {
    // three friends: a stripe for all three (1+2) would need dee
    grid = await Grid.start(['ann', 'bob', 'cid', 'dee'], { readyPatienceMs: 1500 })
    await grid.formGroup()
    await grid.round('ann')
    // dee's laptop is suspended: its connections stay open, nothing comes back; ann's round asks
    // every friend again, and dee's answer never comes (its space request would take up to 45 s)
    grid.faults('dee', { stall: true })
    const round = grid.round('ann')
    const src = sample(join(grid.dir, 'src'), 1)
    const t0 = Date.now()
    const b = await grid.ok('ann', 'backup', src, '--json')
    const took = Date.now() - t0
    const placement = b.json<{ placement: Placement & { localReason: string | null } }>().placement
    assert.equal(placement.local, 0, `kept on this disk: ${placement.localReason ?? ''}`)
    assert.equal(placement.people, 2, 'placed on bob and cid (a narrower stripe, and ann keeps her own copy until dee answers again)')
    assert.deepEqual(filesUnder(join(grid.node('dee').dir, 'held')).filter(f => !f.endsWith('/VERSION')), [], 'dee was sent nothing')
    // far below what the stalled refresh takes (two 20 s deadlines): the command did not wait for it
    assert.ok(took < 30_000, `the backup took ${took} ms`)
    grid.faults('dee', {})
    await round
    const target = join(grid.dir, 'restored')
    await grid.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

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

  for (const people of [3, 4]) {
    it(`${people} people, every other one holds a share: a wiped folder is back to full health within two audit intervals (24 h each, virtual time)`, async () => {
      const names = ['ann', 'bob', 'cid', 'dee'].slice(0, people)
      grid = await Grid.start(names)
      await grid.formGroup()
      const src = sample(join(grid.dir, 'src'), 1)
      const placement = (await grid.ok('ann', 'backup', src, '--json')).json<{ placement: Placement }>().placement
      const scheme = placement.schemes[0] as { k: number, m: number }
      assert.equal(scheme.k + scheme.m, people - 1, `every other person holds a share: ${JSON.stringify(placement)}`)
      const health = async (): Promise<SnapshotStatus> => (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
      // the first audits pass
      grid.clock.advance(24 * HOUR)
      await grid.round('ann')
      // bob's folder of ann's shares is wiped (a disk replaced, a folder deleted by mistake)
      rmSync(join(grid.node('bob').dir, 'held', grid.node('ann').userId), { recursive: true, force: true })
      for (let interval = 1; interval <= 2; interval++) {
        grid.clock.advance(24 * HOUR)
        for (let r = 0; r < 3; r++) await grid.roundAll()
      }
      const after = await health()
      assert.equal(after.health, after.target, JSON.stringify(after))
      assert.equal(after.canLose, scheme.m, JSON.stringify(after))
      // nobody else could take them: the rebuilt shares went back to bob
      assert.ok(filesUnder(join(grid.node('bob').dir, 'held', grid.node('ann').userId, 'shares')).length > 0, 'bob holds ann\'s shares again')
      const target = join(grid.dir, 'restored')
      await grid.ok('ann', 'restore', 'latest', '--target', target)
      assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
    })
  }

  for (const [fault, faults] of [
    ['resets 3 % of the chunks it carries', { reset: 0.03 }],
    ['corrupts 2 % of the chunks it carries (Noise drops the connection)', { corrupt: 0.02 }]
  ] as const) {
    it(`two friends whose links ${fault}: backup and restore complete byte-exact, and the summary counts the retries`, async () => {
      grid = await Grid.start(['ann', 'bob', 'cid', 'dee', 'eve'], { seed: 7 })
      await grid.formGroup()
      const src = sample(join(grid.dir, 'src'), 6)
      // two of the four friends: at least one of them holds a share of every stripe (1+2)
      grid.faults('bob', faults)
      grid.faults('cid', faults)
      const cut = (): number => ['bob', 'cid'].reduce((n, name) => n + grid.node(name).proxy.stats.resets + grid.node(name).proxy.stats.corrupted, 0)
      const before = cut()
      const b = await grid.ok('ann', 'backup', src, '--json')
      const placement = b.json<{ placement: Placement }>().placement
      assert.equal(placement.local, 0, JSON.stringify(placement))
      // the faults were met; a request they cut was retried and counted, but a connection cut between
      // requests costs none (a share's parts share a kept stream, framing.md §2.1), so retries may be 0
      assert.ok(cut() > before, 'the links were cut during the backup')
      assert.ok(placement.transfers !== null && placement.transfers.attempts > 0, `the summary counts the transfers: ${JSON.stringify(placement.transfers)}`)
      const text = await grid.ok('ann', 'backup', src)
      assert.match(text.stdout, /no new data|placed on/)
      const target = join(grid.dir, 'restored')
      await grid.ok('ann', 'restore', 'latest', '--target', target)
      assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
      await grid.ok('ann', 'check', '--read-data')
    })
  }

  it('a backup while only two of four friends answer keeps its own copy; once they answer the stripe is widened, the copy goes, and it survives losing two friends', async () => {
    // the grid's clock starts now: a persister dates the shares it holds by their files' times
    grid = await Grid.start(['ann', 'bob', 'cid', 'dee', 'eve'], { clock: new ManualClock(Date.now()) })
    await grid.formGroup()
    grid.faults('dee', { refuse: true })
    grid.faults('eve', { refuse: true })
    const src = sample(join(grid.dir, 'src'), 2)
    const placement = (await grid.ok('ann', 'backup', src, '--json')).json<{ placement: Placement & { ownCopies: number } }>().placement
    assert.deepEqual(placement.schemes.map(({ k, m }) => ({ k, m })), [{ k: 1, m: 1 }], JSON.stringify(placement))
    const ownStore = join(grid.node('ann').dir, 'store', 'shares')
    assert.ok(filesUnder(ownStore).length > 0, 'a 1+1 stripe keeps its own copy on ann\'s disk')
    const status = async (): Promise<SnapshotStatus> => (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
    assert.equal((await status()).target, 2)
    // bob and cid, the two holders, are cut off too: the copy on ann's disk keeps the snapshot readable
    grid.faults('bob', { refuse: true })
    grid.faults('cid', { refuse: true })
    await grid.round('ann')
    const alone = await status()
    assert.deepEqual({ health: alone.health, readable: alone.readable, ownCopies: alone.ownCopies }, { health: 0, readable: true, ownCopies: alone.packs }, JSON.stringify(alone))
    const early = join(grid.dir, 'restored-alone')
    await grid.ok('ann', 'restore', 'latest', '--target', early)
    assert.deepEqual(compareTrees(src, join(early, src), { mtimeResolutionNs: 1000n }), [])
    // all four answer again: ann's next round widens the stripe from its own copy
    for (const n of ['bob', 'cid', 'dee', 'eve']) grid.faults(n, {})
    const round = await grid.round('ann')
    assert.deepEqual(round.errors, [])
    assert.equal(round.placedLocal?.widened, placement.packs, JSON.stringify(round.placedLocal))
    assert.deepEqual(filesUnder(ownStore), [], 'the own copy is gone')
    const after = await status()
    assert.deepEqual({ target: after.target, canLose: after.canLose }, { target: 3, canLose: 2 }, JSON.stringify(after))
    // the old stripe's shares are released once the group's retention (30 days by default) lets
    // friends delete them: then three friends hold one share of each pack, nobody more
    grid.clock.advance(31 * 24 * HOUR)
    for (let r = 0; r < 2; r++) await grid.roundAll()
    const held = grid.names.filter(n => n !== 'ann').map(n => filesUnder(join(grid.node(n).dir, 'held', grid.node('ann').userId, 'shares')).length)
    assert.equal(held.filter(c => c > 0).length, 3, `shares held: ${held.join(', ')}`)
    assert.ok(held.every(c => c <= placement.packs), `shares held: ${held.join(', ')}`)
    // two of the three holders are lost: the third restores it
    const holders = grid.names.filter((n, i) => n !== 'ann' && (held[i - 1] ?? 0) > 0)
    for (const n of holders.slice(0, 2)) await grid.stopNode(n)
    const target = join(grid.dir, 'restored')
    await grid.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('a pack kept on this disk moves to friends over a link slower than a round\'s budget: the pack on its way is not cut off and started over', async () => {
    // the round's budget shrunk to 1 s, the upload limited so that a pack's three shares take seconds
    grid = await Grid.start(['ann', 'bob', 'cid', 'dee'], { placeBudgetMs: 1000 })
    await grid.formGroup()
    for (const n of ['bob', 'cid', 'dee']) grid.faults(n, { refuse: true })
    const src = sample(join(grid.dir, 'src'), 1)
    const placement = (await grid.ok('ann', 'backup', src, '--json')).json<{ placement: Placement }>().placement
    assert.equal(placement.local, placement.packs, JSON.stringify(placement))
    for (const n of ['bob', 'cid', 'dee']) grid.faults(n, {})
    const ann = grid.service('ann')
    ann.net.applySettings({ ...ann.settings, limitUploadKiB: 768 })
    // a command typed while a pack is on its way waits no longer than the budget: the pack gives way
    const first = grid.round('ann') // queued at once: the command below waits behind it
    const typed = Date.now()
    await grid.ok('ann', 'snapshots')
    const waited = Date.now() - typed
    const gaveWay = await first
    assert.deepEqual(gaveWay.errors, [])
    assert.equal(gaveWay.placedLocal, undefined, `the round did not give way: the command waited ${waited} ms, the round placed ${JSON.stringify(gaveWay.placedLocal)}`)
    // each round starts a pack if its budget is not spent yet, and that pack arrives (before, every
    // attempt was cut off at the budget and the pack never left)
    const rounds: Array<{ ms: number, moved: number, failed: number }> = []
    for (let r = 0; r < 6 && filesUnder(join(grid.node('ann').dir, 'store', 'shares')).length > 0; r++) {
      const started = Date.now() // the round's own duration is in the grid's virtual time
      const round = await grid.round('ann')
      assert.deepEqual(round.errors, [])
      rounds.push({ ms: Date.now() - started, moved: round.placedLocal?.moved ?? 0, failed: round.placedLocal?.failed ?? 0 })
    }
    assert.deepEqual(filesUnder(join(grid.node('ann').dir, 'store', 'shares')), [], `every pack left ann's disk: ${JSON.stringify(rounds)}`)
    assert.ok(rounds.some(r => r.moved > 0 && r.ms > 2000), `a round moved a pack for longer than its budget: ${JSON.stringify(rounds)}`)
    const status = (await grid.ok('ann', 'status', '--json')).json<{ snapshots: SnapshotStatus[] }>().snapshots[0] as SnapshotStatus
    assert.equal(status.local, false)
    const target = join(grid.dir, 'restored')
    await grid.ok('ann', 'restore', 'latest', '--target', target)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })
})
