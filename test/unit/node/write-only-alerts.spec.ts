/**
 * Alerts on a write-only machine (docs/cli.md "Alerts"): it cannot read snapshots, so "no backup for
 * N days" comes from its own job reports, and low redundancy from the packs it placed, judged as a
 * snapshot's packs are. A real write-only home and its index; the network is reduced to what the
 * check asks of it (the roster and who answers).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveIdentity, loadBackend } from '../../../src/crypto/index.js'
import { asPackId } from '../../../src/ids.js'
import { createWriteOnlyKey } from '../../../src/peers/index.js'
import { checkNodeAlerts } from '../../../src/node/alert-checks.js'
import { AlertBook } from '../../../src/node/alerts.js'
import { Home } from '../../../src/node/home.js'
import type { NetworkNode } from '../../../src/node/network.js'
import { ReportBook, type JobReport } from '../../../src/node/reports.js'

const DAY = 24 * 3600_000

describe('node/alert-checks: a write-only machine', function () {
  this.timeout(30_000)
  let dir: string
  let home: Home
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-wo-alerts-'))
    const sodium = await loadBackend()
    const owner = deriveIdentity(sodium, new Uint8Array(32).fill(5))
    const { file, key } = createWriteOnlyKey(sodium, owner, 'server', Date.now(), null)
    await Home.initWriteOnly({ home: join(dir, 'home'), file, key })
    home = await Home.open({ home: join(dir, 'home'), passphrase: async () => '' })
    home.config.notify = { command: 'true', noBackupDays: 3, minCanLose: 1 }
  })
  after(async () => {
    await home.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const active = async (): Promise<string[]> => (await new AlertBook(home.dir, home.config.notify).active()).map(a => a.kind).sort()

  function network (online: Set<string>): NetworkNode {
    const roster = { members: [{ userId: 'b'.repeat(64), devices: [{ peerId: 'p1', name: 'bob' }] }, { userId: 'c'.repeat(64), devices: [{ peerId: 'p2', name: 'cid' }] }] }
    return { peerId: 'self', roster, isOnline: (p: string) => online.has(p) } as unknown as NetworkNode
  }

  it('no backup for N days: from its own job reports; a report with a snapshot clears it', async () => {
    const created = Date.parse(home.config.created)
    const offline = { peerId: 'self', roster: null, isOnline: () => false } as unknown as NetworkNode
    await checkNodeAlerts(home, offline, undefined, () => created + DAY)
    assert.deepEqual(await active(), [])
    await checkNodeAlerts(home, offline, undefined, () => created + 4 * DAY)
    assert.deepEqual(await active(), ['no-backup'], 'never backed up, four days after the home was made')
    const at = new Date(created + 4 * DAY - 60_000).toISOString()
    const report: JobReport = {
      version: 1, job: 'publish', startedAt: at, finishedAt: at, durationMs: 1, outcome: 'success', error: null, host: hostname(), paths: ['/srv'],
      snapshotId: 'ab'.repeat(32), files: null, bytes: null, itemErrors: [], changedDuringBackup: [], placement: null, canLose: null, hooks: { pre: null, post: null }, retention: null
    }
    await new ReportBook(home.dir, undefined, () => created + 4 * DAY).write(report)
    await checkNodeAlerts(home, offline, undefined, () => created + 4 * DAY)
    assert.deepEqual(await active(), [], 'the backup in the report cleared it')
  })

  it('low redundancy: from the packs it placed; cleared when their holders answer again', async () => {
    const t = Date.parse(home.config.created) + DAY
    const pack = asPackId(new Uint8Array(32).fill(9))
    await home.repo.index.addPack({ id: pack, size: 1024, blobs: 1, k: 1, m: 1, time: t, kind: 0 }, [])
    await home.repo.index.setPlacement(pack, new Map([[0, 'peer:p1'], [1, 'peer:p2']]))
    await checkNodeAlerts(home, network(new Set(['p1', 'p2'])), undefined, () => t)
    assert.deepEqual(await active(), [])
    await checkNodeAlerts(home, network(new Set(['p1'])), undefined, () => t)
    assert.deepEqual(await active(), ['low-redundancy'], 'one of two holders gone: it can lose no more')
    await checkNodeAlerts(home, network(new Set(['p1', 'p2'])), undefined, () => t)
    assert.deepEqual(await active(), [])
  })
})
