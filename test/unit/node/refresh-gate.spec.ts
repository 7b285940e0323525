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

  it('a device that stalls holds a command no longer than the patience once a friend answered; with nobody answering the command waits for the refresh', async () => {
    let release: () => void = () => {}
    let answered = false
    const stalled = async (): Promise<Set<string>> => { await new Promise<void>(resolve => { release = resolve }); return new Set() }
    const gate = new RefreshGate({ run: stalled, serial: () => 1, nobody: () => !answered, now: () => 0, patienceMs: 300 })
    // nobody answered yet: the command waits past the patience, until the refresh ends
    let done = false
    const waiting = gate.ready().then(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, 450))
    assert.equal(done, false, 'with nobody answering, the command waits for the refresh')
    release()
    await waiting
    // a friend answered; another device is connected and does not answer: the next refresh stalls
    answered = true
    const started = Date.now()
    const p = gate.refresh()
    await gate.ready()
    const waited = Date.now() - started
    assert.ok(waited >= 290 && waited < 5000, `the command went on after the patience (${waited} ms)`)
    // the next caller (a command after the daemon's round gave up waiting) does not wait the patience again
    const again = Date.now()
    await gate.ready()
    await gate.refreshPatiently()
    // (bounds far from the patience of 300 ms: a loaded machine delays timers by tens of ms)
    assert.ok(Date.now() - again < 200, `the patience counts from the start of the refresh (${Date.now() - again} ms)`)
    release()
    await p
  })

  it('the patience counts only for a refresh of the current roster: an older one that stalls is waited out, then the new roster is asked', async () => {
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
      now: () => 0,
      patienceMs: 20
    })
    const first = gate.refresh()
    serial = 2 // a newcomer admitted while the first refresh stalls
    let done = false
    const waiting = gate.ready().then(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(done, false, 'not cut short while the old roster\'s refresh runs')
    assert.equal(gate.overdue(), true)
    release()
    await Promise.all([first, waiting])
    assert.deepEqual(runs, [1, 2], 'the new roster was asked before the command went on')
    assert.equal(gate.overdue(), false, 'nothing runs now')
  })
})
