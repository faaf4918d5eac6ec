import t from 'tap'
import { DOCUMENT_EXTENSIONS, IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, extensionOf, isDocumentExtension, isImageExtension, isMediaExtension } from '../../src/files/extensions.js'

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
