import send from '@fastify/send'
import t from 'tap'
import {
  COMPACTABLE_EXTENSIONS, DATA_IMAGE_SUBTYPES, DOCUMENT_EXTENSIONS, FILE_TYPES, IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, SVG_EXTENSION,
  base64Length, extensionFor, extensionOf, inlineType, isDocumentExtension, isImageExtension, isMediaExtension, sniffImageType
} from '../../src/files/file-types.js'
import { solidPng } from '../fixtures/png.js'

t.test('extensionOf', async (t) => {
  const table: Array<[fileName: string, extension: string]> = [
    ['apple.png', 'png'],
    ['APPLE.PNG', 'png'],
    ['archive.tar.gz', 'gz'],
    ['fake.mp3.png', 'png'],
    ['.png', ''],
    ['noextension', ''],
    ['trailing.', ''],
    ['', '']
  ]
  for (const [fileName, extension] of table) {
    t.equal(extensionOf(fileName), extension, `${JSON.stringify(fileName)} -> ${JSON.stringify(extension)}`)
  }
})

t.test('allowlists', async (t) => {
  for (const extension of ['png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'bmp', 'PNG', 'Jpeg']) {
    t.ok(isImageExtension(extension), `${extension} is an image`)
    t.notOk(isMediaExtension(extension), `${extension} is not media`)
  }
  for (const extension of ['mp3', 'ogg', 'opus', 'wav', 'm4a', 'mp4', 'webm', 'mov', 'MOV']) {
    t.ok(isMediaExtension(extension), `${extension} is media`)
    t.notOk(isImageExtension(extension), `${extension} is not an image`)
  }
  for (const extension of ['pdf', 'txt', 'md', 'csv', 'json', 'docx', 'xlsx', 'pptx', 'zip', 'PDF']) {
    t.ok(isDocumentExtension(extension), `${extension} is a document`)
    t.notOk(isImageExtension(extension) || isMediaExtension(extension), `${extension} is neither image nor media`)
  }
  for (const extension of ['svg', 'html', 'htm', 'xhtml', 'js', 'mjs', 'sh', 'xml', 'exe', '', '.png', 'png ']) {
    t.notOk(isImageExtension(extension) || isMediaExtension(extension) || isDocumentExtension(extension), `${JSON.stringify(extension)} is refused`)
  }
  for (const extension of [...IMAGE_EXTENSIONS, ...MEDIA_EXTENSIONS, ...DOCUMENT_EXTENSIONS]) {
    t.equal(extension, extension.toLowerCase(), `${extension} is stored lowercase`)
    t.notOk(extension.startsWith('.'), `${extension} is stored without a dot`)
  }
})

// Every extension and what each lookup derived from the table answers for it.
type Row = [extension: string, kind: 'image' | 'media' | 'document' | 'svg', mime: string, inline: string | undefined, compactable: boolean]
const ROWS: Row[] = [
  ['png', 'image', 'image/png', 'image/png', true],
  ['jpg', 'image', 'image/jpeg', 'image/jpeg', true],
  ['jpeg', 'image', 'image/jpeg', 'image/jpeg', true],
  ['gif', 'image', 'image/gif', 'image/gif', true],
  ['webp', 'image', 'image/webp', 'image/webp', false],
  ['avif', 'image', 'image/avif', 'image/avif', false],
  ['bmp', 'image', 'image/bmp', 'image/bmp', false],
  ['svg', 'svg', 'image/svg+xml', undefined, false],
  ['mp3', 'media', 'audio/mpeg', undefined, false],
  ['ogg', 'media', 'audio/ogg', undefined, false],
  ['opus', 'media', 'audio/ogg', undefined, false],
  ['wav', 'media', 'audio/wav', undefined, false],
  ['m4a', 'media', 'audio/mp4', undefined, false],
  ['mp4', 'media', 'video/mp4', undefined, false],
  ['webm', 'media', 'video/webm', undefined, false],
  ['mov', 'media', 'video/quicktime', undefined, false],
  ['pdf', 'document', 'application/pdf', undefined, false],
  ['txt', 'document', 'text/plain', undefined, false],
  ['md', 'document', 'text/markdown', undefined, false],
  ['csv', 'document', 'text/csv', undefined, false],
  ['json', 'document', 'application/json', undefined, false],
  ['docx', 'document', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', undefined, false],
  ['xlsx', 'document', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', undefined, false],
  ['pptx', 'document', 'application/vnd.openxmlformats-officedocument.presentationml.presentation', undefined, false],
  ['zip', 'document', 'application/zip', undefined, false]
]

t.test('one row per extension, and every list derived from the table', async (t) => {
  const listed = FILE_TYPES.flatMap((type) => type.extensions)
  t.same([...listed].sort(), ROWS.map(([extension]) => extension).sort(), 'exactly these extensions are deliverable')
  t.equal(new Set(listed).size, listed.length, 'no extension is in two rows')
  for (const [extension, kind, mime, inline, compactable] of ROWS) {
    const type = FILE_TYPES.find((candidate) => candidate.extensions.includes(extension))
    t.equal(type?.mime, mime, `${extension}: ${mime}`)
    t.equal(send.mime.getType(extension), mime, `${extension}: the Content-Type @fastify/send serves it with is the table's`)
    t.equal(isImageExtension(extension), kind === 'image', `${extension}: image by default? ${kind === 'image'}`)
    t.equal(isMediaExtension(extension), kind === 'media', `${extension}: media? ${kind === 'media'}`)
    t.equal(isDocumentExtension(extension), kind === 'document', `${extension}: document? ${kind === 'document'}`)
    t.equal(inlineType(extension), inline, `${extension}: inline as ${inline}`)
    t.equal(inlineType(extension.toUpperCase()), inline, `${extension.toUpperCase()}: inline as ${inline}, any case`)
    t.equal(COMPACTABLE_EXTENSIONS.has(extension), compactable, `${extension}: compactable? ${compactable}`)
  }
  t.equal(inlineType('html'), undefined, 'an unknown extension is never inline')
  t.equal(inlineType(''), undefined, 'no extension is never inline')
  const svg = FILE_TYPES.find((type) => type.extensions.includes(SVG_EXTENSION))
  t.same({ kind: svg?.kind, optIn: svg?.optIn }, { kind: 'image', optIn: true }, 'SVG is an image, only on request')
  for (const type of FILE_TYPES) {
    t.equal(type.magic !== undefined, type.inline === true, `${type.mime}: stored from data: URIs exactly when its magic bytes are known`)
    t.notOk(type.compactable === true && type.kind !== 'image', `${type.mime}: only images are compacted`)
  }
})

t.test('the subtypes an inline data: image may name', async (t) => {
  t.same([...DATA_IMAGE_SUBTYPES], [
    ['png', 'image/png'],
    ['jpeg', 'image/jpeg'],
    ['jpg', 'image/jpeg'],
    ['gif', 'image/gif'],
    ['webp', 'image/webp'],
    ['avif', 'image/avif'],
    ['bmp', 'image/bmp']
  ], 'the inline images, `jpg` as well as `jpeg`, and nothing else (no SVG)')
})

t.test('magic bytes', async (t) => {
  const table: Array<[string, Buffer, string | undefined]> = [
    ['png', solidPng(4, 3), 'image/png'],
    ['jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]), 'image/jpeg'],
    ['gif87a', Buffer.from('GIF87a....'), 'image/gif'],
    ['gif89a', Buffer.from('GIF89a....'), 'image/gif'],
    ['webp', Buffer.from('RIFF\0\0\0\0WEBPVP8 '), 'image/webp'],
    ['avif', Buffer.from('\0\0\0\x1cftypavif\0\0\0\0'), 'image/avif'],
    ['avif sequence', Buffer.from('\0\0\0\x1cftypavis\0\0\0\0'), 'image/avif'],
    ['bmp', Buffer.concat([Buffer.from('BM'), Buffer.alloc(30)]), 'image/bmp'],
    ['smallest bmp', Buffer.concat([Buffer.from('BM'), Buffer.alloc(24)]), 'image/bmp'],
    ['bmp one byte short', Buffer.concat([Buffer.from('BM'), Buffer.alloc(23)]), undefined],
    ['short bmp', Buffer.from('BM'), undefined],
    ['png signature cut short', Buffer.from([0x89, 0x50, 0x4e, 0x47]), undefined],
    ['gif without version', Buffer.from('GIF8'), undefined],
    ['riff that is not webp', Buffer.from('RIFF\0\0\0\0WAVEfmt '), undefined],
    ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), undefined],
    ['html', Buffer.from('<html><script>alert(1)</script>'), undefined],
    ['empty', Buffer.alloc(0), undefined]
  ]
  for (const [name, bytes, expected] of table) t.equal(sniffImageType(bytes), expected, name)
  t.equal(extensionFor('image/jpeg'), 'jpg', 'jpeg files end in .jpg')
  t.equal(extensionFor('image/webp'), 'webp', 'others by subtype')
  t.throws(() => extensionFor('text/html'), { name: 'TypeError', message: 'extensionFor: "text/html" is not a type in FILE_TYPES' }, 'an unknown type is a programming error')
})

t.test('base64Length: the padded base64 length of a byte count', async (t) => {
  // [bytes, padding characters of its base64, base64 length]
  const table: Array<[bytes: number, padding: number, length: number]> = [
    [0, 0, 0],
    [1, 2, 4],
    [2, 1, 4],
    [3, 0, 4],
    [4, 2, 8],
    [5, 1, 8],
    [6, 0, 8],
    [3 * 1024 * 1024, 0, 4 * 1024 * 1024],
    [3 * 1024 * 1024 + 1, 2, 4 * 1024 * 1024 + 4]
  ]
  for (const [bytes, padding, length] of table) {
    t.equal(base64Length(bytes), length, `${bytes} bytes -> ${length} characters`)
    const encoded = Buffer.alloc(bytes, 0xab).toString('base64')
    t.equal(encoded.length, length, `${bytes} bytes: Node's encoding has that length`)
    t.equal(encoded.length - encoded.replace(/=+$/, '').length, padding, `${bytes} bytes: ${padding} padding characters`)
  }
  // What the data store relies on: text longer than base64Length(limit) never holds
  // `limit` bytes or fewer, whether the encoder padded it or not.
  for (let limit = 0; limit <= 24; limit++) {
    for (let bytes = 0; bytes <= limit; bytes++) {
      const padded = Buffer.alloc(bytes, 0xff).toString('base64')
      const unpadded = padded.replace(/=+$/, '')
      t.ok(padded.length <= base64Length(limit), `${bytes} bytes padded fit the bound for ${limit}`)
      t.ok(unpadded.length <= base64Length(limit), `${bytes} bytes unpadded fit the bound for ${limit}`)
    }
  }
})
