/** Listings go to a pipe or a file in large writes, to a terminal line by line (io.ts lineWriter). */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { lineWriter, type CliIo } from '../../../src/cli/io.js'

function sink (tty: boolean): { io: CliIo, writes: string[] } {
  const writes: string[] = []
  const stdout = Object.assign(new Writable({ write (chunk: Buffer, _enc, done) { writes.push(chunk.toString()); done() } }), { isTTY: tty })
  return { io: { stdout, stderr: stdout, stdin: process.stdin, env: {} }, writes }
}

describe('cli: lineWriter', () => {
  it('to a pipe: every line, in order, in a few writes of about 64 KiB', async () => {
    const { io, writes } = sink(false)
    const out = lineWriter(io)
    const lines = Array.from({ length: 3000 }, (_, i) => `-rw-r--r--     0     0     37 KiB 2026-12-07 23:35:45 /data/small/f${String(i).padStart(5, '0')}.txt`)
    for (const l of lines) out.line(l)
    assert.ok(writes.length < 10, `${writes.length} writes before the end`)
    out.end()
    out.end() // a second end writes nothing
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(writes.join(''), lines.map(l => l + '\n').join(''))
    assert.ok(writes.length <= 6, `${writes.length} writes for ${lines.length} lines`)
  })

  it('to a terminal: each line as it comes', async () => {
    const { io, writes } = sink(true)
    const out = lineWriter(io)
    out.line('one')
    out.line('two\n')
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(writes, ['one\n', 'two\n'])
    out.end()
  })
})
