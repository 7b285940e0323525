/**
 * A WebRTC connection counts as a path only once identify ran over it; one that never carries a
 * stream (the answering side of a failed hole punch, @libp2p/webrtc 6.0.33) is closed.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, IdentifyResult, Libp2pEvents } from '@libp2p/interface'
import { TypedEventEmitter } from '@libp2p/interface'
import { WebrtcVetting } from '../../../src/node/webrtc-vetting.js'
import { waitFor } from '../../helpers/daemons.js'

const PEER = '12D3KooWPwhJiNy6qtzrGsfH38gHcnTDipmU41QAuVvJGQyif1Sd'

interface FakeConn { id: string, remoteAddr: ReturnType<typeof multiaddr>, remotePeer: { toString: () => string }, status: string, aborted?: Error, abort: (err: Error) => void }

function conn (id: string, addr: string): FakeConn {
  const c: FakeConn = {
    id,
    remoteAddr: multiaddr(addr),
    remotePeer: { toString: () => PEER },
    status: 'open',
    abort: (err: Error) => { c.aborted = err; c.status = 'closed' }
  }
  return c
}

class Events extends TypedEventEmitter<Libp2pEvents> {
  open (c: FakeConn): void { this.safeDispatchEvent('connection:open', { detail: c as unknown as Connection }) }
  identify (c: FakeConn): void { this.safeDispatchEvent('peer:identify', { detail: { connection: c } as unknown as IdentifyResult }) }
  close (c: FakeConn): void { c.status = 'closed'; this.safeDispatchEvent('connection:close', { detail: c as unknown as Connection }) }
}

describe('unit: WebRTC connections count once a stream ran over them', () => {
  let events: Events
  let vetting: WebrtcVetting
  beforeEach(() => {
    events = new Events()
    vetting = new WebrtcVetting(events, 50)
    vetting.start()
  })
  afterEach(() => { vetting.stop() })

  it('a TCP or relayed connection counts at once', async () => {
    for (const addr of [`/ip4/100.64.0.2/tcp/4737/p2p/${PEER}`, `/ip4/100.64.0.2/tcp/4737/p2p/12D3KooWDZrzTcwbACcA5TNtDuejMqkCtJ5HbahYYxGkGjidVfxZ/p2p-circuit/p2p/${PEER}`]) {
      const c = conn(addr, addr)
      events.open(c)
      assert.equal(vetting.usable(c as unknown as Connection), true)
      assert.equal(await vetting.whenProven(c as unknown as Connection), true)
    }
  })

  it('a WebRTC connection counts once identify completed over it, and is not closed', async () => {
    const c = conn('w1', `/webrtc/p2p/${PEER}`)
    events.open(c)
    assert.equal(vetting.usable(c as unknown as Connection), false, 'not before identify')
    const proven = vetting.whenProven(c as unknown as Connection)
    events.identify(c)
    assert.equal(await proven, true)
    assert.equal(vetting.usable(c as unknown as Connection), true)
    await new Promise(resolve => setTimeout(resolve, 80)) // past the 50 ms wait: the timer was cleared
    assert.equal(c.aborted, undefined)
    assert.equal(vetting.closed, 0)
  })

  it('a WebRTC connection nothing ran over is closed after the wait, and never counts', async () => {
    const c = conn('w2', `/webrtc/p2p/${PEER}`)
    events.open(c)
    assert.equal(await vetting.whenProven(c as unknown as Connection), false)
    await waitFor('the unproven connection is aborted', async () => c.aborted !== undefined, 2000)
    assert.match(c.aborted?.message ?? '', /hole punch failed/)
    assert.equal(vetting.closed, 1)
    assert.equal(vetting.usable(c as unknown as Connection), false)
  })

  it('a WebRTC connection that closes before it is proven settles its waiters (false)', async () => {
    const c = conn('w3', `/ip4/100.64.0.2/tcp/4737/p2p/12D3KooWDZrzTcwbACcA5TNtDuejMqkCtJ5HbahYYxGkGjidVfxZ/p2p-circuit/webrtc/p2p/${PEER}`)
    events.open(c)
    const proven = vetting.whenProven(c as unknown as Connection)
    events.close(c)
    assert.equal(await proven, false)
    assert.equal(vetting.closed, 0, 'closed by the other side, not by the vetting')
  })

  it('a WebRTC connection open before the vetting started gets its clock at the start', async () => {
    vetting.stop()
    const c = conn('w5', `/webrtc/p2p/${PEER}`)
    events.open(c) // nobody listens
    vetting.start([c as unknown as Connection])
    await waitFor('the unproven connection is aborted', async () => c.aborted !== undefined, 2000)
    assert.equal(vetting.closed, 1)
  })

  it('a WebRTC connection opened before the vetting started gets its clock when someone waits on it', async () => {
    vetting.stop()
    const c = conn('w4', `/webrtc/p2p/${PEER}`)
    events.open(c) // nobody listens
    vetting.start()
    assert.equal(await vetting.whenProven(c as unknown as Connection), false)
    assert.ok(c.aborted !== undefined)
  })
})
