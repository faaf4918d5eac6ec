import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createSigner, loadOrCreateKey, SIGNATURE_BYTES } from '../../src/files/signing.js'

t.test('signatures verify only for their own name and key', async (t) => {
  const signer = createSigner('k'.repeat(32))
  const sig = signer.sign('apple.png')
  t.match(sig, /^[A-Za-z0-9_-]{22}$/, '128 bits as base64url')
  t.equal(Buffer.from(sig, 'base64url').length, SIGNATURE_BYTES, 'truncated to 16 bytes')
  t.ok(signer.verify('apple.png', sig), 'own name verifies')
  t.equal(createSigner('k'.repeat(32)).sign('apple.png'), sig, 'deterministic for one key')
  const cases: Array<[string, unknown]> = [
    ['other name', ['pear.png', sig]],
    ['other key', ['apple.png', createSigner('j'.repeat(32)).sign('apple.png')]],
    ['missing', ['apple.png', undefined]],
    ['array', ['apple.png', [sig, sig]]],
    ['empty', ['apple.png', '']],
    ['truncated', ['apple.png', sig.slice(0, 21)]],
    ['too long', ['apple.png', sig + 'A']],
    ['stray character', ['apple.png', sig.slice(0, 21) + '=']],
    ['case changed', ['apple.png', sig.toUpperCase() === sig ? sig.toLowerCase() : sig.toUpperCase()]]
  ]
  for (const [name, [file, given]] of cases as Array<[string, [string, unknown]]>) {
    t.notOk(signer.verify(file, given), `refused: ${name}`)
  }
})

t.test('the key is generated once, kept 0600, and read back', async (t) => {
  const dir = path.join(t.testdir(), 'state', 'imagegate')
  const first = loadOrCreateKey(dir)
  t.ok(first.created, 'generated when missing')
  t.equal(first.key.length, 32, '256-bit key')
  const file = path.join(dir, 'signing-key')
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'file readable by its owner only')
  t.equal(fs.statSync(dir).mode & 0o777, 0o700, 'folder private too')
  const second = loadOrCreateKey(dir)
  t.notOk(second.created, 'read, not regenerated')
  t.same(second.key, first.key, 'same key after a restart')
})

t.test('a corrupt key file is an error that says what to do', async (t) => {
  const dir = t.testdir({ 'signing-key': 'not hex\n' })
  t.throws(() => loadOrCreateKey(dir), /does not hold a signing key .* remove it to generate a new one/, 'clear message')
})
