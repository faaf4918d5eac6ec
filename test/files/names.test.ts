import fc from 'fast-check'
import t from 'tap'
import { MAX_NAME_LENGTH, decodeName, encodeName } from '../../src/files/names.js'

t.test('encodeName', async (t) => {
  const table: Array<[plain: string, name: string]> = [
    ['apple.png', 'apple.png'],
    ['sub/inner/deep.png', 'sub/inner/deep.png'],
    ['a b (1).png', 'a%20b%20%281%29.png'],
    ["it's*!.png", 'it%27s%2A%21.png'],
    ['50%.png', '50%25.png'],
    ['a#b?c&d=e;f.png', 'a%23b%3Fc%26d%3De%3Bf.png'],
    ['pommé 🍎.png', 'pomm%C3%A9%20%F0%9F%8D%8E.png'],
    ['[x]<y>"z".png', '%5Bx%5D%3Cy%3E%22z%22.png'],
    ['-_.~.png', '-_.~.png']
  ]
  for (const [plain, name] of table) {
    t.equal(encodeName(plain), name, `${JSON.stringify(plain)} is encoded`)
  }
})

t.test('every name is safe inside a markdown link destination and a URL path', async (t) => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (segment) => {
    return /^[A-Za-z0-9\-_.~%/]*$/.test(encodeName(segment.replaceAll('/', '')))
  }))
  t.pass('only unreserved characters and escapes')
})

// Segments a real file could have: not empty, not `.`/`..`, no separator, no control.
const segment = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
  // eslint-disable-next-line no-control-regex -- control characters are what the filter leaves out
  .filter((s) => s !== '.' && s !== '..' && !/[/\\\u0000-\u001f\u007f-\u009f]/.test(s))

t.test('decodeName(encodeName(path)) round-trips', async (t) => {
  fc.assert(fc.property(fc.array(segment, { minLength: 1, maxLength: 5 }), (segments) => {
    const plain = segments.join('/')
    return decodeName(encodeName(plain)) === plain
  }))
  t.pass('round trip holds')
})

t.test('decodeName accepts exactly one spelling per name', async (t) => {
  fc.assert(fc.property(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.nat(), (segments, at) => {
    const name = encodeName(segments.join('/'))
    // Lowercasing the hex of any escape gives another spelling of the same bytes.
    const escapes = [...name.matchAll(/%[0-9A-F]{2}/g)]
    const hit = escapes[at % Math.max(escapes.length, 1)]
    if (hit?.index === undefined || !/[A-F]/.test(hit[0])) return true
    const other = name.slice(0, hit.index) + hit[0].toLowerCase() + name.slice(hit.index + 3)
    return decodeName(other) === undefined
  }))
  t.pass('lowercase escapes are refused')
})

t.test('decodeName refuses malformed and hostile names', async (t) => {
  const hostile: Array<[raw: string, why: string]> = [
    ['', 'empty'],
    ['a'.repeat(MAX_NAME_LENGTH + 1), 'longer than PATH_MAX'],
    ['/apple.png', 'leading slash: empty segment'],
    ['sub//apple.png', 'empty segment'],
    ['sub/', 'trailing slash'],
    ['.', 'dot'],
    ['..', 'dot-dot'],
    ['../secret.png', 'traversal'],
    ['sub/../../secret.png', 'nested traversal'],
    ['%2e%2e/secret.png', 'encoded dot-dot'],
    ['%2E%2E/secret.png', 'encoded dot-dot, uppercase'],
    ['.%2e/secret.png', 'half-encoded dot-dot'],
    ['sub%2Fapple.png', 'encoded slash'],
    ['sub%2fapple.png', 'encoded slash, lowercase'],
    ['..%5Csecret.png', 'encoded backslash'],
    ['sub\\apple.png', 'backslash'],
    ['apple.png%00.png', 'encoded NUL'],
    ['apple\u0000.png', 'raw NUL'],
    ['apple%0A.png', 'encoded newline'],
    ['apple%7F.png', 'encoded DEL'],
    ['apple%C2%85.png', 'encoded C1 control'],
    ['apple%.png', 'bare percent'],
    ['apple%2.png', 'truncated escape'],
    ['apple%zz.png', 'invalid hex'],
    ['apple%C0%AE.png', 'overlong UTF-8 for a dot'],
    ['apple%ED%A0%80.png', 'encoded surrogate'],
    ['apple%F0%9F.png', 'truncated UTF-8'],
    ['apple\ud800.png', 'lone surrogate'],
    ['apple%2epng', 'needless escape of a dot'],
    ['%61pple.png', 'needless escape of a letter'],
    ['a%20b%20(1).png', 'raw parenthesis'],
    ['a b.png', 'raw space'],
    ['apple.png?x=1', 'query'],
    ['apple.png#top', 'fragment'],
    ['pomm%c3%a9.png', 'lowercase hex']
  ]
  for (const [raw, why] of hostile) {
    t.equal(decodeName(raw), undefined, `${why}: ${JSON.stringify(raw.slice(0, 40))}`)
  }
  t.equal(decodeName('a'.repeat(MAX_NAME_LENGTH)), 'a'.repeat(MAX_NAME_LENGTH), 'exactly PATH_MAX is accepted')
  // One decoding step only: this is a folder literally named `%2e%2e`. The route refuses
  // the spelling anyway, in case something in front of it decodes a second time.
  t.equal(decodeName('%252e%252e/secret.png'), '%2e%2e/secret.png', 'double encoding is decoded once')
  t.equal(decodeName('sub/a%20b%20%281%29.png'), 'sub/a b (1).png', 'nested canonical name')
})
