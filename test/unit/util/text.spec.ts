import assert from 'node:assert/strict'
import { printable } from '../../../src/util/text.js'

describe('printable: text from elsewhere, safe for a terminal', () => {
  it('escapes control characters (ESC, BEL, CR, DEL, C1) and keeps tabs, newlines and Unicode', () => {
    assert.equal(printable('peer says \u001b[2J\u001b]0;owned\u0007 done\r'), 'peer says \\x1b[2J\\x1b]0;owned\\x07 done\\x0d')
    assert.equal(printable('a\tb\nc \u007f \u009b'), 'a\tb\nc \\x7f \\x9b')
    assert.equal(printable('Grüße, 友達 ✓'), 'Grüße, 友達 ✓')
  })
})
