/**
 * The STUN responder (src/node/stun-server.ts) against a real ICE agent: libdatachannel (through
 * node-datachannel, the native part of @libp2p/webrtc) gathers a server-reflexive candidate from it,
 * as a friend behind NAT does before a WebRTC connection to another home. Also: what is not a
 * Binding request gets no answer, and the answers a second are capped.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import nodeDataChannel from 'node-datachannel'
import { StunServer } from '../../../src/node/stun-server.js'
import { parseBindingResponse } from '../../../src/protocols/stun.js'

/** Sends datagrams from one UDP socket and collects what comes back within `ms`. */
async function exchange (port: number, datagrams: Uint8Array[], ms = 300): Promise<Buffer[]> {
  const sock = createSocket('udp4')
  const got: Buffer[] = []
  sock.on('message', (m) => got.push(m))
  await new Promise<void>(resolve => { sock.bind(0, '127.0.0.1', resolve) })
  for (const d of datagrams) sock.send(d, port, '127.0.0.1')
  await new Promise(resolve => setTimeout(resolve, ms))
  await new Promise<void>(resolve => { sock.close(() => { resolve() }) })
  return got
}

function bindingRequest (seed: number): Uint8Array {
  const out = new Uint8Array(20)
  const v = new DataView(out.buffer)
  v.setUint16(0, 1)
  v.setUint32(4, 0x2112a442)
  out.fill(seed, 8)
  return out
}

describe('STUN responder', function () {
  this.timeout(20_000)
  let server: StunServer | undefined
  afterEach(async () => { await server?.stop(); server = undefined })

  it('gives a real ICE agent its server-reflexive candidate', async () => {
    const stun = await StunServer.start({ port: 0, host: '127.0.0.1' })
    server = stun
    /** One gathering by a fresh agent: its server-reflexive candidate, or why there was none. */
    const gather = async (): Promise<string> => {
      const pc = new nodeDataChannel.PeerConnection('stun-test', { iceServers: [`stun:127.0.0.1:${stun.port}`] })
      const started = Date.now()
      try {
        const srflx = new Promise<string>((resolve, reject) => {
          pc.onLocalCandidate((c) => { if (c.includes('typ srflx')) resolve(c) })
          pc.onGatheringStateChange((state) => {
            if (state === 'complete') reject(new Error(`gathering completed after ${Date.now() - started} ms without a server-reflexive candidate (the responder answered ${stun.answered} request(s))`))
          })
        })
        pc.createDataChannel('probe')
        return await srflx
      } finally {
        pc.close()
      }
    }
    // once (suite run 66, 1 of 67 runs, on a machine loaded by other work) libjuice ended a gathering
    // early without the candidate; an agent gathers again, so this asks a second agent before failing
    const candidate = await gather().catch(async (err: unknown) => {
      console.log(`      first gathering: ${err instanceof Error ? err.message : String(err)}; gathering again`)
      return await gather()
    })
    assert.match(candidate, / 127\.0\.0\.1 \d+ typ srflx/)
    assert.ok(stun.answered >= 1)
  })

  it('answers Binding requests only, and at most maxPerSecond a second', async () => {
    server = await StunServer.start({ port: 0, host: '127.0.0.1', maxPerSecond: 3 })
    const junk = [new Uint8Array(0), new Uint8Array(20), Buffer.from('GET / HTTP/1.1\r\n\r\n')]
    assert.deepEqual(await exchange(server.port, junk), [])
    const answers = await exchange(server.port, [1, 2, 3, 4, 5].map(bindingRequest))
    assert.equal(answers.length, 3, 'capped at 3 a second')
    for (const a of answers) {
      const parsed = parseBindingResponse(a)
      assert.equal(parsed?.address, '127.0.0.1')
    }
  })
})

