/**
 * HOME/device.key at rest (docs/format/keys.md §12; issue 11, finding 3): sealed under the identity,
 * so the file alone is useless; an older clear file still opens and is sealed on the next open; a
 * write-only machine keeps no device.key (its key file carries the device seed). Real homes on disk.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TEST_KDF, loadBackend, encodeKeyFileBase64 } from '../../../src/crypto/index.js'
import { errnoCode } from '../../../src/errors.js'
import { loadDeviceKey } from '../../../src/node/device-key.js'
import { GroupState } from '../../../src/node/group-state.js'
import { Home } from '../../../src/node/home.js'
import { encodeDeviceKey, newDeviceKey } from '../../../src/node/libp2p-node.js'
import { createWriteOnlyKey } from '../../../src/peers/index.js'
import { toHex } from '../../../src/util/bytes.js'

describe('node: the device key at rest (HOME/device.key)', function () {
  this.timeout(20_000)
  let root: string
  let n = 0
  const opened: Home[] = []

  async function home (passphrase: string | null): Promise<Home> {
    const dir = join(root, `h${++n}`)
    await Home.init({ home: dir, passphrase, kdf: TEST_KDF })
    return await reopen(dir, passphrase)
  }

  async function reopen (dir: string, passphrase: string | null): Promise<Home> {
    const h = await Home.open({ home: dir, passphrase: async () => passphrase, kdf: TEST_KDF })
    opened.push(h)
    return h
  }

  /** Every way the key's secret bytes could appear in a file: raw, hex, base64 of the protobuf and of the 32-byte seed. */
  function leaks (file: Uint8Array, secret: Uint8Array): boolean {
    const text = Buffer.from(file).toString('latin1')
    const seed = secret.subarray(4, 36) // libp2p protobuf of Ed25519: 08 01 12 40 || seed (32) || public key (32)
    return [secret, seed].some(s => Buffer.from(file).includes(Buffer.from(s)) || text.includes(toHex(s)) || text.includes(encodeKeyFileBase64(s)))
  }

  before(() => { root = mkdtempSync(join(tmpdir(), 'p2pbak-devkey-')) })
  after(async () => {
    for (const h of opened) await h.closeNow().catch(() => {})
    rmSync(root, { recursive: true, force: true })
  })

  it('with a passphrase, device.key on disk holds no clear key, and opens again to the same peer id', async () => {
    const h = await home('pw')
    const key = await loadDeviceKey(h)
    const path = join(h.dir, 'device.key')
    const onDisk = new Uint8Array(readFileSync(path))
    assert.equal(leaks(onDisk, encodeDeviceKey(key)), false, 'device.key holds the clear key')
    assert.equal(JSON.parse(Buffer.from(onDisk).toString('utf8')).format, 'p2pbak-device-key')
    assert.equal(statSync(path).mode & 0o777, 0o600)
    await h.closeNow()
    const again = await reopen(h.dir, 'pw')
    assert.equal(peerIdFromPrivateKey(await loadDeviceKey(again)).toString(), peerIdFromPrivateKey(key).toString())
  })

  it('an older clear device.key still opens, keeps its peer id, and is rewritten sealed', async () => {
    const h = await home('pw')
    const old = await newDeviceKey()
    const path = join(h.dir, 'device.key')
    writeFileSync(path, encodeDeviceKey(old), { mode: 0o600 })
    const key = await loadDeviceKey(h)
    assert.equal(peerIdFromPrivateKey(key).toString(), peerIdFromPrivateKey(old).toString())
    assert.equal(leaks(new Uint8Array(readFileSync(path)), encodeDeviceKey(old)), false, 'the clear key is still on disk')
    assert.equal(peerIdFromPrivateKey(await loadDeviceKey(h)).toString(), peerIdFromPrivateKey(old).toString())
  })

  it('a sealed device.key copied into another home does not open there', async () => {
    const a = await home('pw')
    const b = await home(null)
    await loadDeviceKey(a)
    writeFileSync(join(b.dir, 'device.key'), readFileSync(join(a.dir, 'device.key')))
    await assert.rejects(loadDeviceKey(b), (err: unknown) => { assert.equal(errnoCode(err), 'ERR_INVALID_CONFIG'); assert.match(String(err), /another home/); return true })
  })

  it('a write-only machine keeps no device.key: its key comes from the key file, an older clear copy is removed', async () => {
    const sodium = await loadBackend()
    const owner = await home(null)
    const { file, key } = createWriteOnlyKey(sodium, owner.identity, 'server', Date.now(), 'pw', TEST_KDF)
    const dir = join(root, 'write-only')
    await Home.initWriteOnly({ home: dir, file, key })
    assert.equal(existsSync(join(dir, 'device.key')), false)
    const w = await reopen(dir, 'pw')
    assert.equal(peerIdFromPrivateKey(await loadDeviceKey(w)).toString(), file.deviceCert.peerId)
    // a home set up by an older version kept the key in clear beside the key file
    writeFileSync(join(dir, 'device.key'), new Uint8Array(8))
    assert.equal(peerIdFromPrivateKey(await loadDeviceKey(w)).toString(), file.deviceCert.peerId)
    assert.equal(existsSync(join(dir, 'device.key')), false)
  })

  it('two `init --write-only` into one home at once: one fails having written nothing, the other\'s home opens whole', async () => {
    const sodium = await loadBackend()
    const owner = await home(null)
    const other = await home(null)
    const a = createWriteOnlyKey(sodium, owner.identity, 'server-a', Date.now(), 'pw', TEST_KDF)
    const b = createWriteOnlyKey(sodium, other.identity, 'server-b', Date.now(), 'pw', TEST_KDF)
    const dir = join(root, 'write-only-race')
    const results = await Promise.allSettled([Home.initWriteOnly({ home: dir, ...a }), Home.initWriteOnly({ home: dir, ...b })])
    assert.deepEqual(results.map(r => r.status).sort(), ['fulfilled', 'rejected'])
    const winner = results[0]?.status === 'fulfilled' ? a : b
    const w = await reopen(dir, 'pw')
    assert.equal(w.identity.userId, winner.key.identity.userId)
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).userId, winner.key.identity.userId)
    assert.equal((await GroupState.load(w)).file.deviceCert?.peerId, winner.file.deviceCert.peerId)
  })

  it('a write-only home whose init stopped right after the key file opens, with the key file\'s certificate and no space given', async () => {
    const sodium = await loadBackend()
    const owner = await home(null)
    const { file, key } = createWriteOnlyKey(sodium, owner.identity, 'server', Date.now(), 'pw', TEST_KDF)
    const dir = join(root, 'write-only-cut')
    await Home.initWriteOnly({ home: dir, file, key })
    rmSync(join(dir, 'config.json'))
    rmSync(join(dir, 'group.json'))
    const w = await reopen(dir, 'pw')
    assert.equal(w.identity.userId, owner.identity.userId)
    const state = await GroupState.load(w)
    assert.equal(state.file.deviceCert?.peerId, file.deviceCert.peerId)
    assert.equal(state.file.roles.contributeBytes, 0)
  })
})
