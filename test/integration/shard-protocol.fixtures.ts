/**
 * What the /p2pbak/shard/1.0.0 specs share (shard-protocol.spec.ts, shard-limits.spec.ts): real libp2p
 * nodes on 127.0.0.1 (a persister serving shards, alice's and bob's devices, alice's write-only machine
 * and a stranger), the persister's namespaces (user id -> store), clients for a device, and raw requests
 * for what a well-behaved client never sends.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { deriveIdentity, loadBackend } from '../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../src/crypto/index.js'
import { createP2pNode, newDeviceKey } from '../../src/node/libp2p-node.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { exchange } from '../../src/protocols/framing.js'
import { RemoteShareStore, SHARD_PROTOCOL, shardServer } from '../../src/protocols/shard/index.js'
import type { RemoteShareStoreInit, ShardServer, ShardServerInit } from '../../src/protocols/shard/index.js'
import { LocalShareStore } from '../../src/store/index.js'
import type { ShareStore } from '../../src/store/index.js'
import { fromHex, toHex } from '../../src/util/bytes.js'
import { seededBytes } from '../compliance/share-store.js'

/** Byte equality that ignores Buffer vs Uint8Array. */
export function assertSameBytes (actual: Uint8Array, expected: Uint8Array): void { assert.equal(toHex(actual), toHex(expected)) }

const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n)
/** A record id, seeded by `n`. */
export const rid = (n: number): Uint8Array => seededBytes(0x7ec0 + n, 32)

/**
 * The nodes, people and stores of one spec file. The people and nodes are set in `before` (see
 * shardLab); the functions are usable at once, so a spec may take them apart where it is declared.
 */
export class ShardLab {
  sodium!: SodiumBackend
  alice!: Identity
  bob!: Identity
  mallory!: Identity
  persister!: P2pNode
  aliceDevice!: P2pNode
  bobDevice!: P2pNode
  /** alice's write-only machine: its certificate says write-only (shard.md §7.2) */
  aliceWriteOnly!: P2pNode
  stranger!: P2pNode
  /** the persister's namespaces: user id -> store */
  readonly namespaces = new Map<string, ShareStore>()
  /** the user ids every server's storeFor was asked for */
  readonly storeForCalls: string[] = []
  private readonly nodes: P2pNode[] = []
  private readonly servers: ShardServer[] = []
  private readonly dirs: string[] = []

  /** Signs a delete message with `id`'s user key, as a client's signDelete does. */
  readonly signer = (id: Identity) => (message: Uint8Array): string =>
    Buffer.from(this.sodium.sign(message, id.signSecretKey as Uint8Array)).toString('base64')

  /** A started libp2p node (without a DHT), stopped in `after`. */
  readonly node = async (): Promise<P2pNode> => {
    const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    this.nodes.push(n)
    return n
  }

  /** A LocalShareStore in a new temporary folder, removed in `after` (the caller closes the store). */
  readonly freshStore = async (): Promise<LocalShareStore> => {
    const dir = await mkdtemp(join(tmpdir(), 'p2pbak-shard-'))
    this.dirs.push(dir)
    return await LocalShareStore.open(dir)
  }

  /** A persister node serving shards: members are aliceDevice (alice) and bobDevice (bob). */
  readonly startServer = async (on: P2pNode, extra: Partial<ShardServerInit> = {}): Promise<void> => {
    const server = shardServer({
      node: on,
      storeFor: async (userId) => {
        this.storeForCalls.push(userId)
        const store = this.namespaces.get(userId)
        if (store === undefined) throw new Error(`no namespace for ${userId}`)
        return store
      },
      authorize: (peer: PeerId) => {
        if (peer.equals(this.aliceDevice.peerId)) return { userId: this.alice.userId }
        if (peer.equals(this.bobDevice.peerId)) return { userId: this.bob.userId }
        if (peer.equals(this.aliceWriteOnly.peerId)) return { userId: this.alice.userId, writeOnly: true }
        return undefined
      },
      verifyDeleteSignature: (userId, message, sig) => this.sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(userId)),
      ...extra
    })
    await server.start()
    this.servers.push(server)
  }

  /** A RemoteShareStore from `from` to `to`'s shard server, for `owner`'s namespace. */
  readonly client = (from: P2pNode, to: P2pNode, owner: Identity, extra: Partial<RemoteShareStoreInit> = {}): RemoteShareStore => {
    return new RemoteShareStore({
      node: from,
      peer: to.peerId,
      addrs: to.getMultiaddrs(),
      ownerUserId: owner.userId,
      signDelete: this.signer(owner),
      timeoutMs: 10_000,
      ...extra
    })
  }

  /** A raw request, to send what a well-behaved client never would. */
  readonly raw = async (from: P2pNode, to: P2pNode, header: object, body?: Uint8Array): Promise<{ status: unknown, body: Uint8Array }> => {
    const res = await exchange(from, multiaddr(to.getMultiaddrs()[0]?.toString() ?? ''), SHARD_PROTOCOL, header, body, { timeoutMs: 10_000 })
    return { status: res.header.status, body: res.body }
  }

  async setUp (): Promise<void> {
    this.sodium = await loadBackend()
    this.alice = deriveIdentity(this.sodium, seed(1))
    this.bob = deriveIdentity(this.sodium, seed(2))
    this.mallory = deriveIdentity(this.sodium, seed(3))
    this.persister = await this.node()
    this.aliceDevice = await this.node()
    this.bobDevice = await this.node()
    this.aliceWriteOnly = await this.node()
    this.stranger = await this.node()
    await this.startServer(this.persister)
  }

  async tearDown (): Promise<void> {
    for (const s of this.servers) await s.stop().catch(() => {})
    await Promise.all(this.nodes.map(async (n) => { await n.stop() }))
    for (const store of this.namespaces.values()) await store.close()
    await Promise.all(this.dirs.map(async (d) => { await rm(d, { recursive: true, force: true }) }))
  }
}

/**
 * Registers the enclosing describe's `before` (the nodes, people and the persister's shard server)
 * and `after` (servers and nodes stopped, stores closed, folders removed) and returns the lab they fill.
 */
export function shardLab (): ShardLab {
  const lab = new ShardLab()
  before(async () => { await lab.setUp() })
  after(async () => { await lab.tearDown() })
  return lab
}
