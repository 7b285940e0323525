/**
 * mDNS: nodes find each other with no bootstrap address. Multicast must not leave the machine, so
 * the nodes run in a child process inside a private network namespace this test makes itself
 * (`unshare -n`: only `lo` exists there; the test turns multicast on for it and routes 224.0.0.0/4
 * to it). Needs root, `unshare` (util-linux) and `ip` (iproute2); skipped with the reason otherwise.
 * The namespace disappears with the child process: there is nothing to clean up.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { MdnsResult } from '../fixtures/mdns-nodes.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIXTURE = 'test/fixtures/mdns-nodes.ts'
const NETNS_SETUP = 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo'
const FIXTURE_DEADLINE_MS = 10_000

/** Why this host cannot run the test, or undefined if it can. */
function cannotRun (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`
  if (process.getuid?.() !== 0) return `making a network namespace needs root (uid ${String(process.getuid?.())})`
  for (const [tool, pkg] of [['unshare', 'util-linux'], ['ip', 'iproute2']] as const) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `\`${tool}\` is missing (Debian package ${pkg})` }
  }
  try {
    execFileSync('unshare', ['-n', 'sh', '-c', NETNS_SETUP], { stdio: 'pipe', timeout: 5000 })
  } catch (err: unknown) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? ''
    return `cannot set up a private network namespace here: ${stderr !== '' ? stderr : String(err)}`
  }
  return undefined
}

async function runInNamespace (): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const inner = `${NETNS_SETUP} && exec "$0" --import tsx --import ./src/util/polyfill.ts ${FIXTURE} ${FIXTURE_DEADLINE_MS}`
  const child = spawn('unshare', ['-n', 'sh', '-c', inner, process.execPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  // the fixture keeps its own deadline; this one only guards against a hung child
  const killer = setTimeout(() => child.kill('SIGKILL'), FIXTURE_DEADLINE_MS + 6000)
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c) => resolve(c))
  }).finally(() => clearTimeout(killer))
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

describe('integration: mDNS discovery in a private network namespace', function () {
  this.timeout(20_000)

  it('three nodes given no bootstrap address discover each other and ping each other by peer id', async function () {
    const why = cannotRun()
    if (why !== undefined) {
      if (this.test !== undefined) this.test.title += ` [skipped: ${why}]`
      this.skip()
    }
    const run = await runInNamespace()
    assert.equal(run.code, 0, `the fixture failed (exit ${String(run.code)}):\n${run.stderr}`)
    const lines = run.stdout.trim().split('\n')
    const result = JSON.parse(lines[lines.length - 1] ?? '') as MdnsResult

    // the nodes ran where multicast cannot leave the machine
    assert.deepEqual(result.interfaces, ['lo'])
    assert.equal(result.peers.length, 3)
    assert.equal(new Set(result.peers).size, 3)
    for (const peer of result.peers) {
      const others = result.peers.filter(p => p !== peer).sort()
      assert.deepEqual(result.discovered[peer], others, `${peer} discovered ${JSON.stringify(result.discovered[peer])} of ${JSON.stringify(others)}`)
      assert.ok((result.addrs[peer] ?? []).length > 0)
    }
    assert.ok(result.discoveryMs < FIXTURE_DEADLINE_MS)
    // every ordered pair: a real connection and a ping round trip over it
    assert.equal(result.pings.length, 6)
    for (const p of result.pings) {
      assert.ok(p.ok, `ping ${p.from} → ${p.to} failed: ${p.error ?? ''}`)
      assert.equal(typeof p.rttMs, 'number')
    }
    assert.equal(new Set(result.pings.map(p => `${p.from}>${p.to}`)).size, 6)
  })
})
