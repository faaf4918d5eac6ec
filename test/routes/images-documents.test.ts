// Documents the agent shows with MEDIA: (reports, tables, archives), end to end: the tag
// becomes a download link, and the link downloads the file, never shows it inline.
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { contentOf, pathAndQuery } from '../fixtures/gate.js'
import { postJson, send } from '../fixtures/http.js'
import { CHAT, DONE, FINISH, ROLE, contentEvents } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { PNG } from '../fixtures/hermes.js'

// hermes names a cached document `doc_<12 hex>_<the original name>`.
const REPORT = 'doc_7c0b41977a28_Q3 "final"; résumé.pdf'
const REPORT_BYTES = Buffer.from('%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n')
const DOCUMENTS: Record<string, [bytes: Buffer, type: RegExp]> = {
  'table.csv': [Buffer.from('a,b\n1,2\n'), /^text\/csv/],
  'notes.txt': [Buffer.from('plain notes'), /^text\/plain/],
  'readme.md': [Buffer.from('# Title\n<script>alert(1)</script>'), /^text\/markdown/],
  'data.json': [Buffer.from('{"a":1}'), /^application\/json/],
  'sheet.xlsx': [Buffer.from('PK\x03\x04xlsx'), /^application\/vnd\.openxmlformats-officedocument\.spreadsheetml\.sheet/],
  'letter.docx': [Buffer.from('PK\x03\x04docx'), /^application\/vnd\.openxmlformats-officedocument\.wordprocessingml\.document/],
  'slides.pptx': [Buffer.from('PK\x03\x04pptx'), /^application\/vnd\.openxmlformats-officedocument\.presentationml\.presentation/],
  'bundle.zip': [Buffer.from('PK\x03\x04zip'), /^application\/zip/]
}

async function setup (t: Test) {
  const dir = t.testdir({
    documents: {
      [REPORT]: REPORT_BYTES,
      ...Object.fromEntries(Object.entries(DOCUMENTS).map(([name, [bytes]]) => [name, bytes])),
      'page.html': Buffer.from('<script>alert(1)</script>'),
      'run.sh': Buffer.from('rm -rf /'),
      'apple.png': PNG
    }
  })
  const cache = path.join(dir, 'documents')
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cache] } })
  return { upstream, gate, cache }
}

t.test('a MEDIA: document becomes a download link; a markdown image of it stays as written', async (t) => {
  const { upstream, gate } = await setup(t)
  const answer = [
    // A name with spaces needs quotes or backticks, as hermes writes it.
    `Here is the report: MEDIA:\`/root/.hermes/cache/documents/${REPORT}\``,
    'And the table: MEDIA:`/root/.hermes/cache/documents/table.csv`.',
    '![not a picture](/root/.hermes/cache/documents/table.csv)',
    'MEDIA:/root/.hermes/cache/documents/page.html MEDIA:/root/.hermes/cache/documents/run.sh'
  ].join('\n')
  upstream.handle(sse([ROLE, ...contentEvents([...answer]), FINISH, DONE]))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const reportLink = gate.link('doc_7c0b41977a28_Q3%20%22final%22%3B%20r%C3%A9sum%C3%A9.pdf')
  const expected = [
    `Here is the report: [${REPORT}](${reportLink})`,
    `And the table: [table.csv](${gate.link('table.csv')}).`,
    '![not a picture](/root/.hermes/cache/documents/table.csv)',
    'MEDIA:/root/.hermes/cache/documents/page.html MEDIA:/root/.hermes/cache/documents/run.sh'
  ].join('\n')
  t.equal(contentOf(res.text), expected, 'documents are links named by the file; images of documents, HTML and scripts are left alone')

  const download = await send(gate.url, { path: pathAndQuery(reportLink) })
  t.equal(download.status, 200, 'the link answers')
  t.same(download.body, REPORT_BYTES, 'with the file, byte for byte')
  t.equal(download.headers['content-type'], 'application/pdf', 'as a PDF')
  t.equal(download.headers['content-disposition'],
    'attachment; filename="doc_7c0b41977a28_Q3 _final_; r_sum_.pdf"; filename*=UTF-8\'\'doc_7c0b41977a28_Q3%20%22final%22%3B%20r%C3%A9sum%C3%A9.pdf',
    'downloaded, never shown inline, under its own name with quotes and non-ASCII safely encoded')
  t.equal(download.headers['x-content-type-options'], 'nosniff', 'never sniffed')
  t.equal(download.headers['content-security-policy'], "default-src 'none'; sandbox", 'inert if opened anyway')
})

t.test('every document type is served as a download with its type, and only with its signature', async (t) => {
  const { gate } = await setup(t)
  for (const [name, [bytes, type]] of Object.entries(DOCUMENTS)) {
    const link = pathAndQuery(gate.link(name))
    for (const method of ['GET', 'HEAD']) {
      const res = await send(gate.url, { method, path: link })
      t.equal(res.status, 200, `${method} ${name}: 200`)
      t.match(res.headers['content-type'], type, `${method} ${name}: its type`)
      t.equal(res.headers['content-disposition'], `attachment; filename="${name}"; filename*=UTF-8''${name}`, `${method} ${name}: a download`)
      t.same(res.body, method === 'GET' ? bytes : Buffer.alloc(0), `${method} ${name}: the bytes`)
    }
    const ranged = await send(gate.url, { path: link, headers: { range: 'bytes=0-1' } })
    t.equal(ranged.status, 206, `${name}: ranges work (resumed downloads)`)
    t.equal(ranged.headers['content-disposition'], `attachment; filename="${name}"; filename*=UTF-8''${name}`, `${name}: a ranged answer is a download too`)
    const forged = await send(gate.url, { path: `/images/${gate.nameOf(name)}?sig=AAAAAAAAAAAAAAAAAAAAAA` })
    t.equal(forged.status, 404, `${name}: a wrong signature is a 404`)
    t.equal(forged.headers['content-disposition'], undefined, `${name}: the 404 is no download`)
  }
  for (const name of ['page.html', 'run.sh']) {
    const res = await send(gate.url, { path: pathAndQuery(gate.link(name)) })
    t.equal(res.status, 404, `${name}: active content is never served, even with a valid signature`)
  }
  const image = await send(gate.url, { path: pathAndQuery(gate.link('apple.png')) })
  t.equal(image.headers['content-disposition'], undefined, 'images are still shown inline')
})
