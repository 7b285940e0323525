/**
 * The first minute of a friend group, with the settings a user gets (no shortened intervals) and in
 * the order a person types the commands: five people start their daemons, one creates the group and
 * invites the others, and the first backup runs right after the last `join`. It must go to friends
 * at once and say so; and a new machine with only the recovery phrase sees every snapshot right after
 * its own `join`, without waiting for a refresh round.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { startDaemon, stopDaemon, type DaemonNode as Node } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'

interface Placement { packs: number, local: number, people: number, schemes: Array<{ k: number, m: number, packs: number }>, localReason: string | null, recordPeople: number | null }
interface SnapshotStatus { id: string, local: boolean, localPacks: number, packs: number, canLose: number }

describe('integration: the first minute of a group, default settings', function () {
  this.timeout(180_000)
  let dir: string
  let annPhrase = ''
  const nodes: Node[] = []
  const cli = async (n: Node, ...argv: string[]): Promise<CliResult> => await runCli(argv, { P2PBAK_HOME: n.home, P2PBAK_PASSPHRASE: 'pw' })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-first-'))
    for (const name of ['ann', 'bob', 'cid', 'dee', 'eve']) {
      const n: Node = { name, home: join(dir, name), userId: '' }
      const init = await cli(n, 'init', '--json')
      assert.equal(init.code, 0, init.stderr)
      n.userId = init.json<{ userId: string }>().userId
      if (name === 'ann') annPhrase = init.json<{ recoveryPhrase: string }>().recoveryPhrase
      nodes.push(n)
    }
    for (const n of nodes) await startDaemon(n, [], { defaults: true })
  })
  after(async () => {
    for (const n of nodes) await stopDaemon(n)
    rmSync(dir, { recursive: true, force: true })
  })

  it('group create, invite, join, then backup at once: the data is on friends and the summary says so', async () => {
    const [ann, ...friends] = nodes as [Node, ...Node[]]
    assert.equal((await cli(ann, 'group', 'create', 'friends')).code, 0)
    for (const f of friends) {
      const inv = await cli(ann, 'group', 'invite', '--json')
      assert.equal(inv.code, 0, inv.stderr)
      const j = await cli(f, 'join', inv.json<{ invite: string }>().invite)
      assert.equal(j.code, 0, j.stderr)
    }
    const src = join(dir, 'src')
    mkdirSync(join(src, 'photos'), { recursive: true })
    writeFileSync(join(src, 'notes.txt'), 'the first backup after join\n'.repeat(2000))
    for (let i = 0; i < 3; i++) writeFileSync(join(src, 'photos', `p${i}.jpg`), randomBytes(3 * 1024 * 1024))
    // no wait of any kind between the last join and the backup
    const b = await cli(ann, 'backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    const placement = b.json<{ placement: Placement }>().placement
    assert.ok(placement.packs > 0, JSON.stringify(placement))
    assert.equal(placement.local, 0, `packs kept local: ${placement.localReason ?? ''}`)
    // each share of a stripe on a different friend: as many people as the widest stripe has shares
    assert.ok(placement.schemes.length > 0, JSON.stringify(placement))
    for (const s of placement.schemes) assert.ok(s.m >= 1, `a scheme that can lose a friend, got ${s.k}+${s.m}`)
    // the snapshot record (what a new machine needs to find the backup) is on every friend
    assert.equal(placement.recordPeople, 4, JSON.stringify(placement))
    assert.equal(placement.people, Math.max(...placement.schemes.map(s => s.k + s.m)), JSON.stringify(placement))
    // the text summary tells a person the same
    const again = join(src, 'more.txt')
    writeFileSync(again, randomBytes(64 * 1024))
    const text = await cli(ann, 'backup', src)
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /pack\(s\) placed on \d friend\(s\) \(\d+ as \d\+\d/)
    assert.doesNotMatch(text.stdout, /this disk only/)
    assert.match(text.stdout, /the snapshot record is on this disk and on 4 friend\(s\)/)
    // status agrees: no snapshot is local only
    const st = await cli(ann, 'status', '--json')
    assert.equal(st.code, 0, st.stderr)
    const snaps = st.json<{ snapshots: SnapshotStatus[] }>().snapshots
    assert.equal(snaps.length, 2)
    for (const s of snaps) {
      assert.equal(s.local, false)
      assert.equal(s.localPacks, 0)
      assert.ok(s.canLose >= 1, JSON.stringify(s))
    }
  })

  it('a new machine: recover, daemon, join, then snapshots and restore at once', async () => {
    const [ann, bob] = nodes as [Node, Node]
    const phraseFile = join(dir, 'phrase.txt')
    writeFileSync(phraseFile, annPhrase)
    const fresh: Node = { name: 'ann-new', home: join(dir, 'ann-new'), userId: ann.userId }
    const rec = await cli(fresh, 'recover', '--phrase-file', phraseFile)
    assert.equal(rec.code, 0, rec.stderr)
    await startDaemon(fresh, [], { defaults: true })
    nodes.push(fresh)
    const inv = await cli(bob, 'group', 'invite', '--json')
    assert.equal(inv.code, 0, inv.stderr)
    const j = await cli(fresh, 'join', inv.json<{ invite: string }>().invite)
    assert.equal(j.code, 0, j.stderr)
    const list = await cli(fresh, 'snapshots', '--json')
    assert.equal(list.code, 0, list.stderr)
    assert.equal(list.json<unknown[]>().length, 2, list.stdout)
    const target = join(dir, 'restored')
    const r = await cli(fresh, 'restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    const src = join(dir, 'src')
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('alone in a group, a backup says it stayed on this disk and why', async () => {
    const solo: Node = { name: 'solo', home: join(dir, 'solo'), userId: '' }
    assert.equal((await cli(solo, 'init')).code, 0)
    await startDaemon(solo, [], { defaults: true })
    nodes.push(solo)
    assert.equal((await cli(solo, 'group', 'create', 'just-me')).code, 0)
    const src = join(dir, 'solo-src')
    mkdirSync(src)
    writeFileSync(join(src, 'a.txt'), randomBytes(10_000))
    const b = await cli(solo, 'backup', src)
    assert.equal(b.code, 0, b.stderr)
    assert.match(b.stdout, /kept on this disk only: you are the only member of the group/)
    const st = await cli(solo, 'status')
    assert.match(st.stdout, /local only/)
    assert.match(st.stdout, /packs stay on this disk because you are the only member/)
  })
})
