/**
 * A write-only machine (issue 14, item 5), as a user sets it up: alice makes a group with two friends,
 * exports a write-only key on her laptop, sets up a server from it, the server joins through an
 * invite and backs up; its data reaches the friends. On the server, restore, ls, snapshots, check and
 * forget --prune fail with ERR_WRITE_ONLY and say what to do; alice's laptop lists the server's
 * snapshots and restores them byte-exact. Then a delete of alice's share sent to a friend from the
 * server's device key, carrying even a valid signature of alice's user key, is refused by the friend
 * (the roster marks that device write-only). Between the two, alice forgets the server's snapshots
 * and prunes: the server's next backup stores its data anew rather than against condemned packs.
 * Real daemons; waits poll with deadlines.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { bytesUnder, cliAt, filesUnder, startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import { compareTrees } from '../helpers/tree-compare.js'
import type { CliResult } from '../helpers/cli.js'
import { Home } from '../../src/node/home.js'
import { createP2pNode } from '../../src/node/libp2p-node.js'
import { loadDeviceKey } from '../../src/node/device-key.js'
import { RemoteShareStore } from '../../src/protocols/shard/index.js'
import { asPackId } from '../../src/ids.js'
import { fromHex } from '../../src/util/bytes.js'

function ok (r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r
}

function refusedWriteOnly (r: CliResult, what: string): void {
  assert.notEqual(r.code, 0, `${what} should fail on a write-only machine: ${r.stdout}`)
  const error = r.json<{ error: { code: string, message: string } }>().error
  assert.equal(error.code, 'ERR_WRITE_ONLY', `${what}: ${error.message}`)
  assert.match(error.message, /write-only machine/)
  assert.match(error.message, /recover --phrase-file/, `${what} says what to do instead`)
}

describe('e2e: a write-only machine backs up but cannot read, list, forget or delete', function () {
  this.timeout(300_000)
  let dir: string
  const nodes = new Map<string, DaemonNode>()
  const node = (n: string): DaemonNode => nodes.get(n) as DaemonNode

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-writeonly-'))
    for (const n of ['alice', 'bob', 'cid', 'server']) nodes.set(n, { name: n, home: join(dir, n), userId: '' })
  })

  after(async () => {
    for (const n of nodes.values()) await stopDaemon(n)
    rmSync(dir, { recursive: true, force: true })
  })

  it('is set up from an exported key, joins, backs up; the owner restores its snapshots; friends refuse its deletes', async () => {
    for (const n of ['alice', 'bob', 'cid']) ok(await cliAt(node(n), 'init', '--json'), `${n} init`)
    for (const n of ['alice', 'bob', 'cid']) await startDaemon(node(n))
    // retention 0: so that only the write-only mark can refuse the delete at the end
    ok(await cliAt(node('alice'), 'group', 'create', 'friends', '--min-shard-age', '0'), 'group create')
    for (const n of ['bob', 'cid']) {
      const inv = ok(await cliAt(node('alice'), 'group', 'invite', '--json'), 'invite').json<{ invite: string }>().invite
      ok(await cliAt(node(n), 'join', inv), `${n} join`)
    }

    // on alice's laptop: the key of the new machine (no secret key of alice's in it)
    const keyFile = join(dir, 'server.key')
    const exported = ok(await cliAt(node('alice'), 'export-write-only-key', '--out', keyFile, '--name', 'server', '--json'), 'export').json<{ peerId: string, userId: string }>()
    assert.equal(JSON.parse(readFileSync(keyFile, 'utf8')).format, 'p2pbak-write-only-key')

    // on the server
    const setUp = ok(await cliAt(node('server'), 'init', '--write-only', '--from-key-file', keyFile, '--json'), 'init --write-only').json<{ peerId: string, userId: string, writeOnly: boolean }>()
    assert.deepEqual([setUp.peerId, setUp.userId, setUp.writeOnly], [exported.peerId, exported.userId, true])
    rmSync(keyFile)
    await startDaemon(node('server'))
    const inv = ok(await cliAt(node('alice'), 'group', 'invite', '--json'), 'invite').json<{ invite: string }>().invite
    ok(await cliAt(node('server'), 'join', inv), 'server join')

    const src = join(dir, 'srv-data')
    mkdirSync(join(src, 'db'), { recursive: true })
    writeFileSync(join(src, 'db', 'dump.sql'), randomBytes(3 << 20))
    writeFileSync(join(src, 'notes.txt'), 'the first version\n')
    const heldBefore = bytesUnder(join(node('bob').home, 'held')) + bytesUnder(join(node('cid').home, 'held'))
    const first = ok(await cliAt(node('server'), 'backup', src, '--json'), 'first backup').json<{ snapshotId: string }>().snapshotId
    writeFileSync(join(src, 'notes.txt'), 'the second version\n')
    const second = ok(await cliAt(node('server'), 'backup', src, '--json'), 'second backup').json<{ snapshotId: string, bytesAdded?: number }>()
    await waitFor('the backups to reach the friends', () => bytesUnder(join(node('bob').home, 'held')) + bytesUnder(join(node('cid').home, 'held')) > heldBefore + (3 << 20), 60_000)

    // what it cannot do, each with an error that says what to do instead
    const target = join(dir, 'not-here')
    refusedWriteOnly(await cliAt(node('server'), 'restore', 'latest', '--target', target, '--json'), 'restore')
    refusedWriteOnly(await cliAt(node('server'), 'ls', 'latest', '--json'), 'ls')
    refusedWriteOnly(await cliAt(node('server'), 'snapshots', '--json'), 'snapshots')
    refusedWriteOnly(await cliAt(node('server'), 'check', '--json'), 'check')
    refusedWriteOnly(await cliAt(node('server'), 'forget', '--keep-last', '1', '--prune', '--json'), 'forget --prune')
    assert.equal(existsSync(target), false)

    // alice's laptop sees the server's snapshots and restores them byte-exact
    const snaps = ok(await cliAt(node('alice'), 'snapshots', '--json'), 'alice snapshots').json<Array<{ id: string, host: string }>>()
    const ids = snaps.map(s => s.id)
    assert.ok(ids.includes(first) && ids.includes(second.snapshotId), `alice lists ${ids.join(', ')}`)
    const out = join(dir, 'restored')
    ok(await cliAt(node('alice'), 'restore', second.snapshotId, '--target', out), 'alice restore')
    assert.deepEqual(compareTrees(src, join(out, src), { mtimeResolutionNs: 1000n }), [])

    // alice forgets both of the server's snapshots and prunes: their packs are condemned. The server
    // sees that through its gc view key and stores the data anew instead of deduplicating against
    // packs the next sweep deletes (docs/gc.md §6.3); alice restores that snapshot byte-exact
    ok(await cliAt(node('alice'), 'forget', first, second.snapshotId, '--prune', '--json'), 'alice forget --prune')
    const third = ok(await cliAt(node('server'), 'backup', src, '--json'), 'third backup').json<{ snapshotId: string, bytesAdded: number }>()
    assert.ok(third.bytesAdded > 3 << 20, `the server stored its data anew (${third.bytesAdded} bytes added), not against condemned packs`)
    const out3 = join(dir, 'restored-3')
    ok(await cliAt(node('alice'), 'restore', third.snapshotId, '--target', out3), 'alice restore of the third')
    assert.deepEqual(compareTrees(src, join(out3, src), { mtimeResolutionNs: 1000n }), [])

    // a delete from the server's device key, even signed by alice's user key, is refused by bob
    await stopDaemon(node('server'))
    const held = filesUnder(join(node('bob').home, 'held', exported.userId, 'shares'))
    assert.ok(held.length > 0, 'bob holds shares of alice')
    const file = held[0] as string
    const [pack, index] = basename(file).split('.') as [string, string]
    assert.equal(basename(dirname(file)), pack.slice(0, 2))
    const alice = await Home.open({ home: node('alice').home, passphrase: async () => 'pw' })
    const sk = alice.identity.signSecretKey as Uint8Array
    // the server keeps no device.key: its device key comes from its key file (docs/format/keys.md §12)
    assert.equal(existsSync(join(node('server').home, 'device.key')), false)
    const server = await Home.open({ home: node('server').home, passphrase: async () => 'pw' })
    const thief = await createP2pNode({ privateKey: await loadDeviceKey(server), dht: false })
    await server.close()
    try {
      const bobInfo = JSON.parse(readFileSync(join(node('bob').home, 'node.json'), 'utf8')) as { peerId: string, addrs: string[] }
      const store = new RemoteShareStore({
        node: thief,
        peer: peerIdFromString(bobInfo.peerId),
        addrs: bobInfo.addrs.map(a => multiaddr(a)),
        ownerUserId: exported.userId,
        signDelete: (message: Uint8Array) => Buffer.from(alice.sodium.sign(message, sk)).toString('base64'),
        timeoutMs: 10_000
      })
      await assert.rejects(store.delete({ pack: asPackId(fromHex(pack)), index: Number(index) }), (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'ERR_REFUSED')
        assert.match(String((err as Error).message), /write-only/)
        return true
      })
      assert.equal(existsSync(file), true, 'the share is still on bob\'s disk')
    } finally {
      await thief.stop()
      await alice.close()
    }
  })
})
