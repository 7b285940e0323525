/**
 * Five homes on one machine, each running `p2pbak daemon` on 127.0.0.1, as a user sets them up:
 * one creates a group, the others contribute disk and join with invite codes, the first backs up a
 * folder. Shares land on the other people's nodes, not the publisher's; restore survives m stopped
 * persisters, fails clearly with one more; a new machine with only the phrase gets everything back.
 * Waits on files and polled state with deadlines, never on fixed sleeps.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { bytesUnder, startDaemon, stopDaemon, waitFor, type DaemonNode as Node } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'

describe('integration: a five-person friend group of real daemons', function () {
  this.timeout(240_000)
  let dir: string
  const nodes: Node[] = []
  const cli = async (n: Node, ...argv: string[]): Promise<CliResult> => await runCli(argv, { P2PBAK_HOME: n.home, P2PBAK_PASSPHRASE: 'pw' })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-group-'))
    for (const name of ['ann', 'bob', 'cid', 'dee', 'eve']) {
      const n: Node = { name, home: join(dir, name), userId: '' }
      const init = await cli(n, 'init', '--json')
      assert.equal(init.code, 0, init.stderr)
      n.userId = init.json<{ userId: string }>().userId
      if (name === 'ann') annPhrase = init.json<{ recoveryPhrase: string }>().recoveryPhrase
      nodes.push(n)
    }
    for (const n of nodes) await startDaemon(n)
  })
  after(async () => {
    for (const n of nodes) await stopDaemon(n)
    rmSync(dir, { recursive: true, force: true })
  })

  it('one creates the group, four contribute disk and join with invite codes', async () => {
    const [ann, ...friends] = nodes as [Node, ...Node[]]
    // a backup from before the group: it sits on ann's own disk (the embedded default)
    const early = join(dir, 'early')
    mkdirSync(early)
    writeFileSync(join(early, 'diary.txt'), 'before there were friends\n'.repeat(500))
    assert.equal((await cli(ann, 'backup', early)).code, 0)
    assert.ok(bytesUnder(join(ann.home, 'store', 'shares')) > 0)
    assert.equal((await cli(ann, 'group', 'create', 'friends')).code, 0)
    for (const f of friends) {
      assert.equal((await cli(f, 'contribute', '1G')).code, 0)
      const inv = await cli(ann, 'group', 'invite', '--json')
      assert.equal(inv.code, 0, inv.stderr)
      assert.equal(inv.json<{ newPerson: boolean }>().newPerson, true, 'the creator is an admin: its code brings a friend in')
      const j = await cli(f, 'join', inv.json<{ invite: string }>().invite, '--json')
      assert.equal(j.code, 0, j.stderr)
    }
    const members = (await cli(ann, 'group', 'members', '--json')).json<{ members: Array<{ userId: string }> }>()
    assert.deepEqual(members.members.map(m => m.userId).sort(), nodes.map(n => n.userId).sort())
    // every member learns the full roster, and the publisher sees four persisters online
    await waitFor('four persisters online at ann', async () => {
      const s = (await cli(ann, 'status', '--json')).json<{ peers: Array<{ you: boolean, online: boolean, roles: string[] }> }>()
      return s.peers.filter(p => !p.you && p.online && p.roles.includes('persister')).length === 4
    })
  })

  it('the backup from before the group moves into the group by itself (repair from zero)', async () => {
    const ann = nodes[0] as Node
    // placed on friends (if ann's rounds placed it while only two friends answered, 1+1, her disk
    // keeps its own copy too: placement-and-repair.md §4)
    await waitFor('ann\'s local packs to move to friends', async () => {
      const s = (await cli(ann, 'status', '--json')).json<{ snapshots: Array<{ localPacks: number }> }>()
      return s.snapshots.length > 0 && s.snapshots.every(x => x.localPacks === 0)
    })
    const target = join(dir, 'restore-early')
    const r = await cli(ann, 'restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(compareTrees(join(dir, 'early'), join(target, dir, 'early'), { mtimeResolutionNs: 1000n }), [])
  })

  it('a backup puts its shares on the other people\'s nodes, about (k+m)/k of the packed data', async () => {
    const ann = nodes[0] as Node
    const src = join(dir, 'src')
    mkdirSync(join(src, 'docs'), { recursive: true })
    writeFileSync(join(src, 'photo.raw'), randomBytes(6 * 1024 * 1024))
    writeFileSync(join(src, 'docs', 'notes.txt'), 'meet at noon\n'.repeat(1000))
    const heldBefore = nodes.slice(1).map(n => bytesUnder(join(n.home, 'held', ann.userId, 'shares')))
    const ownBefore = bytesUnder(join(ann.home, 'store', 'shares'))
    const b = await cli(ann, 'backup', src, '--json')
    assert.equal(b.code, 0, b.stderr)
    const packed = b.json<{ bytesAdded: number }>().bytesAdded
    // with four friends (1+2), nothing the group holds stays on ann's disk
    assert.equal(bytesUnder(join(ann.home, 'store', 'shares')), ownBefore)
    const held = nodes.slice(1).map((n, i) => bytesUnder(join(n.home, 'held', ann.userId, 'shares')) - (heldBefore[i] as number))
    assert.ok(held.every(h => h > 0) || held.filter(h => h > 0).length >= 3, `held ${held.join(',')}`)
    const status = (await cli(ann, 'status', '--json')).json<{ snapshots: Array<{ canLose: number, health: number }> }>() // oldest first
    const s = status.snapshots.at(-1) as { canLose: number, health: number }
    const k = s.health - s.canLose
    const total = held.reduce((a, x) => a + x, 0)
    const expected = packed * s.health / k
    assert.ok(total > expected * 0.9 && total < expected * 1.3, `held ${total}, packed ${packed}, k ${k}, n ${s.health}`)
  })

  it('restore is byte-exact with m persisters stopped, and fails clearly with one more', async () => {
    const ann = nodes[0] as Node
    const src = join(dir, 'src')
    const health = async (): Promise<{ canLose: number, readable: boolean }> =>
      (await cli(ann, 'status', '--json')).json<{ snapshots: Array<{ canLose: number, readable: boolean }> }>().snapshots.at(-1) as { canLose: number, readable: boolean }
    const m = (await health()).canLose
    assert.ok(m >= 1, `canLose ${m}`)
    const holders = nodes.slice(1).filter(n => bytesUnder(join(n.home, 'held', ann.userId, 'shares')) > 0)
    const stopped: Node[] = []
    // stop persisters that hold our shares until the snapshot can lose no more: at most m of them
    while ((await health()).canLose > 0) {
      const n = holders[stopped.length] as Node
      await stopDaemon(n)
      stopped.push(n)
    }
    // (stopping a persister that holds none of this snapshot's shares does not lower canLose, so
    // the loop may stop more than m nodes; what matters is that restore works at canLose 0)
    const target = join(dir, 'restore-degraded')
    const r = await cli(ann, 'restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
    // then until some pack has fewer than k shares left: restore says what it cannot restore and why
    while ((await health()).readable) {
      const n = holders[stopped.length] as Node
      await stopDaemon(n)
      stopped.push(n)
    }
    const bad = await cli(ann, 'restore', 'latest', '--target', join(dir, 'restore-too-few'))
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /restore-too-few/)
    assert.match(bad.stderr, /shares/)
    for (const n of stopped) await startDaemon(n)
    await waitFor('ann to see everyone again', async () => (await health()).canLose === m)
  })

  it('a new machine with only the recovery phrase and an invite restores the latest snapshot', async () => {
    const [ann, bob] = nodes as [Node, Node]
    const src = join(dir, 'src')
    // all ann kept of her old machine: the phrase her init printed
    const phraseFile = join(dir, 'phrase.txt')
    writeFileSync(phraseFile, annPhrase)
    const fresh: Node = { name: 'ann-new', home: join(dir, 'ann-new'), userId: ann.userId }
    const rec = await cli(fresh, 'recover', '--phrase-file', phraseFile, '--json')
    assert.equal(rec.code, 0, rec.stderr)
    await startDaemon(fresh)
    nodes.push(fresh)
    await waitFor('ann\'s friends to be reachable', async () => (await cli(bob, 'status', '--json')).code === 0)
    const inv = await cli(bob, 'group', 'invite', '--json')
    assert.equal(inv.code, 0, inv.stderr)
    // bob is not an admin: his code adds a device of someone on the roster (ann's new machine), not a new person
    assert.equal(inv.json<{ newPerson: boolean }>().newPerson, false)
    const j = await cli(fresh, 'join', inv.json<{ invite: string }>().invite)
    assert.equal(j.code, 0, `${j.stderr}\ninvite from bob: ${inv.stdout}`)
    await waitFor('the snapshot to be listed on the new machine', async () => (await cli(fresh, 'snapshots', '--json')).json<unknown[]>().length >= 1)
    const target = join(dir, 'restore-new-machine')
    const r = await cli(fresh, 'restore', 'latest', '--target', target)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('publish: the daemon backs the folder up on its own', async () => {
    const ann = nodes[0] as Node
    const src = join(dir, 'src')
    const p = await cli(ann, 'publish', src, '--every', '1h')
    assert.equal(p.code, 0, p.stderr)
    await waitFor('a published snapshot', async () => (await cli(ann, 'snapshots', '--json')).json<Array<{ tags: string[] }>>().some(s => s.tags.includes('published')))
  })

  it('removing a member re-places what they held; their node can no longer use the group', async () => {
    const ann = nodes[0] as Node
    const src = join(dir, 'src')
    const holders = nodes.slice(1, 5).filter(n => bytesUnder(join(n.home, 'held', ann.userId, 'shares')) > 0)
    const victim = holders[0] as Node
    const r = await cli(ann, 'group', 'remove', victim.userId, '--json')
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.json<{ sharesReplaced: number }>().sharesReplaced >= 1, r.stdout)
    const members = (await cli(ann, 'group', 'members', '--json')).json<{ members: Array<{ userId: string }> }>().members
    assert.ok(!members.some(m => m.userId === victim.userId))
    // the removed member's node goes away; everything is still restorable from the others
    await stopDaemon(victim)
    const target = join(dir, 'restore-after-remove')
    const res = await cli(ann, 'restore', 'latest', '--target', target)
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  })

  it('the new machine revokes the lost one: it leaves the roster and can no longer use the group', async () => {
    const ann = nodes[0] as Node
    const fresh = nodes.find(n => n.name === 'ann-new') as Node
    const oldDevice = JSON.parse(readFileSync(join(ann.home, 'node.json'), 'utf8')) as { peerId: string }
    const rd = await cli(fresh, 'group', 'remove-device', oldDevice.peerId, '--json')
    assert.equal(rd.code, 0, rd.stderr)
    const members = (await cli(fresh, 'group', 'members', '--json')).json<{ members: Array<{ userId: string, devices: Array<{ peerId: string }> }> }>().members
    const annDevices = members.find(m => m.userId === ann.userId)?.devices.map(d => d.peerId) ?? []
    assert.ok(!annDevices.includes(oldDevice.peerId))
    assert.equal(annDevices.length, 1)
  })
})

let annPhrase = ''
