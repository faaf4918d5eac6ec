import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createSigner, loadOrCreateKey, SIGNATURE_BYTES } from '../../src/files/signing.js'

t.test('signatures verify only for their own name and key', async (t) => {
  const signer = createSigner('k'.repeat(32))
  const sig = signer.sign('apple.png')
  t.match(sig, /^[A-Za-z0-9_-]{22}$/, '128 bits as base64url')
  t.equal(Buffer.from(sig, 'base64url').length, SIGNATURE_BYTES, 'truncated to 16 bytes')
  t.ok(signer.verify('apple.png', sig), 'own name verifies')
  t.equal(createSigner('k'.repeat(32)).sign('apple.png'), sig, 'deterministic for one key')
  t.equal(createSigner(Buffer.from('k'.repeat(32))).sign('apple.png'), sig, 'a key given as bytes (from the state folder) is the same key')
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

/** signing.js with `writeFileSync` replaced, for failures that cannot be made on purpose. */
async function withWrite (t: Test, writeFileSync: typeof fs.writeFileSync): Promise<typeof loadOrCreateKey> {
  const mocked = await t.mockImport<typeof import('../../src/files/signing.js')>('../../src/files/signing.js', {
    'node:fs': { ...fs, writeFileSync, default: { ...fs, writeFileSync } }
  })
  return mocked.loadOrCreateKey
}

t.test('two instances creating the key together agree on one key', async (t) => {
  // The window between reading (no key yet) and the exclusive write cannot be hit on
  // purpose: the other instance's write is made to land just before ours.
  const other = 'b'.repeat(64)
  const racing = await withWrite(t, ((file: fs.PathOrFileDescriptor, data: string, options: fs.WriteFileOptions) => {
    fs.writeFileSync(file, other + '\n', { mode: 0o600 })
    fs.writeFileSync(file, data, options)
  }) as typeof fs.writeFileSync)
  const dir = t.testdir()
  const result = racing(dir)
  t.notOk(result.created, 'the loser did not create it')
  t.same(result.key, Buffer.from(other, 'hex'), 'and uses the winner\'s key')
  t.equal(fs.readFileSync(path.join(dir, 'signing-key'), 'utf8'), other + '\n', 'the winner\'s key is not overwritten')
})

t.test('a key that cannot be written is an error, not an unsaved key', async (t) => {
  const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
  const failing = await withWrite(t, (() => { throw full }) as typeof fs.writeFileSync)
  t.throws(() => failing(t.testdir()), full, 'the write error itself: links signed with a lost key would die at restart')
})

t.test('what stands where the key should be is never written through', async (t) => {
  // A dangling symlink reads as missing, but the exclusive create refuses it rather than
  // writing the key wherever it points.
  const dir = t.testdir({ link: { 'signing-key': t.fixture('symlink', 'elsewhere/key') }, folder: { 'signing-key': {} } })
  const link = path.join(dir, 'link')
  t.throws(() => loadOrCreateKey(link), { message: `${path.join(link, 'signing-key')} is not a signing key` }, 'a dangling symlink')
  t.notOk(fs.existsSync(path.join(link, 'elsewhere')), 'nothing created at its target')
  t.throws(() => loadOrCreateKey(path.join(dir, 'folder')), { code: 'EISDIR' }, 'a folder: the read error itself')
})
