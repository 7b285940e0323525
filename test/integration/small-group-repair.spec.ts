/**
 * Repair in a group where every other person holds a share (docs/placement-and-repair.md §5 P7, §9),
 * with four real daemons on 127.0.0.1: ann backs up, bob, cid and dee each hold one share of every
 * stripe (1+2, what chooseScheme picks for three other people). Bob's folder of ann's shares is wiped;
 * nobody else can take the rebuilt shares, so they go back to bob, and health returns to full. Then
 * a byte of one of cid's copies flips: the rebuilt share is written over the damaged copy (a replace,
 * signed by ann: shard.md §7.3), and health returns to full again.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { cliAt, filesUnder, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'

const AUDIT_MS = 1500
// a long grace: only the failed audits may cause repair here
const FLAGS = ['--audit-interval', String(AUDIT_MS), '--offline-grace', '600000']

interface Snap { health: number, verified: number, target: number }
interface Status { peers: Array<{ you: boolean, online: boolean, roles: string[] }>, snapshots: Snap[] }

describe('integration: repair in a small group (every other person holds a share)', function () {
  this.timeout(120_000)
  let dir: string
  const nodes: DaemonNode[] = []
  const byName = (name: string): DaemonNode => nodes.find(n => n.name === name) as DaemonNode
  const status = async (): Promise<Status> => (await cliAt(byName('ann'), 'status', '--json')).json<Status>()
  const fullyHealthy = async (): Promise<boolean> => {
    const s = await status()
    return s.snapshots.length > 0 && s.snapshots.every(x => x.target === 3 && x.verified === x.target && x.health === x.target)
  }
  const heldDir = (n: DaemonNode): string => join(n.home, 'held', byName('ann').userId)
  /** ann's share files (pack.index) on `n` */
  const sharesOn = (n: DaemonNode): string[] => filesUnder(join(heldDir(n), 'shares')).map(f => basename(f)).filter(f => !f.includes('.tmp')).sort()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-small-group-'))
    for (const name of ['ann', 'bob', 'cid', 'dee']) {
      const n: DaemonNode = { name, home: join(dir, name), userId: '' }
      const init = await cliAt(n, 'init', '--json')
      assert.equal(init.code, 0, init.stderr)
      n.userId = init.json<{ userId: string }>().userId
      nodes.push(n)
    }
    await Promise.all(nodes.map(async n => { await startDaemon(n, FLAGS) }))
  })
  after(async () => {
    for (const n of nodes) await stopDaemon(n)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a persister whose folder is wiped gets its shares back and health returns to full', async () => {
    const ann = byName('ann')
    assert.equal((await cliAt(ann, 'group', 'create', 'four', '--min-shard-age', '0')).code, 0)
    assert.equal((await cliAt(ann, 'contribute', '0')).code, 0)
    for (const f of nodes.slice(1)) {
      assert.equal((await cliAt(f, 'contribute', '1G')).code, 0)
      const inv = await cliAt(ann, 'group', 'invite', '--json')
      const j = await cliAt(f, 'join', inv.json<{ invite: string }>().invite)
      assert.equal(j.code, 0, j.stderr)
    }
    await waitFor('three persisters online at ann', async () => (await status()).peers.filter(p => !p.you && p.online && p.roles.includes('persister')).length === 3)
    const src = join(dir, 'src')
    mkdirSync(src)
    writeFileSync(join(src, 'photo.raw'), randomBytes(96 * 1024))
    writeFileSync(join(src, 'notes.txt'), 'small groups repair too\n'.repeat(2000))
    const b = await cliAt(ann, 'backup', src)
    assert.equal(b.code, 0, b.stderr)
    await waitFor('every share of the snapshot to pass a challenge', fullyHealthy)
    const bob = byName('bob')
    const before = sharesOn(bob)
    assert.ok(before.length > 0)
    // every other person holds one share of every stripe
    for (const n of nodes.slice(1)) assert.equal(sharesOn(n).length, before.length, `${n.name} holds ${sharesOn(n).length} shares`)

    const wiped = Date.now()
    rmSync(heldDir(bob), { recursive: true, force: true })
    await waitFor('health to return to full with bob holding his shares again', async () =>
      sharesOn(bob).join() === before.join() && await fullyHealthy(), 40_000)
    const tookMs = Date.now() - wiped
    // nothing was duplicated: each of the others still holds its own shares, no more
    for (const n of nodes.slice(2)) assert.equal(sharesOn(n).length, before.length)
    process.stdout.write(`      (health back to full ${(tookMs / 1000).toFixed(1)} s after the wipe; audit interval ${AUDIT_MS / 1000} s)\n`)
  })

  it('a holder\'s damaged copy is written over with the rebuilt share, signed by ann (nobody else can take it)', async () => {
    // runs after the wipe above: the group is formed and healthy; cid's copy of one share rots
    await waitFor('every share of the snapshot to pass a challenge', fullyHealthy)
    const cid = byName('cid')
    const held = sharesOn(cid)
    const name = held[0] as string
    const file = filesUnder(join(heldDir(cid), 'shares')).find(f => basename(f) === name) as string
    const good = readFileSync(file)
    const bad = Buffer.from(good)
    bad.writeUInt8(bad.readUInt8(bad.length - 100) ^ 0x40, bad.length - 100)
    writeFileSync(file, bad)
    const damagedAt = Date.now()
    // the share cannot go to anyone else (bob and dee hold the other two of its stripe): it goes back
    // over cid's damaged copy, which needs ann's signature (protocols/shard.md §7.3)
    let last = ''
    await waitFor('cid\'s copy to be the good share again and health full', async () => {
      const same = readFileSync(file).equals(good)
      const healthy = await fullyHealthy()
      const st = (await cliAt(byName('ann'), 'status', '--json')).json<{ snapshots: unknown, peers: unknown[], upkeep?: unknown, lastRound?: unknown }>()
      last = `copy good again: ${same}; ann's snapshots: ${JSON.stringify(st.snapshots)}; peers: ${JSON.stringify(st.peers)}; last round: ${JSON.stringify(st.lastRound ?? st.upkeep)}`
      return same && healthy
    }, 60_000).catch((err: Error) => { throw new Error(`${err.message}; ${last}`) })
    assert.deepEqual(sharesOn(cid), held, 'no share was added or lost on cid')
    process.stdout.write(`      (damaged copy replaced ${((Date.now() - damagedAt) / 1000).toFixed(1)} s after the byte flip)\n`)
  })
})
