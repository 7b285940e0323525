/**
 * When a node asks its friends again (src/node/refresh-gate.ts): the refresh a command waits for is
 * one of the current roster, and a newcomer still taking the roster is asked again.
 */
import assert from 'node:assert/strict'
import { RefreshGate } from '../../../src/node/refresh-gate.js'

describe('node/RefreshGate', () => {
  it('a refresh that started before the roster changed is not taken for one of the new roster', async () => {
    let serial = 1
    const runs: number[] = []
    let release: () => void = () => {}
    const gate = new RefreshGate({
      run: async () => {
        runs.push(serial)
        if (runs.length === 1) await new Promise<void>(resolve => { release = resolve })
        return new Set()
      },
      serial: () => serial,
      nobody: () => false,
      now: () => 0
    })
    const first = gate.refresh()
    // a newcomer is admitted while the round's refresh runs
    serial = 2
    const waiting = gate.ready()
    release()
    await Promise.all([first, waiting])
    assert.deepEqual(runs, [1, 2], 'the command ran a refresh of the new roster')
    // and concurrent callers of the same roster share one run
    await Promise.all([gate.refresh(), gate.refresh()])
    assert.equal(runs.length, 3)
    await gate.ready()
    assert.equal(runs.length, 3, 'nothing changed since: no refresh')
  })

  it('a device that answered "not a member" (its join in progress) is asked again before the command goes on', async () => {
    const answers: Array<Set<string>> = [new Set(['bob']), new Set()]
    let online = false
    let runs = 0
    const gate = new RefreshGate({
      run: async () => {
        const joining = answers[runs++] ?? new Set<string>()
        online = joining.size === 0
        return joining
      },
      serial: () => 1,
      nobody: () => !online,
      now: () => 0
    })
    await gate.ready()
    assert.equal(runs, 2)
    assert.equal(online, true)
  })

  it('asks again at most three times, and not at all without a roster', async () => {
    let runs = 0
    const gate = new RefreshGate({ run: async () => { runs++; return new Set(['bob']) }, serial: () => 1, nobody: () => true, now: () => 0 })
    await gate.ready()
    assert.equal(runs, 4)
    const none = new RefreshGate({ run: async () => { runs++; return new Set() }, serial: () => -1, nobody: () => true, now: () => 0 })
    await none.ready()
    assert.equal(runs, 4)
  })
})
