/**
 * docs/cli.md publishes the exit codes and which error code leads to which exit code; these tests keep the
 * document, src/cli/exit-codes.ts, src/cli/main.ts and src/errors.ts in agreement, and check that every
 * error class has a unique code and a name equal to its class name (STYLE.md §7.6, §7.10).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as errors from '../../../src/errors.js'
import { P2pbakError } from '../../../src/errors.js'
import { ExitCode } from '../../../src/cli/exit-codes.js'
import { exitCodeFor } from '../../../src/cli/main.js'

const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8')

/** The table rows of the `## heading` section (until the next `## `), cells trimmed, header and rule dropped. */
function tableRows (heading: string): string[][] {
  const start = doc.indexOf(`\n## ${heading}\n`)
  assert.ok(start >= 0, `docs/cli.md has a "## ${heading}" section`)
  const end = doc.indexOf('\n## ', start + 1)
  const section = doc.slice(start, end < 0 ? undefined : end)
  const rows = section.split('\n').filter(l => l.startsWith('|')).map(l => l.slice(1, l.trimEnd().length - 1).split('|').map(c => c.trim()))
  return rows.filter(r => !r.every(c => /^-+$/.test(c)))
}

const unquote = (cell: string): string => {
  const m = /^`([^`]+)`$/.exec(cell)
  assert.ok(m !== null, `expected a \`quoted\` cell, got ${cell}`)
  return m[1] as string
}

type ErrorClass = new (message: string, options?: ErrorOptions) => P2pbakError
/** Every exported concrete subclass of P2pbakError (the abstract base itself is not one). */
function isErrorClass (v: unknown): v is ErrorClass {
  return typeof v === 'function' && v.prototype instanceof P2pbakError
}
const errorClasses: Array<[string, ErrorClass]> = []
for (const [name, value] of Object.entries(errors) as Array<[string, unknown]>) if (isErrorClass(value)) errorClasses.push([name, value])

describe('cli/exit codes: docs/cli.md agrees with the code', () => {
  it('the exit-code table lists exactly ExitCode, with the same numbers', () => {
    const tables = tableRows('Exit codes')
    const codeTable = tables.filter(r => /^\d+$/.test(r[0] ?? ''))
    const documented = Object.fromEntries(codeTable.map(r => [unquote(r[1] ?? ''), Number(r[0])]))
    assert.deepEqual(documented, { ...ExitCode })
    assert.equal(new Set(Object.values(ExitCode)).size, Object.keys(ExitCode).length, 'exit codes are distinct')
  })

  it('the error-code table lists every error class once, with the exit code main() gives it', () => {
    const rows = tableRows('Exit codes').filter(r => /^`ERR_/.test(r[0] ?? ''))
    const documented = rows.map(r => ({ code: unquote(r[0] ?? ''), cls: unquote(r[1] ?? ''), exit: Number(r[2]) }))
    assert.equal(new Set(documented.map(d => d.code)).size, documented.length, 'no error code listed twice')
    const actual = errorClasses.map(([name, C]) => {
      const err = new C('test')
      return { code: err.code as string, cls: name, exit: exitCodeFor(err) }
    })
    const byCode = (a: { code: string }, b: { code: string }): number => a.code.localeCompare(b.code)
    assert.deepEqual([...documented].sort(byCode), [...actual].sort(byCode))
  })

  it('errors that are not ours exit 1, a standard AbortError 130', () => {
    assert.equal(exitCodeFor(new Error('bug')), ExitCode.ERROR)
    assert.equal(exitCodeFor('a string'), ExitCode.ERROR)
    assert.equal(exitCodeFor(new DOMException('stop', 'AbortError')), ExitCode.CANCELLED)
  })
})

describe('errors: every P2pbakError class', () => {
  it('there are error classes to check', () => {
    assert.ok(errorClasses.length >= 10, `found ${errorClasses.length}`)
  })

  it('has a name equal to its class name, a well-formed code, and keeps message and cause', () => {
    for (const [name, C] of errorClasses) {
      const cause = new Error('root cause')
      const err = new C('what happened', { cause })
      assert.equal(err.name, name)
      assert.match(err.code, /^ERR_[A-Z_]+$/, name)
      assert.equal(err.message, 'what happened')
      assert.equal(err.cause, cause)
      assert.ok(err instanceof Error && err instanceof P2pbakError && errors.isP2pbakError(err))
    }
  })

  it('codes are unique across classes', () => {
    const seen = new Map<string, string>()
    for (const [name, C] of errorClasses) {
      const code = new C('x').code
      assert.equal(seen.get(code), undefined, `${name} and ${String(seen.get(code))} share ${code}`)
      seen.set(code, name)
    }
  })
})
