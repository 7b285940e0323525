/**
 * docs/placement-and-repair.md §2 written as plainly as possible, from the text alone: the parameter
 * table is parsed out of the document's Appendix A. Slow (bit by bit, byte by byte); for tests only.
 */
import { readFileSync } from 'node:fs'

export interface CodeParams { w: number, p: number, x: number, y: number }

const DOC = new URL('../../../docs/placement-and-repair.md', import.meta.url)

/** Appendix A: "| k | w/p | w/p | w/p/x/y | … |" rows, key `${k}+${m}`. */
export function paramsFromDoc (): Map<string, CodeParams> {
  const text = readFileSync(DOC, 'utf8')
  const appendix = text.slice(text.indexOf('## Appendix A'))
  const out = new Map<string, CodeParams>()
  for (const line of appendix.split('\n')) {
    const cells = line.split('|').map((c) => c.trim()).filter((c) => c !== '')
    if (cells.length !== 7 || !/^\d+$/.test(cells[0] ?? '')) continue
    const k = Number(cells[0])
    cells.slice(1).forEach((cell, i) => {
      const [w, p, x, y] = cell.split('/').map(Number)
      out.set(`${k}+${i + 1}`, { w: w ?? NaN, p: p ?? NaN, x: x ?? -1, y: y ?? -1 })
    })
  }
  return out
}

class Field {
  readonly size: number
  private readonly exp: number[] = []
  private readonly log: number[] = []
  constructor (readonly w: number, p: number) {
    this.size = 1 << w
    let b = 1
    for (let a = 0; a < this.size - 1; a++) {
      this.exp[a] = b
      this.log[b] = a
      b <<= 1
      if (b >= this.size) b = (b ^ p) & (this.size - 1)
    }
  }

  mul (a: number, b: number): number {
    if (a === 0 || b === 0) return 0
    return this.exp[(this.log[a]! + this.log[b]!) % (this.size - 1)]!
  }

  div (a: number, b: number): number {
    if (b === 0) throw new Error('division by zero')
    if (a === 0) return 0
    return this.exp[(this.log[a]! - this.log[b]! + this.size - 1) % (this.size - 1)]!
  }

  /** B(e)[i][j] = bit i of e·2^j */
  bits (e: number): number[][] {
    const cols: number[] = []
    for (let j = 0, v = e; j < this.w; j++, v = this.mul(v, 2)) cols.push(v)
    return Array.from({ length: this.w }, (_, i) => cols.map((v) => (v >> i) & 1))
  }

  weight (e: number): number {
    return this.bits(e).flat().reduce((a, b) => a + b, 0)
  }
}

function coefficients (f: Field, k: number, m: number, x: number, y: number): number[][] {
  const E: number[][] = [Array.from({ length: k }, () => 1)]
  if (m === 2) {
    const sigma = Array.from({ length: f.size - 1 }, (_, i) => i + 1)
      .sort((a, b) => f.weight(a) - f.weight(b) || a - b)
    E.push(Array.from({ length: k }, (_, c) => sigma[c]!))
  } else if (m >= 3) {
    const C = (r: number, c: number): number => f.div(1, (y + r) ^ (x + c))
    for (let r = 1; r < m; r++) {
      const row = Array.from({ length: k }, (_, c) => f.div(C(r, c), C(0, c)))
      let t = row.reduce((a, e) => a + f.weight(e), 0)
      let v: number | undefined
      for (const e of row) {
        const u = row.reduce((a, d) => a + f.weight(f.div(d, e)), 0)
        if (u < t) { t = u; v = e }
      }
      E.push(v === undefined ? row : row.map((e) => f.div(e, v)))
    }
  }
  return E
}

/** The m parity shards for k data shards of S bytes each. */
export function referenceParity (data: readonly Uint8Array[], m: number, params: CodeParams): Uint8Array[] {
  const k = data.length
  const S = data[0]!.byteLength
  if (m === 0) return []
  const f = new Field(params.w, params.p)
  const w = params.w
  const E = coefficients(f, k, m, params.x, params.y)
  let s = S / w
  while (s > 64 && s % 2 === 0 && (1 + k * w) * s > 1048576) s /= 2
  const parity: Uint8Array[] = []
  for (let r = 0; r < m; r++) {
    const out = new Uint8Array(S)
    const B = E[r]!.map((e) => f.bits(e))
    for (let block = 0; block < S; block += w * s) {
      for (let i = 0; i < w; i++) {
        const target = out.subarray(block + i * s, block + (i + 1) * s)
        for (let c = 0; c < k; c++) {
          for (let j = 0; j < w; j++) {
            if (B[c]![i]![j] !== 1) continue
            const src = data[c]!.subarray(block + j * s, block + (j + 1) * s)
            for (let b = 0; b < s; b++) target[b] = (target[b] as number) ^ (src[b] as number)
          }
        }
      }
    }
    parity.push(out)
  }
  return parity
}
