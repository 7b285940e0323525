/** A message's body kept in the pieces it arrived in (src/protocols/framing.ts). */
import assert from 'node:assert/strict'
import { bodyLength, copyBody, type Message } from '../../../src/protocols/framing.js'

describe('framing: a body in pieces', () => {
  const whole = Uint8Array.from({ length: 50 }, (_, i) => i + 1)
  const inPieces: Message<object> = { header: {}, body: whole, bodyChunks: [whole.subarray(0, 7), whole.subarray(7, 7), whole.subarray(7, 50)] }
  const joined: Message<object> = { header: {}, body: whole }

  it('measures and copies a body piece by piece, as it would the joined one', () => {
    for (const m of [inPieces, joined]) {
      assert.equal(bodyLength(m), 50)
      const out = new Uint8Array(60)
      copyBody(m, out, 5)
      assert.deepEqual(out.subarray(5, 55), whole)
      assert.deepEqual([...out.subarray(0, 5), ...out.subarray(55)], new Array(10).fill(0))
    }
  })

  it('reads no joined body when it has pieces', () => {
    const m: Message<object> = { header: {}, get body (): Uint8Array { throw new Error('joined') }, bodyChunks: [whole] }
    assert.equal(bodyLength(m), 50)
    copyBody(m, new Uint8Array(50), 0)
  })
})
