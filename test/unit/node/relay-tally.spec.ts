/**
 * What a relay carried, per member device and day, across restarts (src/node/relay-tally.ts): the
 * figures of the ledger's `relayed` (format/ledger.md §2) cover 30 days, so they outlive a daemon.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RELAY_TALLY_DAYS, RelayTally } from '../../../src/node/relay-tally.js'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 11, 6, 12)

describe('node/relay-tally', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-tally-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('counts per peer and day, sums a window, and is read back after a restart', async () => {
    const path = join(dir, 'relayed.json')
    const t = await RelayTally.load(path)
    t.add('A', 100, T0 - 40 * DAY)
    t.add('A', 10, T0 - 29 * DAY)
    t.add('A', 1, T0)
    t.add('B', 5, T0)
    t.add('B', 0, T0)
    await t.save(T0)
    const again = await RelayTally.load(path)
    assert.deepEqual([...again.within(T0, 30 * DAY)].sort(), [['A', 11], ['B', 5]])
    assert.deepEqual([...again.within(T0, 0)].sort(), [['A', 1], ['B', 5]])
    // the day 40 days back was dropped when saving (only RELAY_TALLY_DAYS are kept)
    const file = JSON.parse(readFileSync(path, 'utf8')) as { days: Record<string, unknown> }
    assert.equal(Object.keys(file.days).length, 2)
    assert.ok(RELAY_TALLY_DAYS >= 31)
  })

  it('a file that is not a tally is set aside and counting starts again (nothing thrown)', async () => {
    const path = join(dir, 'relayed.json')
    for (const bad of ['{"version":1,"days":{"2026-12-06":{"A":-1}}}', '{"version":2,"days":{}}', 'not json', '{"version":1,"days":{"yesterday":{}}}']) {
      writeFileSync(path, bad)
      const t = await RelayTally.load(path)
      assert.equal(t.within(T0, 30 * DAY).size, 0)
      assert.ok(existsSync(`${path}.bad`), `set aside: ${bad}`)
      assert.equal(readFileSync(`${path}.bad`, 'utf8'), bad)
      rmSync(`${path}.bad`)
    }
  })

  it('writes nothing when nothing was counted', async () => {
    const path = join(dir, 'relayed.json')
    await (await RelayTally.load(path)).save(T0)
    assert.equal(existsSync(path), false)
  })
})
